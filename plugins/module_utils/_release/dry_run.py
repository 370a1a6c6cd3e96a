# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The server-side dry-run of every object the fast predicate could not clear; every error at once, before any
write."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError


def dry_run(runs, applier, concurrency):
    """Predict each pending plan (its action, diff and fields); raise naming every object the server refused."""
    plans = [p for run in runs.values() for p in run.plans]
    new_namespaces = {p.desired.name for p in plans if p.desired.kind == "Namespace" and p.action == "create"}
    for plan in plans:
        # objects in a namespace or of a kind this delivery creates are dry-run once those exist
        plan.deferred = plan.desired.pending_crd or plan.desired.namespace in new_namespaces
    pending = [p for p in plans if p.action != "unchanged" and not p.deferred]
    errors = []

    def one(plan):
        try:
            applier.predict(plan)
        except SlipwayError as exc:
            plan.action = "failed"
            errors.append(exc)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        list(pool.map(one, pending))
    if errors:
        problems = sorted(e.msg for e in errors)
        raise SlipwayError(f"{len(problems)} object(s) failed the server-side dry-run; nothing was written:\n- "
                           + "\n- ".join(problems), problems=problems,
                           hint=next((e.details.get("hint") for e in errors if e.details.get("hint")), None))
