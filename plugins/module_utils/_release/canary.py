# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Canary and A/B without an in-cluster controller: a canary Deployment beside the stable one.

The canary of system ``S`` is a release-tracked system of its own, ``S-canary``: for every Deployment of ``S`` that
runs one of the changed images, a copy named ``<name>-canary`` with the new image(s), the pod label
``slipway.io/track=canary`` (added to its selector too) and a replica count that gives the weight asked for.
Its pods keep every label of the stable pods, so the stable Service's selector sends them their share of the
traffic: a replica-proportional split, ``canary / (stable + canary)``. The stable Deployment is not touched.

- ``start`` (again, to change the weight or the image): deliver ``S-canary`` (lock, dry-run, wait, journal);
- ``promote``: deliver ``S`` with the canary's images (the stable Deployment rolls out to them), then remove
  ``S-canary`` once ``S`` is ready; one journal entry;
- ``abort``: remove ``S-canary``; nothing else changes; one journal entry.

All three run through the delivery engine (``deliver(..., runner=RoutedRun)``), so check mode is a server-side
dry-run and every step is a journal entry with its ``action``.

With a ``route`` (a Gateway API HTTPRoute, ``canary_route.py``) the split is by the route instead: the canary pods
leave the stable Services (the values of those Services' selector labels get ``-canary``), a canary Service
``<service>-canary`` selects them, and the route's rules send ``weight`` percent (and, with a header, every request
carrying it) to that Service. The route is written under the same Lease: after the canary is ready on ``start``,
before the canary's objects go on ``promote`` and ``abort`` (which put the route's rules back as they were).
"""

from __future__ import annotations

import copy
import functools
import math

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import MERGE_PATCH, object_path
from ansible_collections.slipway.platform.plugins.module_utils._kube.discovery import Discovery
from ansible_collections.slipway.platform.plugins.module_utils._kube.normalize import minimal_diff
from ansible_collections.slipway.platform.plugins.module_utils._kube.objects import (
    CONTEXT_LABEL,
    DIGEST_ANNOTATION,
    MANAGED_BY,
    SYSTEM_LABEL,
)
from ansible_collections.slipway.platform.plugins.module_utils._release import canary_route as rt
from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import ReleaseRun, deliver
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import Journal
from ansible_collections.slipway.platform.plugins.module_utils._release.snapshot import SnapshotReader, raw_system

TRACK_LABEL = "slipway.io/track"
CANARY_OF = "slipway.io/canary-of"
SUFFIX = "-canary"
ACTIONS = ("start", "promote", "abort")


def canary_system(system):
    return f"{system}{SUFFIX}"


def split(stable, weight):
    """Canary replicas for ``weight`` percent beside ``stable`` replicas: ``(canary, actual weight)``."""
    if not 0 < weight < 100:
        raise SlipwayError(f"weight must be between 1 and 99 (percent of the traffic), not {weight}")
    if stable < 1:
        raise SlipwayError("the stable Deployment has no replicas; a replica-proportional split needs at least one")
    canary = max(1, int(math.floor(stable * weight / (100.0 - weight) + 0.5)))
    return canary, round(100.0 * canary / (stable + canary), 1)


def containers(body):
    spec = ((body.get("spec") or {}).get("template") or {}).get("spec") or {}
    return (spec.get("containers") or []) + (spec.get("initContainers") or [])


def swap_images(body, swaps):
    """Replace every container image found in ``swaps`` (old reference -> new); True when one was replaced."""
    found = False
    for container in containers(body):
        if container.get("image") in swaps:
            container["image"] = swaps[container["image"]]
            found = True
    return found


def new_images(entry, images, system):
    """``(old -> new reference swaps, the system's full new image map)``; unknown image names are refused."""
    current = entry.get("images") or {}
    unknown = sorted(set(images) - set(current))
    if unknown:
        raise SlipwayError(f"system {system} has no image(s) {', '.join(unknown)}; its images: "
                           f"{', '.join(sorted(current)) or 'none'}")
    swaps = {current[name]: ref for name, ref in images.items() if current[name] != ref}
    if not swaps:
        raise SlipwayError(f"the canary of {system} would run the images the stable release already runs")
    return swaps, dict(current, **images)


def _without_ownership(metadata):
    labels = {k: v for k, v in (metadata.get("labels") or {}).items()
              if k not in (MANAGED_BY, SYSTEM_LABEL, CONTEXT_LABEL)}
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if k != DIGEST_ANNOTATION}
    metadata["labels"], metadata["annotations"] = labels, annotations
    return metadata


