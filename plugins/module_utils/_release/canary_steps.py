# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A canary that promotes itself step by step while its metric gates pass, and aborts itself otherwise.

``progress`` runs the canary of ``system`` at each weight of ``steps`` (10 % then 50 % by default). After each
step is ready, the system's metric gates (``health:`` entries with a ``query``, recorded in the current release)
are sampled with ``${track}`` = ``canary``, so they look at the canary's pods only. All pass: the next step, and
after the last one the canary is promoted (100 %). One fails, or a step does not become ready: the canary is
aborted, so the stable release keeps all the traffic, and the error says which step failed and why. The abort or
promote journal entry carries every step's gate samples (``action.gates``).

Each step is an ordinary ``canary.canary`` call (its own Lease, dry-run, wait and journal entry); this module only
decides whether to go on. A system without metric gates is refused: promoting it would be ungated.
"""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._gates import parse_health
from ansible_collections.slipway.platform.plugins.module_utils._release.canary import canary
from ansible_collections.slipway.platform.plugins.module_utils._release.canary_plan import canary_system
from ansible_collections.slipway.platform.plugins.module_utils._release.health import HealthCheck
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import Journal
from ansible_collections.slipway.platform.plugins.module_utils._system import System

DEFAULT_STEPS = (10, 50)


def check_steps(steps):
    """The weights to go through before the promotion: rising, each from 1 to 99."""
    steps = list(steps or DEFAULT_STEPS)
    if not all(isinstance(w, int) and not isinstance(w, bool) and 0 < w < 100 for w in steps) \
            or steps != sorted(set(steps)):
        raise SlipwayError(f"steps must be rising weights from 1 to 99 (percent; 100 is the promotion), got {steps}")
    return steps


def metric_gates(record, system, context):
    """``(System for the gates, [metric Gate])`` of ``system`` in the current release ``record``."""
    entry = (record.get("systems") or {}).get(system)
    if entry is None:
        raise SlipwayError(f"system {system} is not in the current release ({record.get('revision')}) of "
                           f"{context}; deliver it before its canary")
    gates, problems = parse_health(entry.get("health"), system, entry.get("namespace"))
    if problems:
        raise SlipwayError(f"the recorded health gates of {system} do not parse: {'; '.join(problems)}")
    gates = [g for g in gates if g.kind == "metric"]
    if not gates:
        raise SlipwayError(f"system {system} declares no metric gate (a health: entry with query and threshold), so "
                           "a stepped canary has nothing to decide on; declare one and deliver, or use start and "
                           "promote by hand")
    return System(name=canary_system(system), namespace=entry.get("namespace"), health=gates), gates


def progress(client, options, system, images, steps=None, route=None, reason=None, say=None, health_check=None):
    """Step the canary of ``system`` through ``steps``, then promote it; abort it at the first failing gate.

    Returns the last step's result (the promotion's) with ``canary.steps``: one row per step with its gate
    reports. ``health_check``: a ``HealthCheck`` (tests pass one with a fake query).
    """
    steps = check_steps(steps)
    say = say or (lambda line: None)
    records = Journal(client, options.context, options.journal_namespace).records()
    if not records:
        raise SlipwayError(f"context {options.context} has no release yet; deliver before a canary")
    record = records[-1]
    subject, gates = metric_gates(record, system, options.context)
    checker = health_check or HealthCheck(client, options.context, prometheus_url=options.prometheus_url)
    done = []
    for weight in steps:
        try:
            result = canary(client, options, system, "start", images=images, weight=weight, route=route,
                            reason=reason, progress=say)
        except SlipwayError as exc:
            done.append({"weight": weight, "passed": False, "reason": exc.msg, "gates": []})
            raise _aborted(client, options, system, done, f"the canary at {weight}% failed: {exc.msg}") from None
        if options.check_mode:  # nothing runs, so there is nothing to sample: the first step's prediction
            result["canary"]["steps"] = [{"weight": weight, "passed": None, "reason": "check mode", "gates": []}]
            return result
        try:
            reports = checker.check(subject, say=say, track="canary", gates=gates, subject=system)
        except SlipwayError as exc:
            done.append({"weight": weight, "passed": False, "reason": exc.msg,
                         "gates": exc.details.get("health") or []})
            raise _aborted(client, options, system, done, f"a metric gate failed at {weight}%: {exc.msg}") from None
        done.append({"weight": weight, "passed": True, "reason": "", "gates": reports})
        say(f"{system}: canary at {weight}% passed its metric gates")
    passed = ", ".join(f"{w}%" for w in steps)
    result = canary(client, options, system, "promote", reason=_story(reason, f"gates passed at {passed}"),
                    progress=say, gates=done)
    result["canary"]["steps"] = done
    return result


def _story(reason, what):
    return f"{reason}: {what}" if reason else what


def _aborted(client, options, system, done, why):
    """Abort the canary (the stable release keeps all the traffic); the error to raise says why, and the abort."""
    try:
        aborted = canary(client, options, system, "abort", reason=why, gates=done)
    except SlipwayError as exc:
        return SlipwayError(f"{why}; the abort failed too: {exc.msg} (abort it by hand: action=abort)",
                            steps=done, aborted=False)
    return SlipwayError(f"{why}; the canary was aborted (revision {aborted.get('revision')}), the stable release "
                        "keeps all the traffic", steps=done, aborted=True, revision=aborted.get("revision"))
