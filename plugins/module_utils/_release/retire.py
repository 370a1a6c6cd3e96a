# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which recorded systems a delivery takes out of the context, and the rules that refuse a retirement.

A system leaves a context only when asked (``retire``, or ``retire_absent`` for every recorded system not
delivered now); the others stay as recorded (``not_delivered``). A system to retire becomes an empty system, so its
objects are pruned, that runs after every delivered one: the new versions are ready before the old systems go.
"""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.objects import build_systems


def retirement(systems, recorded, leaving, retire, retire_absent):
    """``(empty systems to retire, names not delivered)`` for ``systems`` delivered after the release ``recorded``.

    ``leaving``: names already leaving the release (a rollback's dropped systems). Retiring a system that is not
    recorded (any more) is nothing to do, so retiring twice is idempotent.
    """
    delivered = [system.name for system in systems if system.name not in leaving]
    absent = sorted(set(recorded) - set(delivered) - leaving)
    retiring = absent if retire_absent else sorted(set(retire) & set(absent))
    not_delivered = [name for name in absent if name not in retiring]
    needed = {f"{system.name} depends on {dep}" for system in systems for dep in system.depends_on
              if dep in retiring}
    if needed:
        raise SlipwayError(f"cannot retire what delivered systems depend on: {'; '.join(sorted(needed))}",
                           hint="retire the dependent systems too, or remove the dependency from their slipway.yml")
    routed = sorted(name for name in retiring if (recorded[name] or {}).get("route"))
    if routed:
        raise SlipwayError(f"cannot retire {', '.join(routed)}: a canary routed through an HTTPRoute, which would "
                           "keep sending its share of the traffic to a Service that is gone",
                           hint="promote or abort the canary first (playbooks/canary.yml), then deliver again")
    if not retiring:
        return [], not_delivered
    empty = build_systems([{"name": name, "namespace": recorded[name].get("namespace"), "documents": []}
                           for name in retiring])
    for system in empty:
        system.depends_on = list(delivered)  # the new versions are ready before the old systems go
    return empty, not_delivered
