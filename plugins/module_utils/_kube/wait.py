# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readiness: per-kind predicates (pure) and one shared waiter that watches every workload at once.

The waiter lists each collection it needs once and then watches it (one watch per kind and namespace, resumed
after a dropped connection), judging every object waited on whenever something changed. It fails an object as soon
as the API shows it cannot become ready (ProgressDeadlineExceeded, CrashLoopBackOff, an image that is not there,
a failed Job ...), with the reason, pod states and recent events; it never sits out the timeout. A pull failure
that can heal (``image_pull``) is waited on instead, and said once in the progress.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import object_path
from ansible_collections.slipway.platform.plugins.module_utils._kube.image_pull import FINAL, HEALS, UNKNOWN, classify
from ansible_collections.slipway.platform.plugins.module_utils._kube.informer import Informer

READY, PENDING, FAILED = "ready", "pending", "failed"
WAITED_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "Pod", "ReplicaSet", "CustomResourceDefinition",
                "HTTPRoute"}
ROUTE_CONDITIONS = ("Accepted", "ResolvedRefs")  # what every gateway a route names must say True
ROUTE_UNCLAIMED = 5.0  # seconds without any gateway reporting on a route: nothing here serves its parents
# pull failures (ErrImagePull, ImagePullBackOff) are decided by image_pull.classify, on the evidence
ROUND_GAP = 0.05  # seconds between two rounds: a burst of watch events is judged once
EVENT_PODS = 5  # pods of a failed workload whose warning events are read
POD_FAILURES = {"CrashLoopBackOff", "InvalidImageName", "CreateContainerConfigError",
                "CreateContainerError", "RunContainerError", "ErrImageNeverPull"}


def _conditions(obj):
    return {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}


def _generation_seen(obj):
    status = obj.get("status") or {}
    return status.get("observedGeneration", 0) >= (obj.get("metadata") or {}).get("generation", 0)


def readiness(obj):
    """``(state, reason)`` for one live object; kinds without a notion of readiness are ready."""
    kind, spec, status = obj.get("kind"), obj.get("spec") or {}, obj.get("status") or {}
    conditions = _conditions(obj)
    if kind == "Deployment":
        if not _generation_seen(obj):  # conditions of the previous generation (a failed release) are stale
            return PENDING, "waiting for the deployment controller to see the new generation"
        progressing = conditions.get("Progressing") or {}
        if progressing.get("status") == "False" and progressing.get("reason") == "ProgressDeadlineExceeded":
            return FAILED, f"ProgressDeadlineExceeded: {progressing.get('message', '')}".strip()
        failure = conditions.get("ReplicaFailure") or {}
        if failure.get("status") == "True":
            return FAILED, f"ReplicaFailure {failure.get('reason', '')}: {failure.get('message', '')}"
        want = spec.get("replicas", 1)
        updated, available = status.get("updatedReplicas", 0), status.get("availableReplicas", 0)
        if updated < want:
            return PENDING, f"{updated} of {want} replicas updated"
        if status.get("replicas", 0) > updated:
            return PENDING, f"{status.get('replicas', 0) - updated} old replicas still terminating"
        if available < want:
            return PENDING, f"{available} of {want} updated replicas available"
        return READY, f"{want} replicas available"
    if kind == "StatefulSet":
        if not _generation_seen(obj):
            return PENDING, "waiting for the statefulset controller to see the new generation"
        want = spec.get("replicas", 1)
        if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
            return READY, "OnDelete update strategy"
        if status.get("readyReplicas", 0) < want:
            return PENDING, f"{status.get('readyReplicas', 0)} of {want} replicas ready"
        if status.get("updateRevision") and status.get("currentRevision") != status.get("updateRevision"):
            return PENDING, "rolling out the new revision"
        return READY, f"{want} replicas ready"
    if kind == "DaemonSet":
        if not _generation_seen(obj):
            return PENDING, "waiting for the daemonset controller to see the new generation"
        want = status.get("desiredNumberScheduled", 0)
        if status.get("updatedNumberScheduled", 0) < want or status.get("numberAvailable", 0) < want:
            return PENDING, f"{status.get('numberAvailable', 0)} of {want} pods available"
        return READY, f"{want} pods available"
    if kind == "Job":
        if (conditions.get("Failed") or {}).get("status") == "True":
            failed = conditions["Failed"]
            return FAILED, f"Job failed: {failed.get('reason', '')}: {failed.get('message', '')}".strip(": ")
        if (conditions.get("Complete") or {}).get("status") == "True":
            return READY, "complete"
        return PENDING, f"{status.get('succeeded', 0)} of {spec.get('completions', 1)} completions"
    if kind == "Pod":
        phase = status.get("phase")
        if phase == "Failed":
            return FAILED, f"pod failed: {status.get('reason', '')} {status.get('message', '')}".strip()
        failure, healing = pod_verdict(obj)
        if failure:
            return FAILED, failure
        if phase == "Succeeded" or (conditions.get("Ready") or {}).get("status") == "True":
            return READY, phase.lower()
        return PENDING, healing or f"pod {phase or 'Pending'}"
    if kind == "ReplicaSet":
        want = spec.get("replicas", 1)
        if status.get("availableReplicas", 0) < want:
            return PENDING, f"{status.get('availableReplicas', 0)} of {want} replicas available"
        return READY, f"{want} replicas available"
    if kind == "CustomResourceDefinition":
        if (conditions.get("NamesAccepted") or {}).get("status") == "False":
            return FAILED, f"CRD names not accepted: {conditions['NamesAccepted'].get('message', '')}"
        if (conditions.get("Established") or {}).get("status") == "True":
            return READY, "established"
        return PENDING, "waiting to be established"
    if kind == "HTTPRoute":
        return route_readiness(obj)
    return READY, ""


