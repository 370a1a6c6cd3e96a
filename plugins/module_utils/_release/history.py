# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The history limit of a context's journal (``history_max``, like Helm's ``--history-max``).

After each recorded release, records beyond the newest ``history_max`` are deleted with what their snapshots keep
beside them (companion ConfigMaps, the Secret), except what must stay for the releases that stay:

- the last good release (what an automatic rollback goes back to), whatever its age;
- every revision a kept record refers to: where its systems' objects are stored (a system unchanged for a long
  time points at the old revision that stored it), the release its rollback or canary step came from and went to;
- the release the context was at when a job took its hold (``context_lock``): what the job rolls back to.

The decision reads only the journal's index (labels and annotations, one metadata-only LIST). A record written
before the index carried its references is read in full, once, to find them.
"""

from __future__ import annotations

import calendar
import time

from ansible_collections.slipway.platform.plugins.module_utils._kube.client import api_path
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import (
    COMPANIONS,
    OUTCOME_LABEL,
    REFERS_TO,
    SUCCEEDED,
    companions_note,
    record_name,
    referenced_revisions,
)
from ansible_collections.slipway.platform.plugins.module_utils._release.lease import is_hold, lease_name
from ansible_collections.slipway.platform.plugins.module_utils._release.snapshot import part_name, secret_name

DEFAULT_HISTORY_MAX = 20


def _refers_to(entry):
    note = (entry.get("annotations") or {}).get(REFERS_TO)
    return None if note is None else [int(r) for r in note.split(",") if r.strip()]


def _epoch(timestamp):
    try:
        return calendar.timegm(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S"))
    except (TypeError, ValueError):
        return None


def kept_revisions(index, history_max, refers_to, hold_since=None):
    """The revisions to keep, from the journal's ``index`` (oldest first); ``refers_to(entry)`` gives the
    revisions a record needs; ``hold_since``: when a job took its hold on the context (epoch seconds)."""
    if not index:
        return set()
    keep = {entry["revision"] for entry in index[-max(history_max, 1):]}
    good = [e for e in index if (e.get("labels") or {}).get(OUTCOME_LABEL) == SUCCEEDED]
    if good:
        keep.add(good[-1]["revision"])
    if hold_since is not None:
        before = [e for e in index if (_epoch(e.get("creationTimestamp")) or 0) <= hold_since]
        if before:
            keep.add(before[-1]["revision"])
    by_revision = {entry["revision"]: entry for entry in index}
    todo = list(keep)
    while todo:  # what a kept record refers to is kept, and what that refers to
        entry = by_revision.get(todo.pop())
        for revision in refers_to(entry) if entry else ():
            if revision not in keep:
                keep.add(revision)
                todo.append(revision)
    return keep


def companions(context, revision, entry, record=None):
    """``[(plural, name)]`` stored beside a record, from its index entry (or the record itself)."""
    note = (entry.get("annotations") or {}).get(COMPANIONS)
    if note is None and record is not None:
        note = companions_note(record)
    found = []
    for part in (note or "").split(","):
        if part.startswith("parts="):
            found += [("configmaps", part_name(context, revision, i)) for i in range(int(part[len("parts="):]))]
        elif part == "secret":
            found.append(("secrets", secret_name(context, revision)))
    return found


def prune(journal, history_max, say=None):
    """Delete the records (and their companions) the limit leaves out; the revisions deleted, oldest first.

    Records go first, then what was beside them: a run stopped in between leaves companions that nothing points
    at, never a record whose objects are gone.
    """
    if not history_max or history_max < 1:
        return []
    index = journal.index()
    if len(index) <= history_max:
        return []
    read = {}

    def refers_to(entry):
        found = _refers_to(entry)
        if found is None:  # written before the index said it: read the record once
            read[entry["revision"]] = journal.get(entry["revision"])
            found = referenced_revisions(read[entry["revision"]])
        return found

    keep = kept_revisions(index, history_max, refers_to, hold_since=_hold_since(journal))
    pruned = []
    for entry in index:
        revision = entry["revision"]
        if revision in keep:
            continue
        record = read.get(revision)
        if record is None and (entry.get("annotations") or {}).get(COMPANIONS) is None:
            record = journal.get(revision)
        client, namespace = journal.client, journal.namespace
        client.request("DELETE", api_path("v1", "configmaps", namespace, record_name(journal.context, revision)),
                       ok_missing=True)
        for plural, name in companions(journal.context, revision, entry, record):
            client.request("DELETE", api_path("v1", plural, namespace, name), ok_missing=True)
        pruned.append(revision)
    if pruned and say is not None:
        say(f"journal: pruned {len(pruned)} release(s) beyond the history limit of {history_max} "
            f"(kept {len(index) - len(pruned)})")
    return pruned


def _hold_since(journal):
    lease = journal.client.get(api_path("coordination.k8s.io/v1", "leases", journal.namespace,
                                        lease_name(journal.context)), ok_missing=True)
    if not is_hold(lease):
        return None
    return _epoch(((lease or {}).get("spec") or {}).get("acquireTime"))
