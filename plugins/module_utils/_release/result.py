# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The result a delivery hands back: per system, per object, drift, pruned objects, counters, progress, diffs.
``delivery`` is the run's state (``engine.Delivery``)."""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._kube.apply import live_label
from ansible_collections.slipway.platform.plugins.module_utils._release.gating import health_row
from ansible_collections.slipway.platform.plugins.module_utils._release.record import counts


def release_result(delivery, changed, record=None):
    opts, runs = delivery.opts, delivery.runs
    plans = [p for run in runs.values() for p in run.plans]
    out = {
        "changed": changed,
        "context": opts.context,
        "revision": (record or delivery.last or {}).get("revision"),
        "recorded": record is not None,
        "summary": counts(runs, opts.check_mode),
        "systems": [system_row(delivery, run, record) for run in runs.values()],
        "objects": [p.report() for p in plans if p.action != "unchanged" or p.drift],
        "drift": [dict(p.report(), drift=p.drift) for p in plans if p.drift],
        "conflicts_respected": [p.report() for p in plans if p.respected],
        "pruned": [live_label(r, live) for run in runs.values() for r, live in run.prune],
        "retired": sorted(delivery.leaving & set(runs)),
        "not_delivered": list(delivery.not_delivered),
        "writes": delivery.client.writes,
        "requests": delivery.client.requests,
        "progress": list(delivery.lines),
    }
    if delivery.lease is not None and delivery.lease.took_over:
        out["lock_taken_over_from"] = delivery.lease.took_over
    if opts.diff:
        out["diff"] = [{"before_header": f"{p.desired.label} (live)",
                        "after_header": f"{p.desired.label} (desired)",
                        "before": p.diff[0], "after": p.diff[1]} for p in plans if p.diff]
        out["diff"] += [{"before_header": live_label(r, live), "after_header": f"{live_label(r, live)} (pruned)",
                         "before": {"kind": r.kind, "metadata": {"name": live["metadata"]["name"]}}, "after": {}}
                        for run in runs.values() for r, live in run.prune]
    return out


def system_row(delivery, run, record):
    entry = ((record or delivery.last or {}).get("systems") or {}).get(run.system.name) or {}
    return {"system": run.system.name, "images": run.system.images,
            "revision": entry.get("changed_in"), "result": run.result, "reason": run.reason,
            "seconds": run.seconds, "details": run.details, "health": health_row(run, delivery.opts.check_mode)}