def canary_value(key, value):
    """A selector label value the canary pods carry instead of the stable one (so stable Services skip them)."""
    found = f"{value}{SUFFIX}" if value else SUFFIX[1:]
    if len(found) > 63:
        raise SlipwayError(f"label {key}={value} is too long to mark the canary pods ({found!r} passes 63 "
                           "characters); shorten it, or run the canary without a route (replica split)")
    return found


def canary_deployment(stable, swaps, replicas, system, relabel=()):
    """The canary copy of one stable Deployment body (ownership labels are set again by the engine).

    ``relabel``: pod label keys whose values get ``-canary`` (route mode: the stable Services' selector keys).
    """
    body = copy.deepcopy(stable)
    metadata = _without_ownership(body["metadata"])
    metadata["name"] = f"{stable['metadata']['name']}{SUFFIX}"
    metadata["labels"][TRACK_LABEL] = "canary"
    metadata["annotations"][CANARY_OF] = system
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        metadata.pop(key, None)
    spec = body["spec"]
    spec["replicas"] = replicas
    selector = spec.setdefault("selector", {})
    selector["matchLabels"] = dict(selector.get("matchLabels") or {}, **{TRACK_LABEL: "canary"})
    template_meta = spec["template"].setdefault("metadata", {})
    template_meta["labels"] = dict(template_meta.get("labels") or {}, **{TRACK_LABEL: "canary"})
    for key in relabel:
        if any(e.get("key") == key for e in selector.get("matchExpressions") or []):
            raise SlipwayError(f"Deployment {stable['metadata']['name']} selects label {key} with matchExpressions; "
                               "a routed canary cannot move its pods out of the stable Services")
        for labels in (template_meta["labels"], selector["matchLabels"]):
            if key in labels:
                labels[key] = canary_value(key, labels[key])
    swap_images(body, swaps)
    return body


def canary_service(stable, pod_labels, system):
    """The canary twin of a stable Service: the same ports, selecting only the canary's pods."""
    selector = (stable.get("spec") or {}).get("selector") or {}
    ports = [{k: port[k] for k in ("name", "port", "targetPort", "protocol", "appProtocol") if k in port}
             for port in (stable.get("spec") or {}).get("ports") or []]
    metadata = _without_ownership(copy.deepcopy(stable["metadata"]))
    metadata = {"name": f"{stable['metadata']['name']}{SUFFIX}",
                "labels": dict(metadata["labels"], **{TRACK_LABEL: "canary"}),
                "annotations": dict(metadata["annotations"], **{CANARY_OF: system})}
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata,
            "spec": {"type": "ClusterIP", "ports": ports,
                     "selector": dict({k: pod_labels[k] for k in selector}, **{TRACK_LABEL: "canary"})}}


def routes(services, pod_labels):
    """Names of the Services whose selector picks the canary's pods (the stable Service, normally)."""
    found = []
    for service in services:
        selector = (service.get("spec") or {}).get("selector") or {}
        if selector and all(pod_labels.get(k) == v for k, v in selector.items()):
            found.append(service["metadata"]["name"])
    return found


