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

All three run through the delivery engine (``deliver(..., runner=ReleaseRun)``), so check mode is a server-side
dry-run and every step is a journal entry with its ``action``.
"""

from __future__ import annotations

import copy
import functools
import math

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.objects import (
    CONTEXT_LABEL,
    DIGEST_ANNOTATION,
    MANAGED_BY,
    SYSTEM_LABEL,
)
from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import deliver
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import Journal
from ansible_collections.slipway.platform.plugins.module_utils._release.rollback import ReleaseRun
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


def canary_deployment(stable, swaps, replicas, system):
    """The canary copy of one stable Deployment body (ownership labels are set again by the engine)."""
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
    swap_images(body, swaps)
    return body


def routes(services, pod_labels):
    """Names of the Services whose selector picks the canary's pods (the stable Service, normally)."""
    found = []
    for service in services:
        selector = (service.get("spec") or {}).get("selector") or {}
        if selector and all(pod_labels.get(k) == v for k, v in selector.items()):
            found.append(service["metadata"]["name"])
    return found


def plan_canary(entry, images, weight, system, live_replicas):
    """``(canary bodies, report)`` for ``start``; ``live_replicas``: ``{deployment name: stable spec.replicas}``."""
    swaps = new_images(entry, images, system)[0]
    objects = entry.get("objects") or []
    stables = [o for o in objects if o.get("kind") == "Deployment" and
               any(c.get("image") in swaps for c in containers(o))]
    if not stables:
        raise SlipwayError(f"no Deployment of system {system} runs the image(s) {', '.join(sorted(images))}; "
                           "a canary needs one")
    services = [o for o in objects if o.get("kind") == "Service"]
    bodies, report = [], []
    for stable in stables:
        name = stable["metadata"]["name"]
        replicas = live_replicas.get(name, (stable.get("spec") or {}).get("replicas", 1))
        canary, actual = split(replicas, weight)
        body = canary_deployment(stable, swaps, canary, system)
        bodies.append(body)
        report.append({"deployment": name, "canary": body["metadata"]["name"], "stable_replicas": replicas,
                       "canary_replicas": canary, "weight": actual,
                       "services": routes(services, body["spec"]["template"]["metadata"]["labels"])})
    return bodies, report


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


def canary(client, options, system, action, images=None, weight=None, reason=None, progress=None):
    """Start (or re-weight), promote or abort the canary of ``system``; returns the delivery result + ``canary``."""
    if action not in ACTIONS:
        raise SlipwayError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    record = _current(client, options)
    systems = record.get("systems") or {}
    name = canary_system(system)
    if system not in systems:
        raise SlipwayError(f"system {system} is not in the current release ({record['revision']}) of "
                           f"{options.context}: {', '.join(sorted(systems)) or 'none'}")
    if action == "start":
        if not images or weight is None:
            raise SlipwayError("a canary start needs images (image name -> reference) and weight")
        entry = _stored(client, options, record, [system])[system]
        deployments = [o["metadata"]["name"] for o in entry["objects"] if o.get("kind") == "Deployment"]
        bodies, report = plan_canary(entry, images, weight, system,
                                     _live_replicas(client, entry["namespace"], deployments))
        full = new_images(entry, images, system)[1]
        raw = [raw_system(name, dict(entry, objects=bodies, images=full, depends_on=[system]),
                          f"canary of {system}")]
        story = {"kind": "canary", "system": system, "weight": weight, "images": dict(images), "split": report,
                 "summary": f"canary of {system} at {weight}%"}
        drop = ()
    else:
        if name not in systems:
            raise SlipwayError(f"system {system} has no canary in the current release ({record['revision']}) "
                               f"of {options.context}; nothing to {action}")
        stored = _stored(client, options, record, [system, name] if action == "promote" else [])
        empty = raw_system(name, dict(systems[name], objects=[], depends_on=[system]), f"{action} of the canary")
        raw, report, drop = [empty], [], (name,)
        if action == "promote":
            stable, canary_entry = stored[system], stored[name]
            promoted = {k: v for k, v in canary_entry["images"].items() if stable["images"].get(k) != v}
            swaps, full = new_images(stable, promoted, system)
            objects = copy.deepcopy(stable["objects"])
            for body in objects:
                swap_images(body, swaps)
            promoted_story = f"promoted canary of {system}"
            raw.insert(0, raw_system(system, dict(stable, objects=objects, images=full), promoted_story))
            report = [{"images": promoted}]
        story = {"kind": f"canary-{action}", "system": system,
                 "summary": f"canary of {system} {'promoted' if action == 'promote' else 'aborted'}"}
    if reason:
        story["reason"] = reason
        story["summary"] += f": {reason}"
    runner = functools.partial(ReleaseRun, action=story, drop=drop)
    result = deliver(client, raw, options, progress=progress, runner=runner)
    result["canary"] = {"system": system, "action": action, "canary_system": name, "split": report}
    return result