# Traefik's words for a backend Service it found without EndpointSlices: right after the Service is created the
# endpointslice controller has not made them yet, so this refusal is transient (a missing Service says otherwise)
BACKEND_STARTING = "endpointslices not found"


def route_readiness(route):
    """An HTTPRoute is ready when each gateway it names (``parentRefs``) reports ``Accepted`` and ``ResolvedRefs``
    True for its current generation; a False from any of them is the gateway refusing it, with the gateway's reason,
    except the refusal that says the backend Service's EndpointSlices are not there yet (``BACKEND_STARTING``).

    A route that names no gateway is served by none, so there is nothing to wait for.
    """
    meta, spec = route.get("metadata") or {}, route.get("spec") or {}
    namespace, generation = meta.get("namespace"), meta.get("generation", 0)
    reported = (route.get("status") or {}).get("parents") or []
    waiting = []
    for ref in spec.get("parentRefs") or []:
        parent = f"{ref.get('kind', 'Gateway')} {ref.get('namespace', namespace)}/{ref.get('name')}" \
                 + (f" listener {ref['sectionName']}" if ref.get("sectionName") else "")
        status = next((s for s in reported if _same_parent(s.get("parentRef") or {}, ref, namespace)), None)
        conditions = {c.get("type"): c for c in (status or {}).get("conditions") or []
                      if c.get("observedGeneration", generation) >= generation}
        for name in ROUTE_CONDITIONS:
            condition = conditions.get(name) or {}
            said = f"{condition.get('reason', '')}: {condition.get('message', '')}".strip(": ")
            if condition.get("status") == "False" and BACKEND_STARTING in condition.get("message", ""):
                # the Service exists and its EndpointSlices are not made (or seen) yet: the gateway says so again
                # once they are; the wait's timeout bounds it
                waiting.append(f"{parent}: {name}=False {said} (the Service's EndpointSlices are on their way)")
            elif condition.get("status") == "False":
                return FAILED, f"{parent} refused the route: {name}=False {said}"
            elif condition.get("status") != "True":
                waiting.append(f"{parent}: {name} not reported yet")
    if waiting:
        return PENDING, "; ".join(waiting)
    return READY, "accepted by its gateways" if spec.get("parentRefs") else "names no gateway (parentRefs)"


def _same_parent(found, ref, namespace):
    keys = ("group", "kind", "name", "sectionName", "port")
    defaults = {"group": "gateway.networking.k8s.io", "kind": "Gateway"}
    return all(found.get(k, defaults.get(k)) == ref.get(k, defaults.get(k)) for k in keys) \
        and found.get("namespace", namespace) == ref.get("namespace", namespace)


def pod_failure(pod):
    """The reason a pod cannot become ready (``None`` while it still may)."""
    return pod_verdict(pod)[0]