def plan_canary(entry, images, weight, system, live_replicas, routed=None):
    """``(canary bodies, report, {stable Service: canary Service})`` for ``start``.

    ``live_replicas``: ``{deployment name: stable spec.replicas}``; ``routed``: the Services the route sends to
    (route mode), ``None`` for the replica-proportional split behind the stable Service.
    """
    swaps = new_images(entry, images, system)[0]
    objects = entry.get("objects") or []
    stables = [o for o in objects if o.get("kind") == "Deployment" and
               any(c.get("image") in swaps for c in containers(o))]
    if not stables:
        raise SlipwayError(f"no Deployment of system {system} runs the image(s) {', '.join(sorted(images))}; "
                           "a canary needs one")
    services = [o for o in objects if o.get("kind") == "Service"]
    bodies, report, canaries = [], [], {}
    for stable in stables:
        name = stable["metadata"]["name"]
        replicas = live_replicas.get(name, (stable.get("spec") or {}).get("replicas", 1))
        if routed is None:
            canary, actual = split(replicas, weight)
            body = canary_deployment(stable, swaps, canary, system)
            bodies.append(body)
            report.append({"deployment": name, "canary": body["metadata"]["name"], "stable_replicas": replicas,
                           "canary_replicas": canary, "weight": actual,
                           "services": routes(services, body["spec"]["template"]["metadata"]["labels"])})
            continue
        # Route mode: the route decides the traffic; replicas still follow the weight, so capacity does too.
        canary = split(replicas, weight)[0] if weight else 1
        stable_labels = ((stable["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
        selecting = [s for s in services if s["metadata"]["name"] in routes(services, stable_labels)]
        relabel = sorted({k for s in selecting for k in s["spec"]["selector"]})
        body = canary_deployment(stable, swaps, canary, system, relabel=relabel)
        bodies.append(body)
        pod_labels = body["spec"]["template"]["metadata"]["labels"]
        twins = []
        for service in selecting:
            if service["metadata"]["name"] in routed and service["metadata"]["name"] not in canaries:
                twin = canary_service(service, pod_labels, system)
                bodies.append(twin)
                canaries[service["metadata"]["name"]] = twin["metadata"]["name"]
                twins.append(twin["metadata"]["name"])
        report.append({"deployment": name, "canary": body["metadata"]["name"], "stable_replicas": replicas,
                       "canary_replicas": canary, "weight": float(weight), "services": twins})
    return bodies, report, canaries


def _current(client, options):
    records = Journal(client, options.context, options.journal_namespace).records()
    if not records:
        raise SlipwayError(f"context {options.context} has no release yet; deliver before a canary")
    return records[-1]


def _stored(client, options, record, names):
    return SnapshotReader(client, options.context, options.journal_namespace).release_objects(record, names)


def _live_replicas(client, namespace, names):
    found = {}
    for name in names:
        live = client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}", ok_missing=True)
        if live is not None:
            found[name] = (live.get("spec") or {}).get("replicas", 1)
    return found


def missing_route(route, context):
    return SlipwayError(f"{rt.label(route)} does not exist in context {context}; nothing was written",
                        hint="create the route (its rules sending traffic to the system's stable Service), or give "
                             "the right route name and namespace")


class RouteStep:
    """The HTTPRoute write of one canary step: assessed with the plan, dry-run with the prediction, then written.

    ``desired(live)`` gives the route body to write (``None``: nothing to write). ``restore`` steps also hand the
    restored fields back (``canary_route.without_manager``) once written.
    """

    def __init__(self, client, options, resource, route, desired, restore=False, canary_services=()):
        self.client = client
        self.context = options.context
        self.resource = resource
        self.route = route
        self.desired = desired
        self.restore = restore
        self.canary_services = set(canary_services)
        self.path = object_path(resource, route["namespace"], route["name"])
        self.live = self.body = self.diff = None
        self.fields = []
        self.written = False

    def assess(self):
        self.live = self.client.get(self.path, ok_missing=True)
        if self.live is None:
            if self.restore:  # the route is gone, so nothing sends traffic to the canary any more
                self.body, self.fields = None, []
                return self
            raise missing_route(self.route, self.context)
        self.body = self.desired(self.live)
        if self.body is None and self.restore:
            still = set(rt.routed_services((self.live.get("spec") or {}).get("rules") or [],
                                           self.route)) & self.canary_services
            if still:
                raise SlipwayError(f"{rt.label(self.route)} still sends traffic to {', '.join(sorted(still))} but "
                                   f"carries no saved rules (annotation {rt.ROUTE_ANNOTATION} removed?); nothing was "
                                   "written", hint="take the canary Service(s) out of the route by hand, then run "
                                                   "the step again")
        self.fields = rt.route_fields(self.live, self.body) if self.body is not None else []
        return self

    @property
    def changed(self):
        return bool(self.fields)

    def _put(self, body, dry_run):
        query = {"fieldManager": rt.ROUTE_MANAGER, "fieldValidation": "Strict", "dryRun": "All" if dry_run else None}
        return self.client.request("PUT", self.path, body=body, query=query)

    def predict(self):
        """Server-side dry-run of the write (the same predicate decides in check mode and in a real run)."""
        if not self.changed:
            return self
        try:
            predicted = self._put(self.body, dry_run=True)
        except SlipwayError as exc:
            said = exc.details.get("api_message") or exc.msg
            raise SlipwayError(f"{rt.label(self.route)}: the API server refused the canary's change to it in a "
                               f"server-side dry-run; nothing was written: {said}",
                               **{k: v for k, v in exc.details.items() if k in ("status", "reason", "causes", "hint")}
                               ) from None
        self.fields = rt.route_fields(self.live, predicted)
        self.diff = minimal_diff(rt.route_part(self.live), rt.route_part(predicted))
        return self

    def write(self):
        """Write against the route as it is now (resourceVersion-checked; a concurrent edit is read again)."""
        for attempt in range(3):
            self.assess()
            if not self.changed:
                return False
            try:
                written = self._put(self.body, dry_run=False)
                break
            except SlipwayError as exc:
                if exc.details.get("status") != 409 or attempt == 2:
                    raise
        self.written = True
        if self.restore:
            self._hand_back(written)
        return True

    def _hand_back(self, written):
        for _attempt in range(3):
            trimmed = rt.without_manager((written.get("metadata") or {}).get("managedFields"))
            if trimmed is None:
                return
            # An empty list would leave managedFields as they are; [{}] is the API's way to clear them.
            body = {"metadata": {"resourceVersion": written["metadata"]["resourceVersion"],
                                 "managedFields": trimmed or [{}]}}
            try:
                self.client.request("PATCH", self.path, body=body, content_type=MERGE_PATCH)
                return
            except SlipwayError as exc:
                if exc.details.get("status") != 409:
                    raise
                written = self.client.get(self.path)

    def report(self, system):
        return {"system": system, "kind": rt.ROUTE_KIND, "name": self.route["name"],
                "namespace": self.route["namespace"], "action": "update", "fields": self.fields[:20]}


class RoutedRun(ReleaseRun):
    """A release step (canary step, rollback) through the engine, plus the HTTPRoute writes of routed canaries.

    ``routes``: ``{canary system: RouteStep}``. ``start`` writes the route once the canary system is applied and
    ready, so it never names a Service without pods; a restore (``promote``, ``abort``, a rollback that removes the
    canary) writes it before the canary's objects are pruned, so it never names a Service that is gone. A route's
    write counts as a change, so a re-weight that keeps the replicas is still a step. ``route_entries``: what the
    journal records on a started canary system (``{canary system: route entry}``).
    """

    def __init__(self, client, raw_systems, options, progress=None, action=None, drop=(), routes=None,
                 route_entries=None):
        super().__init__(client, raw_systems, options, progress, action=action, drop=drop)
        self.routes = dict(routes or {})
        self.route_entries = dict(route_entries or {})

    def plan(self):
        super().plan()
        for step in self.routes.values():
            step.assess()

    def predict(self):
        super().predict()
        for step in self.routes.values():
            step.predict()

    def nothing_to_do(self):
        return super().nothing_to_do() and not any(step.changed for step in self.routes.values())

    def _write_route(self, name):
        self.lease.check()
        if self.routes[name].write():
            self.say(f"{name}: updated {rt.label(self.routes[name].route)}")

    def deliver_system(self, run, requests, hub):
        step = self.routes.get(run.system.name)
        if step is None:
            return super().deliver_system(run, requests, hub)
        if step.restore:
            self._write_route(run.system.name)
            return super().deliver_system(run, requests, hub)
        super().deliver_system(run, requests, hub)
        self._write_route(run.system.name)
        return None

    def new_record(self, outcome, message, dry=False):
        record = super().new_record(outcome, message, dry=dry)
        for name, entry in self.route_entries.items():
            if name in record["systems"]:
                record["systems"][name]["route"] = dict(entry)
        return record

    def result(self, changed, record=None):
        out = super().result(changed, record)
        for name, step in self.routes.items():
            if not step.changed:
                continue
            out["objects"].append(step.report(name))
            if self.opts.diff and step.diff:
                where = rt.label(step.route)
                out["diff"].append({"before_header": f"{where} (live)", "after_header": f"{where} (desired)",
                                    "before": step.diff[0], "after": step.diff[1]})
        return out


def restore_steps(client, options, record, names):
    """``{canary system: RouteStep}`` that put back the routes of the routed canaries among ``names`` of ``record``.

    Each is assessed here, so a route that lost its saved rules is refused before anything is written.
    """
    steps = {}
    for name in names:
        entry = (record.get("systems") or {}).get(name) or {}
        running = entry.get("route")
        if not running or not name.endswith(SUFFIX):
            continue
        where = dict(running, services_namespace=entry.get("namespace"))
        steps[name] = RouteStep(client, options, route_resource(client, options), where,
                                desired=functools.partial(rt.restored_route, system=name[:-len(SUFFIX)]),
                                restore=True, canary_services=(running.get("services") or {}).values()).assess()
    return steps


def route_resource(client, options):
    found = Discovery(client).known(rt.ROUTE_API_VERSION, rt.ROUTE_KIND)
    if found is None:
        raise SlipwayError(f"context {options.context} does not serve {rt.ROUTE_API_VERSION} {rt.ROUTE_KIND} (no "
                           "Gateway API CRDs); nothing was written",
                           hint="install the Gateway API standard CRDs and a gateway that implements HTTPRoute, or "
                                "start the canary without route (a replica split behind the stable Service)")
    return found


def _start_route(client, options, system, entry, images, weight, route, running):
    """``(bodies, report, RouteStep, route entry)`` of a routed start, checked before anything is written."""
    request = rt.route_request(route, entry["namespace"])
    if running is not None and (running.get("name"), running.get("namespace")) != (request["name"],
                                                                                   request["namespace"]):
        raise SlipwayError(f"the running canary of {system} routes through {rt.label(running)}; start it again "
                           "with that route to re-weight it, or abort it first")
    resource = route_resource(client, options)
    step = RouteStep(client, options, resource, request, desired=None)
    live = client.get(step.path, ok_missing=True)
    if live is None:
        raise missing_route(request, options.context)
    routed = set(rt.routed_services(rt.rules_before(live, system), request))
    deployments = [o["metadata"]["name"] for o in entry["objects"] if o.get("kind") == "Deployment"]
    bodies, report, canaries = plan_canary(entry, images, weight, system,
                                           _live_replicas(client, entry["namespace"], deployments), routed=routed)

    def desired(current):
        return rt.started_route(current, system, canaries, weight, request["header"], request)
    desired(live)  # every problem with the route is raised here, before the first write
    step.desired = desired
    step.canary_services = set(canaries.values())
    recorded = {"name": request["name"], "namespace": request["namespace"], "weight": weight,
                "header": request["header"], "services": canaries}
    return bodies, report, step, recorded


def _start_plan(client, options, record, system, images, weight, route):
    """``(raw systems, split report, RouteStep or None, route entry or None)`` of a ``start``."""
    if not images or weight is None:
        raise SlipwayError("a canary start needs images (image name -> reference) and weight")
    name = canary_system(system)
    systems = record.get("systems") or {}
    running = (systems.get(name) or {}).get("route")
    if name in systems and bool(running) != bool(route):
        raise SlipwayError(f"the running canary of {system} splits the traffic "
                           f"{'through ' + rt.label(running) if running else 'by replicas'}; start it again the "
                           "same way to re-weight it, or abort it first to change how it is split")
    entry = _stored(client, options, record, [system])[system]
    step = route_entry = None
    if route:
        bodies, report, step, route_entry = _start_route(client, options, system, entry, images, weight, route,
                                                         running)
    else:
        deployments = [o["metadata"]["name"] for o in entry["objects"] if o.get("kind") == "Deployment"]
        bodies, report = plan_canary(entry, images, weight, system,
                                     _live_replicas(client, entry["namespace"], deployments))[:2]
    full = new_images(entry, images, system)[1]
    raw = [raw_system(name, dict(entry, objects=bodies, images=full, depends_on=[system]), f"canary of {system}")]
    return raw, report, step, route_entry


def _end_plan(client, options, record, system, action):
    """``(raw systems, report, route steps, route report or None)`` of a ``promote`` or ``abort``."""
    name = canary_system(system)
    systems = record.get("systems") or {}
    if name not in systems:
        raise SlipwayError(f"system {system} has no canary in the current release ({record['revision']}) "
                           f"of {options.context}; nothing to {action}")
    running = systems[name].get("route")
    steps = restore_steps(client, options, record, [name])
    route_report = {"name": running["name"], "namespace": running["namespace"], "restored": True} if steps else None
    empty = raw_system(name, dict(systems[name], objects=[], depends_on=[system]), f"{action} of the canary")
    if action == "abort":
        return [empty], [], steps, route_report
    stored = _stored(client, options, record, [system, name])
    stable, canary_entry = stored[system], stored[name]
    promoted = {k: v for k, v in canary_entry["images"].items() if stable["images"].get(k) != v}
    swaps, full = new_images(stable, promoted, system)
    objects = copy.deepcopy(stable["objects"])
    for body in objects:
        swap_images(body, swaps)
    promoted_entry = dict(stable, objects=objects, images=full, health=(systems.get(system) or {}).get("health"))
    raw = [raw_system(system, promoted_entry, f"promoted canary of {system}"), empty]  # checked like its delivery
    return raw, [{"images": promoted}], steps, route_report


def canary(client, options, system, action, images=None, weight=None, reason=None, progress=None, route=None):
    """Start (or re-weight), promote or abort the canary of ``system``; returns the delivery result + ``canary``.

    ``route`` (start only): ``{name, namespace?, header?: {name, value}}``, the HTTPRoute that splits the traffic
    by weight (and header); without it the split is replica-proportional behind the stable Service.
    """
    if action not in ACTIONS:
        raise SlipwayError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    record = _current(client, options)
    systems = record.get("systems") or {}
    name = canary_system(system)
    if system not in systems:
        raise SlipwayError(f"system {system} is not in the current release ({record['revision']}) of "
                           f"{options.context}: {', '.join(sorted(systems)) or 'none'}")
    if action == "start":
        raw, report, step, route_entry = _start_plan(client, options, record, system, images, weight, route)
        route_report, drop = (dict(route_entry) if route_entry else None), ()
        steps, entries = ({name: step}, {name: route_entry}) if step else ({}, {})
        story = {"kind": "canary", "system": system, "weight": weight, "images": dict(images), "split": report,
                 "summary": f"canary of {system} at {weight}%"}
    else:
        if route:
            raise SlipwayError(f"route is for start only; {action} uses the route the canary of {system} was "
                               "started with (recorded in the journal)")
        raw, report, steps, route_report = _end_plan(client, options, record, system, action)
        entries, drop = {}, (name,)
        story = {"kind": f"canary-{action}", "system": system,
                 "summary": f"canary of {system} {'promoted' if action == 'promote' else 'aborted'}"}
    if route_report:
        story["route"] = route_report
    if reason:
        story["reason"] = reason
        story["summary"] += f": {reason}"
    runner = functools.partial(RoutedRun, action=story, drop=drop, routes=steps, route_entries=entries)
    result = deliver(client, raw, options, progress=progress, runner=runner)
    result["canary"] = {"system": system, "action": action, "canary_system": name, "split": report,
                        "route": route_report}
    return result
