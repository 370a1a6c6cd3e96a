# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rollback: deliver a recorded release again, exactly as it was applied, and record that as a new release.

A rollback is a delivery whose rendered systems are the objects stored with the target release (``snapshot.py``):
the same lock, validation and server-side dry-run, ordered apply, prune, fail-fast wait and journal record as a
delivery (``delivery.py``), so check mode predicts it exactly and a killed rollback is finished by the next run.
Systems the target release did not have are emptied (their objects pruned) and leave the release; a routed canary
among them (``canary.py``) first gets its HTTPRoute's rules put back (``routing.py``), as an ``abort`` would.
A system restored from a release that recorded health gates is checked with those gates, as its delivery was.

Which release:

- a named ``revision`` (any recorded revision whose objects are stored; failed ones included);
- by default the newest *succeeded* release before the current one whose content (images and manifest digest of
  the systems concerned) differs from the current one. Repeated default rollbacks therefore walk back through
  distinct good releases; a rollback is undone by rolling back to the revision it started from (``action.from``
  in its journal entry).
"""

from __future__ import annotations

import functools
from dataclasses import replace

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import deliver
from ansible_collections.slipway.platform.plugins.module_utils._release.engine import Delivery
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import (
    SUCCEEDED,
    Journal,
    release_content,
)
from ansible_collections.slipway.platform.plugins.module_utils._release.routing import RouteWrites, restore_steps
from ansible_collections.slipway.platform.plugins.module_utils._release.snapshot import (
    SnapshotReader,
    available,
    describe_available,
    raw_system,
)

ON_FAILURE = ("fail", "rollback")


def content(record, systems=None):
    """A release's content, limited to ``systems`` when given."""
    found = release_content(record) or {}
    return found if systems is None else {k: v for k, v in found.items() if k in systems}


def choose_target(records, context, revision=None, systems=None):
    """The record to roll back to (see the module docstring); explicit errors list the revisions available."""
    if not records:
        raise SlipwayError(f"context {context} has no recorded release to roll back to")
    current = records[-1]
    if revision is not None:
        target = next((r for r in records if r["revision"] == revision), None)
        if target is None or revision not in dict(available(records)):
            why = "is not in the journal (unknown, or pruned from the kept history)" if target is None else \
                "was recorded without its objects (before snapshots existed)"
            raise SlipwayError(f"cannot roll back context {context} to revision {revision}: it {why}; "
                               f"revisions available: {describe_available(records)}",
                               available=[pair[0] for pair in available(records)])
        return target, current
    now = content(current, systems)
    for record in reversed(records[:-1]):
        if record.get("outcome") == SUCCEEDED and record["revision"] in dict(available(records)) \
                and content(record, systems) != now:
            return record, current
    scope = f" for {', '.join(systems)}" if systems else ""
    raise SlipwayError(f"context {context} has no earlier successful release{scope} that differs from the current "
                       f"one (revision {current['revision']}) and can be restored; revisions available: "
                       f"{describe_available(records)}", available=[pair[0] for pair in available(records)])


def rollback_systems(reader, target, current, systems=None):
    """``(raw systems, dropped names)``: the target's stored systems, plus emptied systems it did not have."""
    in_target = target.get("systems") or {}
    in_current = current.get("systems") or {}
    wanted = list(systems) if systems else sorted(set(in_target) | set(in_current))
    unknown = [n for n in wanted if n not in in_target and n not in in_current]
    if unknown:
        raise SlipwayError(f"system(s) {', '.join(unknown)} are neither in release {target['revision']} nor in the "
                           f"current release {current['revision']}",
                           hint=f"systems of the current release: {', '.join(sorted(in_current)) or 'none'}")
    stored = reader.release_objects(target, [n for n in wanted if n in in_target])
    source = f"snapshot of release {target['revision']}"
    # the record says what the release was (its gates, its commit); the snapshot, which may be an earlier
    # revision's holding the same objects, gives the objects
    raw = [raw_system(name, dict(stored[name], health=in_target[name].get("health"),
                                 git_sha=in_target[name].get("git_sha", stored[name].get("git_sha"))), source)
           for name in sorted(stored)]
    dropped = sorted(n for n in wanted if n not in in_target)
    for name in dropped:
        entry = dict(in_current[name], objects=[], depends_on=[])
        raw.append(raw_system(name, entry, source))
    return raw, dropped


