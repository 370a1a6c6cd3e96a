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

All three run through the delivery engine (``deliver(..., runner=Delivery with RouteWrites)``), so check mode is
a server-side dry-run and every step is a journal entry with its ``action``.

With a ``route`` (a Gateway API HTTPRoute: its bodies in ``canary_route.py``, its writes in ``routing.py``) the
split is by the route instead: the canary pods leave the stable Services (the values of those Services' selector
labels get ``-canary``), a canary Service ``<service>-canary`` selects them, and the route's rules send ``weight``
percent (and, with a header, every request carrying it) to that Service. The route is written under the same Lease:
after the canary is ready on ``start``, before the canary's objects go on ``promote`` and ``abort`` (which put the
route's rules back as they were).
"""

from __future__ import annotations

import copy
import functools

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import api_path
from ansible_collections.slipway.platform.plugins.module_utils._release import canary_route as rt
from ansible_collections.slipway.platform.plugins.module_utils._release.canary_plan import (
    canary_system,
    new_images,
    plan_canary,
    swap_images,
)
from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import deliver
from ansible_collections.slipway.platform.plugins.module_utils._release.engine import Delivery
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import Journal
from ansible_collections.slipway.platform.plugins.module_utils._release.routing import (
    RouteStep,
    RouteWrites,
    missing_route,
    restore_steps,
    route_resource,
)
from ansible_collections.slipway.platform.plugins.module_utils._release.snapshot import SnapshotReader, raw_system

ACTIONS = ("start", "promote", "abort")


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
        live = client.get(api_path("apps/v1", "deployments", namespace, name), ok_missing=True)
        if live is not None:
            found[name] = (live.get("spec") or {}).get("replicas", 1)
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


def canary(client, options, system, action, images=None, weight=None, reason=None, progress=None, route=None,
           gates=None):
    """Start (or re-weight), promote or abort the canary of ``system``; returns the delivery result + ``canary``.

    ``route`` (start only): ``{name, namespace?, header?: {name, value}}``, the HTTPRoute that splits the traffic
    by weight (and header); without it the split is replica-proportional behind the stable Service.
    ``gates``: the metric gate samples the step rests on (``canary_steps.py``), recorded with its journal entry.
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
    if gates:
        story["gates"] = gates
    runner = functools.partial(Delivery, action=story, drop=drop, companions=[RouteWrites(steps, entries)])
    result = deliver(client, raw, options, progress=progress, runner=runner)
    result["canary"] = {"system": system, "action": action, "canary_system": name, "split": report,
                        "route": route_report}
    return result
