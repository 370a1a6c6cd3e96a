# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""When a delivery runs a system's health gates (``health.py`` runs them), and what its result says about them."""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError

HEALTHY_RESULTS = ("ok", "changed", "carried")  # a system's recorded results that need no new health check


def health_due(run, last_systems):
    """Whether this delivery must check the system's gates (it declares some and its workloads were waited for).

    A system this delivery changes is checked; so is one whose last recorded result was not a success (a
    redelivery that repairs a failed release must prove it healthy). An unchanged, healthy system is not: a
    redelivery that changes nothing stays fast (and makes no request at all).
    """
    if run.changed:
        return True
    previous = last_systems.get(run.system.name) or {}
    return previous.get("result") not in HEALTHY_RESULTS


def check_health(run, options, last_systems, health_check, lease, say):
    """Run the system's health gates after its rollout; a failing gate fails the system like a failed rollout."""
    if not run.system.health:
        return
    if not options.wait:
        run.health = {"state": "not run", "reason": "wait is off", "gates": []}
        say(f"{run.system.name}: health gates not run (wait is off)")
        return
    if not health_due(run, last_systems):
        run.health = {"state": "skipped", "reason": "unchanged and healthy in the last release", "gates": []}
        return
    lease.check()
    try:
        gates = health_check.check(run.system, say=say)
    except SlipwayError as exc:
        run.health = {"state": "failed", "reason": exc.msg, "gates": exc.details.get("health") or []}
        run.details = list(exc.details.get("details") or [])
        raise
    run.health = {"state": "passed", "reason": "", "gates": gates}
    lease.check()


def health_row(run, check_mode):
    """The system's gate outcome for its result row (``None`` when it declares no gate)."""
    if not run.system.health:
        return None
    if run.health is not None:
        return run.health
    reason = "check mode" if check_mode else \
        "nothing to deliver" if run.result == "ok" else f"the system ended {run.result}"
    return {"state": "not run", "reason": reason, "gates": []}