def pod_verdict(pod):
    """``(failure, healing)``: why the pod cannot become ready, or the pull failure it is waiting out (or ``None``).

    A failure of any container decides; a pull that can heal only says why the pod is still pending.
    """
    status = pod.get("status") or {}
    pull_secrets = (pod.get("spec") or {}).get("imagePullSecrets")
    healing = None
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if not reason:
            continue
        said = f"container {container.get('name')} {reason}: {waiting.get('message') or ''}".strip().rstrip(":")
        verdict, meaning = classify(reason, waiting.get("message"), pull_secrets)
        if verdict == HEALS:
            healing = healing or f"{said} ({meaning})"
        elif verdict == FINAL:
            return f"{said} ({meaning})", None
        elif reason in POD_FAILURES or (verdict == UNKNOWN and reason == "ImagePullBackOff"):
            return said, None
    return None, healing


def pod_summary(pod):
    status = pod.get("status") or {}
    states = []
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        name = next(iter(state), "unknown")
        reason = (state.get(name) or {}).get("reason") or ""
        states.append(f"{container.get('name')}={name}{'(' + reason + ')' if reason else ''}"
                      f" restarts={container.get('restartCount', 0)}")
    for condition in status.get("conditions") or []:
        if condition.get("status") == "False":
            why = f"({condition['reason']}: {condition.get('message', '')})" if condition.get("reason") else ""
            states.append(f"{condition.get('type')}=False{why}")
    return f"pod {pod['metadata']['name']} {status.get('phase', 'Pending')}: " + ", ".join(states)


