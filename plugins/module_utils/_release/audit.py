# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A release's audit trail: the API server's audit events of the identity that delivered it, in its time window.

The journal records who delivered as the API server knows it (``actor.kubernetes.username``, from a
SelfSubjectReview); the API server's JSON-lines audit log (``--audit-log-path``, and the backups it rotates to
``<name>-<time>.<ext>`` beside it) says what that user did. Only what identifies a request is returned - verb,
resource, namespace, name, response code, time - never a request or response body: the audit policy keeps Secrets
at ``Metadata``, and even the bodies it does keep are not passed on.
"""

from __future__ import annotations

import calendar
import json
import os
import time
from pathlib import Path

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError

# The record's times are whole seconds, stamped before the journal's own writes and the lock's release: the window
# reaches this far past ``finished_at`` so that those requests count too.
AFTER_FINISH = 5.0
# One event per request: the stage at which the response is complete (a watch's ends when the watch does).
STAGES = ("ResponseComplete", "Panic")


def epoch(stamp):
    """Seconds since the epoch of an RFC 3339 time (``2026-01-01T00:00:00Z`` or with a fraction)."""
    if not isinstance(stamp, str) or len(stamp) < 20:
        raise SlipwayError(f"not an RFC 3339 UTC time: {stamp!r}")
    whole, _dot, fraction = stamp.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return seconds + (float(f"0.{fraction}") if fraction.isdigit() else 0.0)


def release_window(record):
    """``(user, since, until)`` of a journal record; a clear error when it does not say who delivered."""
    user = ((record.get("actor") or {}).get("kubernetes") or {}).get("username")
    if not user:
        raise SlipwayError(f"release {record.get('revision')} does not record the Kubernetes identity that delivered "
                           f"it (releases recorded before this version, or a server without SelfSubjectReview): its "
                           f"audit events cannot be told apart")
    return user, epoch(record["started_at"]), epoch(record["finished_at"]) + 1.0 + AFTER_FINISH


def event_row(event):
    """What identifies one audited request; nothing of its body."""
    ref = event.get("objectRef") or {}
    resource = ref.get("resource") or ""
    if ref.get("subresource"):
        resource = f"{resource}/{ref['subresource']}"
    return {"timestamp": event.get("requestReceivedTimestamp"), "verb": event.get("verb"),
            "api_group": ref.get("apiGroup") or "", "resource": resource or None,
            "namespace": ref.get("namespace"), "name": ref.get("name"),
            "code": (event.get("responseStatus") or {}).get("code"),
            "uri": None if ref else event.get("requestURI"), "audit_id": event.get("auditID")}


def matching_events(lines, user, since, until):
    """Rows of the events in ``lines`` (JSON, one per line) made by ``user`` between ``since`` and ``until``."""
    quoted = json.dumps(user)  # cheap test before parsing: most lines of a busy log are someone else's
    rows = []
    for line in lines:
        if quoted not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:  # a line cut by a rotation or a crash
            continue
        if (event.get("user") or {}).get("username") != user or event.get("stage") not in STAGES:
            continue
        try:
            received = epoch(event.get("requestReceivedTimestamp"))
        except SlipwayError:
            continue
        if since <= received <= until:
            rows.append(event_row(event))
    return rows


def log_files(path, since):
    """The audit log and its rotated backups that may hold events from ``since`` on, oldest first."""
    log = Path(path)
    if not log.is_file():
        raise SlipwayError(f"audit_log {path} is not a file: give the API server's --audit-log-path, on the host the "
                           f"task runs on (delegate it to the API server's host)")
    backups = sorted(log.parent.glob(f"{log.stem}-*{log.suffix}"))
    # a backup last written before the window holds nothing of it
    return [f for f in backups if f.stat().st_mtime >= since] + [log]


def audit_events(path, record):
    """The audit trail of ``record`` (a journal record) read from the log at ``path`` and its backups."""
    user, since, until = release_window(record)
    rows, files = [], log_files(path, since)
    for file in files:
        try:
            with open(file, encoding="utf-8", errors="replace") as lines:
                rows += matching_events(lines, user, since, until)
        except OSError as exc:
            raise SlipwayError(f"cannot read the audit log {file}: {exc.strerror}; the task needs read access to it "
                               f"(become, or run it as the API server's user)") from None
    rows.sort(key=lambda row: (epoch(row["timestamp"]), row["audit_id"] or ""))
    return {"user": user, "since": _iso(since), "until": _iso(until), "files": [os.fspath(f) for f in files],
            "events": rows}


def _iso(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
