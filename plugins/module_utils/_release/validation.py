# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checks a delivery makes before it reads the live state: the request itself, then the rendered manifests
against what the API serves. Each raises every problem at once; nothing is written before they pass."""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.discovery import Resource
from ansible_collections.slipway.platform.plugins.module_utils._kube.objects import (
    build_systems,
    crd_resources,
    place_objects,
)


def validated_systems(raw_systems, options):
    """``[System]`` from the rendered systems, once the request is one the engine may carry out."""
    if options.context == "production" and not options.confirmed:
        raise SlipwayError("refusing to deliver to production without confirmation",
                           hint="pass -e slipway_production_confirmed=true (module option confirmed: true)")
    systems = build_systems(raw_systems)
    both = sorted(set(options.retire) & {system.name for system in systems})
    if both:
        raise SlipwayError(f"system(s) {', '.join(both)} are both delivered and retired",
                           hint="take them out of the systems to deliver, or out of retire")
    return systems


def place(systems, discovery, context):
    """Resolve, namespace and label every object (``place_objects``), CRDs of this delivery counted as served."""
    errors = place_objects(systems, discovery, context, crd_resources(systems, Resource))
    if errors:
        raise SlipwayError(f"{len(errors)} problem(s) in the rendered manifests; nothing was written:\n- "
                           + "\n- ".join(errors), problems=errors)
