# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readiness: per-kind predicates (pure) and one shared waiter that watches every workload at once.

The waiter reads each collection once per round for all the objects waited on, and fails an object as soon
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

READY, PENDING, FAILED = "ready", "pending", "failed"
WAITED_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "Pod", "ReplicaSet", "CustomResourceDefinition"}
# pull failures (ErrImagePull, ImagePullBackOff) are decided by image_pull.classify, on the evidence
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
    return READY, ""


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


class WaitHub:
    """One polling loop for every target of a run: a LIST per collection per round, not per object."""

    def __init__(self, client, interval=0.5, clock=time.monotonic, notify=None):
        self.client = client
        self.notify = notify  # called with a progress line when a target starts waiting out a pull that can heal
        self.interval = interval
        self.clock = clock
        self._targets = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = None
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
        if self._thread:
            self._thread.join(timeout=5)

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
            self._wake.wait(self.interval)
            self._wake.clear()

    def _round(self, pending):
        groups = {}
        for target in pending:
            groups.setdefault((target.resource, target.namespace), []).append(target)
        pods_by_ns = {}
        for (resource, namespace), targets in groups.items():
            body = self.client.get(object_path(resource, namespace))
            live = {item["metadata"]["name"]: item for item in body.get("items") or []}
            for target in targets:
                obj = live.get(target.name)
                if obj is None:
                    target.reason = "not found (deleted while waiting?)"
                    continue
                obj.setdefault("kind", resource.kind)
                state, reason = readiness(obj)
                if state == FAILED and resource.kind == "Deployment" and reason.startswith("ProgressDeadline") \
                        and stale_deadline(obj, self._pods(namespace, True)[1]):
                    state, reason = PENDING, "rolling out again after an earlier revision timed out"
                if state == PENDING and resource.kind in ("Deployment", "StatefulSet", "DaemonSet", "Job") \
                        and (resource.kind == "Job" or _generation_seen(obj)):  # else: previous generation's pods
                    if namespace not in pods_by_ns:
                        pods_by_ns[namespace] = self._pods(namespace, resource.kind == "Deployment")
                    pods, replicasets = pods_by_ns[namespace]
                    mine = current_pods(obj, pods, replicasets)
                    verdicts = [pod_verdict(p) for p in mine]
                    failure = next((failed for failed, _healing in verdicts if failed), None)
                    healing = next((heals for _failed, heals in verdicts if heals), None)
                    if failure:
                        state, reason = FAILED, failure
                    elif healing:
                        reason = f"{reason}; waiting out a pull that can heal: {healing}"
                        self._tell(target, healing)
                    target.details = [pod_summary(p) for p in mine[:5]]
                target.state, target.reason = state, reason
                if state == FAILED:
                    target.details = target.details + self.events(namespace, target.name)
                if state != PENDING:
                    target.ready_at = self.clock()
                    target.done.set()

    def _tell(self, target, healing):
        if self.notify is not None and healing != target.said:
            target.said = healing
            self.notify(f"{target.label}: waiting out a pull that can heal: {healing}")

    def _pods(self, namespace, with_replicasets):
        pods = self.client.get(f"/api/v1/namespaces/{namespace}/pods").get("items") or []
        replicasets = []
        if with_replicasets:
            replicasets = self.client.get(f"/apis/apps/v1/namespaces/{namespace}/replicasets").get("items") or []
        return pods, replicasets

    def events(self, namespace, name, limit=5):
        """The latest warning events about an object and its pods (best effort)."""
        if not namespace:
            return []
        try:
            items = self.client.get(f"/api/v1/namespaces/{namespace}/events").get("items") or []
        except SlipwayError:
            return []
        related = [e for e in items if (e.get("involvedObject") or {}).get("name", "").startswith(name)
                   and e.get("type") == "Warning"]
        related.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        return [f"event {e['involvedObject'].get('kind')}/{e['involvedObject'].get('name')}: "
                f"{e.get('reason')}: {e.get('message', '').strip()}" for e in related[-limit:]]