def rollback(client, options, revision=None, systems=None, reason=None, progress=None, lease=None):
    """Roll the context (or ``systems`` of it) back; returns the delivery result plus ``rollback``.

    ``lease``: the context's Lease when this process already holds it (see ``deliver``); the rollback then runs
    under that hold and reads the journal under it.
    """
    records = Journal(client, options.context, options.journal_namespace).records()
    target, current = choose_target(records, options.context, revision, systems)
    reader = SnapshotReader(client, options.context, options.journal_namespace)
    raw, dropped = rollback_systems(reader, target, current, systems)
    scope = f" ({', '.join(systems)})" if systems else ""
    summary = f"rollback to {target['revision']}{scope}" + (f": {reason}" if reason else "")
    story = {"kind": "rollback", "to": target["revision"], "systems": list(systems or []), "removed": dropped,
             "reason": reason or "", "summary": summary}
    routes = restore_steps(client, options, current, dropped)  # a canary that goes takes its route split along
    if routes:
        story["routes_restored"] = sorted(f"{step.route['namespace']}/{step.route['name']}" for step in routes.values())
    runner = functools.partial(Delivery, action=story, drop=dropped, companions=[RouteWrites(routes)])
    try:
        exact = replace(options, prune=True, retire=(), retire_absent=False)  # the target release, nothing more
        result = deliver(client, raw, exact, progress=progress, runner=runner, lease=lease)
    except SlipwayError as exc:
        details = dict(exc.details, rollback={"to": target["revision"], "from": current["revision"]})
        raise SlipwayError(f"rollback of {options.context} to revision {target['revision']} failed: {exc.msg}",
                           **details) from None
    result["rollback"] = {"to": target["revision"], "from": current["revision"], "removed": dropped,
                          "reason": reason or "", "target_outcome": target.get("outcome")}
    return result


def deliver_or_roll_back(client, raw_systems, options, on_failure="fail", progress=None, deferred=None):
    """A delivery that, when it fails after writing (``on_failure='rollback'``), rolls its systems back.

    ``deferred``: a ``_release.deferred.DeferredRendering`` for the systems given without documents.

    The failed release stays in the journal (outcome ``failed``), followed by the rollback's own entry; the error
    raised tells both stories (``rollback`` holds the rollback's result or error). The rollback runs under the
    failed delivery's own hold of the Lease: no other delivery can come in between.
    """
    if on_failure not in ON_FAILURE:
        raise SlipwayError(f"on_failure must be one of {', '.join(ON_FAILURE)}, not {on_failure!r}")
    runner = functools.partial(Delivery, deferred=deferred) if deferred is not None else None
    if on_failure != "rollback" or options.check_mode:
        return deliver(client, raw_systems, options, progress=progress, runner=runner)
    names = [s.get("name") for s in raw_systems]

    def roll_back(exc, lease):
        """Called by ``deliver`` once the failure is recorded, the Lease still held (failures before the first
        write never get here: nothing was written, there is nothing to roll back)."""
        failed = exc.details.get("revision")
        if progress:
            progress(f"delivery failed (revision {failed}); rolling back automatically")
        try:
            back = rollback(client, options, systems=names, progress=progress, lease=lease,
                            reason=f"automatic, release {failed} failed: {exc.msg.splitlines()[0][:300]}")
        except SlipwayError as again:
            raise SlipwayError(f"{exc.msg}\nThe automatic rollback failed too: {again.msg}",
                               **dict(exc.details, rollback={"failed": True, "msg": again.msg,
                                                             **{k: v for k, v in again.details.items()
                                                                if k in ("systems", "revision", "progress")}})
                               ) from None
        recorded = f"recorded as revision {back['revision']}" if back.get("recorded") else "nothing to change"
        raise SlipwayError(f"{exc.msg}\nRolled back automatically to release {back['rollback']['to']} ({recorded}).",
                           **dict(exc.details, rollback=back)) from None

    return deliver(client, raw_systems, options, progress=progress, runner=runner, recover=roll_back)