def selector_matches(selector, labels):
    """Label selector (matchLabels and matchExpressions) against a label map."""
    selector = selector or {}
    labels = labels or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def stale_deadline(deployment, replicasets):
    """Whether a Deployment's ProgressDeadlineExceeded names a ReplicaSet of an earlier revision.

    Rolling back to an existing ReplicaSet (a rollback after a failed release) does not reset the condition until
    the rollout completes; until then it still names the failed revision's ReplicaSet and must not fail the wait.
    """
    meta = deployment.get("metadata") or {}
    message = (_conditions(deployment).get("Progressing") or {}).get("message") or ""
    revision = (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision")
    current = {rs["metadata"]["name"] for rs in replicasets
               if any(o.get("uid") == meta.get("uid") for o in rs["metadata"].get("ownerReferences") or [])
               and (rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision") == revision}
    return bool(current) and not any(f'"{name}"' in message for name in current)


def current_pods(workload, pods, replicasets):
    """The pods of a workload's newest revision (old pods of a previous release never fail the new one)."""
    kind = workload.get("kind")
    meta = workload.get("metadata") or {}
    spec, status = workload.get("spec") or {}, workload.get("status") or {}
    if kind == "Pod":
        return [workload]
    if kind == "Deployment":
        revision = (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision")
        hashes = {(rs["metadata"].get("labels") or {}).get("pod-template-hash") for rs in replicasets
                  if any(o.get("uid") == meta.get("uid") for o in rs["metadata"].get("ownerReferences") or [])
                  and (rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision") == revision}
        hashes.discard(None)
        return [p for p in pods if (p["metadata"].get("labels") or {}).get("pod-template-hash") in hashes]
    if kind == "StatefulSet" and status.get("updateRevision"):
        return [p for p in pods if (p["metadata"].get("labels") or {}).get("controller-revision-hash")
                == status["updateRevision"] and selector_matches(spec.get("selector"), p["metadata"].get("labels"))]
    if kind == "Job":
        return [p for p in pods if any(o.get("uid") == meta.get("uid")
                                       for o in p["metadata"].get("ownerReferences") or [])]
    return [p for p in pods if selector_matches(spec.get("selector"), p["metadata"].get("labels"))]


@dataclass
class Target:
    key: str
    label: str
    resource: object
    namespace: str | None
    name: str
    state: str = PENDING
    reason: str = ""
    details: list = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    ready_at: float | None = None
    said: str = ""  # the last waiting reason told to the progress, so each is told once
    unclaimed_since: float | None = None  # an HTTPRoute that no gateway has reported on yet
    # the generation this run applied (or found): a watched copy older than it is judged on the previous spec
    min_generation: int = 0


class WaitHub:
    """One waiter for every target of a run, on live copies of the collections it reads.

    Each collection (a kind in a namespace, and the pods and ReplicaSets of a namespace whose workloads are being
    rolled out) is listed once and then watched (:class:`Informer`); the targets are judged again whenever a copy
    changes, not on a timer. Warning events are read only for a target that failed, by the names involved.
    """

    def __init__(self, client, interval=0.5, clock=time.monotonic, notify=None):
        self.client = client
        self.notify = notify  # called with a progress line when a target starts waiting out a pull that can heal
        self.interval = interval  # the listing pace when a watch cannot be had, and the longest wait between rounds
        self.clock = clock
        self._targets = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self._informers = {}
        self._involved = {}  # (namespace, name) -> the names of its current ReplicaSets and pods, for events
        self.error = None

    def add(self, targets):
        with self._lock:
            self._targets.extend(targets)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="slipway-wait", daemon=True)
                self._thread.start()
        self._wake.set()
        return targets

    def close(self):
        self._stop.set()
        self._wake.set()
        for informer in list(self._informers.values()):
            informer.stop()
        if self._thread:
            self._thread.join(timeout=5)
        for informer in list(self._informers.values()):
            informer.join(timeout=1)

    def stats(self):
        """How the copies were kept: collections, lists, watch requests, fall-backs to listing."""
        informers = list(self._informers.values())
        return {"collections": len(informers), "lists": sum(i.lists for i in informers),
                "watches": sum(i.watches for i in informers), "fallbacks": sum(i.fallbacks for i in informers)}

    def wait_all(self, targets, timeout):
        """Block until every target is ready or one fails; return the first failed target or ``None``."""
        deadline = self.clock() + timeout
        pending = list(targets)
        while pending:
            remaining = deadline - self.clock()
            if remaining <= 0:
                return None
            pending[0].done.wait(min(remaining, 1.0))
            if self.error is not None:
                raise self.error
            for target in [t for t in pending if t.done.is_set()]:
                if target.state == FAILED:
                    return target
                pending.remove(target)
        return None

    def _loop(self):
        while not self._stop.is_set():
            self._wake.wait(self.interval * 4)  # a change wakes it; the timeout is only a safety net
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._lock:
                pending = [t for t in self._targets if not t.done.is_set()]
            if pending:
                try:
                    self._round(pending)
                except SlipwayError as exc:
                    self.error = exc
                    for target in pending:
                        target.done.set()
                    return
            self._stop.wait(ROUND_GAP)  # changes arriving meanwhile are judged together in the next round

    def _collection(self, path):
        """The live objects of ``path`` by name (listed and watched from the first time it is asked for)."""
        informer = self._informers.get(path)
        if informer is None:
            informer = Informer(self.client, path, self._wake.set, interval=self.interval).start()
            self._informers[path] = informer
        if informer.error is not None:
            raise informer.error
        return informer.items()

    def _round(self, pending):
        groups = {}
        for target in pending:
            groups.setdefault((target.resource, target.namespace), []).append(target)
        pods_by_ns = {}
        for (resource, namespace), targets in groups.items():
            live = self._collection(object_path(resource, namespace))
            for target in targets:
                obj = live.get(target.name)
                if obj is None:
                    target.reason = "not found (deleted while waiting?)"
                    continue
                if (obj.get("metadata") or {}).get("generation", 0) < target.min_generation:
                    target.reason = "waiting for the watch to show the applied generation"
                    continue
                obj.setdefault("kind", resource.kind)
                state, reason = readiness(obj)
                if state == FAILED and resource.kind == "Deployment" and reason.startswith("ProgressDeadline") \
                        and stale_deadline(obj, self._pods(namespace).replicasets_of(obj)):
                    state, reason = PENDING, "rolling out again after an earlier revision timed out"
                if state == PENDING and resource.kind in ("Deployment", "StatefulSet", "DaemonSet", "Job") \
                        and (resource.kind == "Job" or _generation_seen(obj)):  # else: previous generation's pods
                    if namespace not in pods_by_ns:
                        pods_by_ns[namespace] = self._pods(namespace)
                    index = pods_by_ns[namespace]
                    mine = index.current_pods(obj)
                    self._involved[(namespace, target.name)] = (
                        [rs["metadata"]["name"] for rs in index.replicasets_of(obj)]
                        + [p["metadata"]["name"] for p in mine[:EVENT_PODS]])
                    verdicts = [pod_verdict(p) for p in mine]
                    failure = next((failed for failed, _healing in verdicts if failed), None)
                    healing = next((heals for _failed, heals in verdicts if heals), None)
                    if failure:
                        state, reason = FAILED, failure
                    elif healing:
                        reason = f"{reason}; waiting out a pull that can heal: {healing}"
                        self._tell(target, healing)
                    target.details = [pod_summary(p) for p in mine[:5]]
                if state == PENDING and resource.kind == "HTTPRoute":
                    state, reason = self._unclaimed(target, obj, reason)
                target.state, target.reason = state, reason
                if state == FAILED:
                    target.details = target.details + self.events(namespace, target.name)
                if state != PENDING:
                    target.ready_at = self.clock()
                    target.done.set()

    def _unclaimed(self, target, route, reason):
        """A route that no gateway reports on within ``ROUTE_UNCLAIMED`` names Gateways nothing here implements (a
        Gateway that does not exist, or a class without a controller, gets no status at all): not waited for."""
        if (route.get("status") or {}).get("parents"):
            return PENDING, reason
        if target.unclaimed_since is None:
            target.unclaimed_since = self.clock()
        if self.clock() - target.unclaimed_since < ROUTE_UNCLAIMED:
            return PENDING, reason
        return READY, f"no gateway reported on it within {ROUTE_UNCLAIMED:g}s: nothing here implements its parentRefs"

    def _tell(self, target, healing):
        if self.notify is not None and healing != target.said:
            target.said = healing
            self.notify(f"{target.label}: waiting out a pull that can heal: {healing}")

    def _pods(self, namespace):
        """The pods and ReplicaSets of a namespace, indexed for the rounds of a thousand workloads."""
        return PodIndex(self._collection(f"/api/v1/namespaces/{namespace}/pods").values(),
                        self._collection(f"/apis/apps/v1/namespaces/{namespace}/replicasets").values())

    def events(self, namespace, name, limit=5):
        """The latest warning events about an object, its current ReplicaSets and pods (best effort): read by
        their names, never the whole namespace's events."""
        if not namespace:
            return []
        related = []
        for involved in [name] + [n for n in self._involved.get((namespace, name), []) if n != name]:
            selector = f"involvedObject.name={involved},type=Warning"
            try:
                found = self.client.get(f"/api/v1/namespaces/{namespace}/events", query={"fieldSelector": selector})
            except SlipwayError:
                return []
            related.extend(found.get("items") or [])
        related.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        return [f"event {e['involvedObject'].get('kind')}/{e['involvedObject'].get('name')}: "
                f"{e.get('reason')}: {e.get('message', '').strip()}" for e in related[-limit:]]


class PodIndex:
    """Pods and ReplicaSets by owner and by pod-template-hash, so finding a workload's pods does not scan them all."""

    def __init__(self, pods, replicasets):
        self.pods = list(pods)
        self.rs_by_owner, self.pods_by_hash, self.pods_by_owner = {}, {}, {}
        for rs in replicasets:
            for owner in rs["metadata"].get("ownerReferences") or []:
                self.rs_by_owner.setdefault(owner.get("uid"), []).append(rs)
        for pod in self.pods:
            template_hash = (pod["metadata"].get("labels") or {}).get("pod-template-hash")
            if template_hash:
                self.pods_by_hash.setdefault(template_hash, []).append(pod)
            for owner in pod["metadata"].get("ownerReferences") or []:
                self.pods_by_owner.setdefault(owner.get("uid"), []).append(pod)

    def replicasets_of(self, workload):
        return self.rs_by_owner.get((workload.get("metadata") or {}).get("uid"), [])

    def current_pods(self, workload):
        kind, uid = workload.get("kind"), (workload.get("metadata") or {}).get("uid")
        if kind == "Deployment":
            replicasets = self.replicasets_of(workload)
            hashes = {(rs["metadata"].get("labels") or {}).get("pod-template-hash") for rs in replicasets}
            candidates = [p for h in sorted(hashes - {None}) for p in self.pods_by_hash.get(h, [])]
            return current_pods(workload, candidates, replicasets)
        if kind == "Job":
            return current_pods(workload, self.pods_by_owner.get(uid, []), [])
        return current_pods(workload, self.pods, [])
