# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning a canary (pure): the replica split, the canary copies of the stable Deployments and, in route mode,
the canary twins of the stable Services. ``canary.py`` runs the steps; see its docstring for the whole story."""

from __future__ import annotations

import copy
import math

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.objects import (
    CONTEXT_LABEL,
    DIGEST_ANNOTATION,
    MANAGED_BY,
    SYSTEM_LABEL,
)

TRACK_LABEL = "slipway.io/track"
CANARY_OF = "slipway.io/canary-of"
SUFFIX = "-canary"


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
