# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release report's model: journal records (and the objects their releases applied) made into what a page
shows - per context what runs there, its history, the diff between any two of its releases, and the failures.

Pure: no API, no Ansible, no HTML. ``report.py`` collects the inputs, ``report_render.py`` renders this model.
Secret values never reach the model: a Secret's values become keyed hashes (``normalize.redact_secret``) before
any text is made of it, so a changed value still shows as changed.
"""

from __future__ import annotations

import difflib
import json

from ansible_collections.slipway.platform.plugins.module_utils._kube.normalize import redact_secret, secret_to_data
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import FAILED, SUCCEEDED
from ansible_collections.slipway.platform.plugins.module_utils._release.release_diff import release_diff

# A pipeline outcome (reports/result-<context>.json) that is not a failure of the delivery it reports.
QUIET_OUTCOMES = ("succeeded", "nothing_to_do")
# Annotations that change whenever anything else does: showing them would only repeat the change.
NOISE_ANNOTATIONS = ("slipway.io/digest",)
DIFF_CONTEXT_LINES = 3


def actor_name(actor):
    """``user@host (CI job)``, or the holder when that is all a record says."""
    if not isinstance(actor, dict):
        return str(actor or "")
    who = "@".join(part for part in (actor.get("user"), actor.get("host")) if part) or actor.get("holder") or ""
    job = actor.get("ci_job")
    return f"{who} ({job})" if job else who


def action_kind(record):
    return ((record.get("action") or {}).get("kind")) or "deliver"


def is_showroom(context, records):
    """A showroom is a context whose records say so (``showroom``), or whose name says so (``showroom-*``)."""
    return context.startswith("showroom") or any(record.get("showroom") for record in records)


def _showroom(records):
    """What the newest record that describes a showroom says about it (branch, URL, ...), as text pairs."""
    for record in reversed(records):
        described = record.get("showroom")
        if isinstance(described, dict):
            return [(str(key), described[key] if isinstance(described[key], str) else json.dumps(described[key]))
                    for key in sorted(described)]
        if described:
            return [("showroom", str(described))]
    return []


def _release_row(record):
    return {"revision": record.get("revision"), "outcome": record.get("outcome") or "", "action": action_kind(record),
            "started_at": record.get("started_at") or "", "finished_at": record.get("finished_at") or "",
            "actor": actor_name(record.get("actor")), "message": record.get("message") or "",
            "systems": len(record.get("systems") or {}), "summary": record.get("summary") or {}}


def running(records):
    """What the newest record says runs in the context, each system with the release that last changed it."""
    if not records:
        return []
    latest = records[-1]
    by_revision = {r["revision"]: r for r in records}
    rows = []
    for name, system in sorted((latest.get("systems") or {}).items()):
        changed_in = system.get("changed_in") or latest["revision"]
        origin = by_revision.get(changed_in) or {}  # older than the history read: its time and actor are unknown
        rows.append({"system": name, "namespace": system.get("namespace") or "",
                     "images": sorted((system.get("images") or {}).items()), "git_sha": system.get("git_sha") or "",
                     "revision": changed_in, "result": system.get("result") or "",
                     "at": origin.get("finished_at") or "", "actor": actor_name(origin.get("actor")),
                     "outcome": origin.get("outcome") or ""})
    return rows


def _object_key(obj):
    metadata = obj.get("metadata") or {}
    return (obj.get("kind") or "", metadata.get("namespace") or "", metadata.get("name") or "")


def _object_label(key):
    kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def shown_object(obj, key):
    """An object as the report may show it: Secret values as keyed hashes, the digest annotation left out."""
    obj = redact_secret(secret_to_data(obj), key)
    annotations = (obj.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict) and any(name in annotations for name in NOISE_ANNOTATIONS):
        obj = dict(obj, metadata=dict(obj["metadata"], annotations={
            k: v for k, v in annotations.items() if k not in NOISE_ANNOTATIONS}))
    return obj


def _text(obj):
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False).splitlines() if obj is not None else []


def manifest_changes(older_objects, newer_objects, key):
    """Per system, each object added, removed or changed between two releases, as unified diff lines.

    ``*_objects``: ``{system: [object bodies]}`` as the release snapshots stored them (Secrets included, which are
    redacted here before anything is compared as text).
    """
    changes = []
    for system in sorted(set(older_objects) | set(newer_objects)):
        old = {_object_key(o): shown_object(o, key) for o in older_objects.get(system) or []}
        new = {_object_key(o): shown_object(o, key) for o in newer_objects.get(system) or []}
        for object_key in sorted(set(old) | set(new)):
            before, after = old.get(object_key), new.get(object_key)
            if before == after:
                continue
            change = "added" if before is None else "removed" if after is None else "changed"
            lines = list(difflib.unified_diff(_text(before), _text(after), lineterm="", n=DIFF_CONTEXT_LINES))[2:]
            changes.append({"system": system, "object": _object_label(object_key), "change": change,
                            "lines": [{"kind": {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same"),
                                       "text": line} for line in lines]})
    return changes


def comparison(older, newer, objects=None, key=b""):
    """One pair of releases: the journal diff (``release_diff``) and, when their objects are known, the manifests.

    ``older`` None: the context's first release, against nothing. ``objects``: ``{revision: {system: [bodies]} or
    the reason they could not be read}`` for the revisions whose snapshots were read.
    """
    found = {"from": older["revision"] if older else None, "to": newer["revision"],
             "diff": release_diff(older, newer), "manifests": [], "manifests_note": ""}
    if older is None:
        found["manifests_note"] = "the context's first release: every object is new"
        return found
    stored = objects or {}
    old, new = stored.get(older["revision"]), stored.get(newer["revision"])
    if isinstance(old, dict) and isinstance(new, dict):
        found["manifests"] = manifest_changes(old, new, key)
    else:
        reason = next((s for s in (old, new) if isinstance(s, str)), "the releases' objects were not read")
        found["manifests_note"] = f"manifests not compared: {reason}"
    return found


def failures(context, records, results=()):
    """Failed deliveries with their reasons: failed journal records, and pipeline results that never reached the
    journal (a lock not obtained, a validation refused before any write)."""
    found = []
    for record in records:
        if record.get("outcome") == FAILED:
            failed = sorted(name for name, s in (record.get("systems") or {}).items() if s.get("result") == "failed")
            found.append({"context": context, "revision": record["revision"], "action": action_kind(record),
                          "at": record.get("finished_at") or "", "actor": actor_name(record.get("actor")),
                          "reason": record.get("message") or "(no reason recorded)", "systems": failed,
                          "source": "journal"})
    recorded = {r["revision"] for r in records if r.get("outcome") == FAILED}
    for result in results:
        if result.get("outcome") in QUIET_OUTCOMES or result.get("failed_revision") in recorded:
            continue
        failed = sorted(row.get("system") or "" for row in result.get("systems") or []
                        if isinstance(row, dict) and row.get("result") == "failed")
        found.append({"context": context, "revision": result.get("failed_revision"),
                      "action": result.get("playbook") or "", "at": result.get("finished_at") or "",
                      "actor": (result.get("ci") or {}).get("label", "") if isinstance(result.get("ci"), dict) else "",
                      "reason": f"{result.get('outcome')}: {result.get('msg') or result.get('meaning') or ''}".strip(),
                      "systems": failed, "source": result.get("file") or "pipeline result"})
    return sorted(found, key=lambda f: (f["at"], f["revision"] or 0), reverse=True)


def context_model(context, records, objects=None, key=b"", results=(), older_not_shown=0, journal=None):
    """Everything the page shows about one context; ``records`` oldest first (the history that was read), from the
    journal in namespace ``journal``.

    Each release of the history carries its diff against the one before it (the first one, when nothing older
    exists, against nothing); ``others`` holds, per release, its diffs against every earlier release shown.
    """
    history, others = [], []
    for index, record in enumerate(records):
        before = records[index - 1] if index else None
        change = comparison(before, record, objects, key) if before or not older_not_shown else None
        history.append(dict(_release_row(record), change=change))
        others.append({"to": record["revision"],
                       "pairs": [comparison(records[i], record, objects, key) for i in range(index - 2, -1, -1)]})
    latest = records[-1] if records else None
    return {"name": context, "showroom": is_showroom(context, records), "showroom_facts": _showroom(records),
            "latest": _release_row(latest) if latest else None,
            "last_good": next((r["revision"] for r in reversed(records) if r.get("outcome") == SUCCEEDED), None),
            "running": running(records), "history": history[::-1], "others": others[::-1],
            "failures": failures(context, records, results), "older_not_shown": older_not_shown, "journal": journal}


def report_model(contexts, title="Slipway releases", unread=()):
    """The page: ``contexts`` are ``context_model`` results; contexts first, then showrooms, each by name.

    ``unread``: ``[{namespace, reason}]`` journals that could not be read, which the page names.
    """
    ordered = sorted(contexts, key=lambda c: (c["showroom"], c["name"]))
    stamps = [c["latest"]["finished_at"] for c in ordered if c["latest"] and c["latest"]["finished_at"]]
    return {"title": title, "as_of": max(stamps) if stamps else "", "unread": list(unread),
            "contexts": [c for c in ordered if not c["showroom"]],
            "showrooms": [c for c in ordered if c["showroom"]],
            "failures": sorted((f for c in ordered for f in c["failures"]),
                               key=lambda f: (f["at"], f["context"]), reverse=True)}
