# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The journal record of a delivery: what each system runs now, what it changed, who delivered, and its writing
(with the release's objects beside it, for a rollback). ``delivery`` is the run's state (``engine.Delivery``)."""

from __future__ import annotations

import time

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.whoami import whoami
from ansible_collections.slipway.platform.plugins.module_utils._release.deferred import recorded_inputs
from ansible_collections.slipway.platform.plugins.module_utils._release.history import prune
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import Journal
from ansible_collections.slipway.platform.plugins.module_utils._release.options import actor
from ansible_collections.slipway.platform.plugins.module_utils._release.snapshot import manifest_digest, snapshot_writer


def counts(runs, check_mode):
    found = {"created": 0, "updated": 0, "unchanged": 0, "pruned": 0}
    for run in runs.values():
        for plan in run.plans:
            if plan.action in ("create", "update", "unchanged"):
                found[{"create": "created", "update": "updated"}.get(plan.action, plan.action)] += 1
        found["pruned"] += len(run.pruned) if not check_mode else len(run.prune)
    return found


def release_record(delivery, outcome, message, dry=False):
    """The record as the run stands (``dry``: as it would be recorded if it went as planned)."""
    last_systems = delivery.last_systems
    systems = {name: dict(previous, result="carried") for name, previous in last_systems.items()}
    gone = []
    for system in delivery.systems:
        run = delivery.runs.get(system.name)
        if system.name in delivery.leaving:
            if dry or run.result == "retired":  # a retirement that did not run keeps its entry
                systems.pop(system.name, None)
                gone.append(system.name)
            continue
        previous = last_systems.get(system.name) or {}
        entry = {"namespace": system.namespace, "depends_on": list(system.depends_on), "images": system.images,
                 "git_sha": system.git_sha,
                 "manifest_digest": manifest_digest(delivery.key, run),
                 "files": system.files,
                 "objects": [{"apiVersion": p.desired.api_version, "kind": p.desired.kind,
                              "namespace": p.desired.namespace, "name": p.desired.name, "digest": p.digest}
                             for p in run.plans],
                 "result": run.result if not dry else "planned",
                 "changed_in": previous.get("changed_in") if not run.changed and previous else None}
        inputs = recorded_inputs(delivery.key, system.inputs)
        if inputs:  # a later run with the same inputs reuses this release's objects instead of rendering them
            entry["inputs"] = inputs
        if system.health:  # kept for a rollback to this release, which checks the same gates
            entry["health"] = [gate.spec() for gate in system.health]
        sampled = [g for g in (run.health or {}).get("gates") or [] if "samples" in g]
        if sampled:  # what a metric gate's verdict rested on
            entry["metric_gates"] = sampled
        corrected = [c for c in (p.corrected() for p in run.plans if p.result is not None) if c]
        if corrected:  # hand edits this delivery undid: what someone had changed outside the manifests
            entry["drift_corrected"] = corrected
        systems[system.name] = entry
    opts = delivery.opts
    record = {"context": opts.context, "outcome": outcome, "message": message,
              "started_at": _iso(delivery.started), "finished_at": _iso(time.time()), "actor": actor(opts.holder),
              "systems": systems, "summary": counts(delivery.runs, opts.check_mode)}
    if gone:
        record["retired"] = sorted(gone)
    if opts.showroom:
        record["showroom"] = dict(opts.showroom)
    return record


def with_action(record, action, last, message):
    """A release step that is not a plain delivery (rollback, canary) says in its record what it was."""
    if action:
        record["action"] = dict(action, **{"from": (last or {}).get("revision")})
        story = action.get("summary") or action.get("kind", "")
        record["message"] = f"{story}; failed: {message}" if message else story
    return record


def write_record(delivery, record):
    """Write ``record`` as the next revision, each changed system marked as changed in it; the written record."""
    after = (delivery.last or {}).get("revision", 0)
    # the name the API server's audit log knows the delivery by (release_info's audit_log reads it back)
    record["actor"] = dict(record.get("actor") or {}, kubernetes=whoami(delivery.client))
    for entry in record["systems"].values():
        if entry.get("result") != "carried" and not entry.get("changed_in"):
            entry["changed_in"] = after + 1
    journal = Journal(delivery.client, delivery.opts.context, delivery.opts.journal_namespace)
    written = journal.write(record, after_revision=after, attach=snapshot_writer(delivery))  # objects, for rollback
    try:
        prune(journal, delivery.opts.history_max, delivery.say)
    except SlipwayError as exc:  # housekeeping: the release is recorded; the next run prunes again
        delivery.say(f"journal: could not prune the history ({exc.msg}); the next release tries again")
    return written


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
