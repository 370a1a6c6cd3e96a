# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What changed between two journal records, per system, for people: systems added and removed, images changed,
manifests changed (and which recorded objects), in a structure for reports and in lines for a terminal.

Two records are compared by the same content a delivery compares (``journal.release_content``: per system, the
images and the keyed manifest digest), so a system is ``updated`` exactly when redelivering it would have changed
something. Object digests are keyed like the manifest digest: after the digest key was recreated (see
docs/architecture.md) every object of the next release looks changed once.
"""

from __future__ import annotations

import re

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import release_content

_LONG_DIGEST = re.compile(r"(sha256:[0-9a-f]{12})[0-9a-f]{52}")
SHORT_SHA = 7


def _check(record, which):
    if record is None or record == {}:
        return {}
    if not isinstance(record, dict) or not isinstance(record.get("systems") or {}, dict):
        raise SlipwayError(f"the {which} release must be a journal record (a mapping with 'systems', as "
                           f"slipway.platform.release_info returns it), not {type(record).__name__}")
    for name, system in (record.get("systems") or {}).items():
        if not isinstance(system, dict):
            raise SlipwayError(f"system {name!r} of the {which} release (revision {record.get('revision')}) is not a "
                               "mapping; is this a journal record?")
    return record


def pair(first, second=None):
    """``(older, newer)`` from what the filter was given: two records, one record (compared with nothing), or a
    list of one or two records, oldest first (``release_info``'s ``releases[-2:]``)."""
    if isinstance(first, (list, tuple)):
        if second is not None:
            raise SlipwayError("give either a list of records or two records, not both")
        if not first:
            raise SlipwayError("there is no release to compare: the list of records is empty (an empty journal?)")
        if len(first) > 2:
            raise SlipwayError("expected a list of one or two journal records, oldest first (as in releases[-2:]), "
                               f"not a list of {len(first)}")
        first, second = ([None, *first])[-2:]
    elif second is None:
        first, second = None, first
    if not second:
        raise SlipwayError("there is no newer release to compare (an empty journal, or a null record)")
    return _check(first, "older"), _check(second, "newer")


def _short(reference):
    return _LONG_DIGEST.sub(r"\1", reference) if isinstance(reference, str) else str(reference)


def _change(before, after):
    return {"from": before, "to": after}


def _objects(system):
    return {(o.get("kind"), o.get("namespace"), o.get("name")): o.get("digest")
            for o in (system or {}).get("objects") or [] if isinstance(o, dict)}


def _object_name(key):
    kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _object_changes(before, after):
    old, new = _objects(before), _objects(after)
    return {"added": sorted(_object_name(k) for k in new.keys() - old.keys()),
            "removed": sorted(_object_name(k) for k in old.keys() - new.keys()),
            "changed": sorted(_object_name(k) for k in old.keys() & new.keys() if old[k] != new[k])}


def _system_diff(change, before, after):
    before, after = before or {}, after or {}
    old_images, new_images = before.get("images") or {}, after.get("images") or {}
    found = {"change": change, "namespace": after.get("namespace") or before.get("namespace"),
             "images": {name: _change(old_images.get(name), new_images.get(name))
                        for name in sorted(old_images.keys() | new_images.keys())
                        if old_images.get(name) != new_images.get(name)},
             "manifests_changed": before.get("manifest_digest") != after.get("manifest_digest"),
             "objects": _object_changes(before, after)}
    if before.get("namespace") != after.get("namespace") and change == "updated":
        found["namespace_change"] = _change(before.get("namespace"), after.get("namespace"))
    if before.get("git_sha") != after.get("git_sha"):
        found["git_sha"] = _change(before.get("git_sha"), after.get("git_sha"))
    return found


def _release_name(record):
    if not record:
        return "nothing"
    name = f"{record.get('context') or '?'} {record.get('revision', '?')}"
    return name if record.get("outcome") in (None, "succeeded") else f"{name} ({record['outcome']})"


def _detail(diff):
    parts = []
    if diff.get("namespace_change"):
        parts.append("namespace {from} -> {to}".format(**diff["namespace_change"]))
    for image, images in diff["images"].items():
        if diff["change"] == "updated":
            parts.append(f"image {image} {_short(images['from'])} -> {_short(images['to'])}")
        else:
            parts.append(f"image {image} {_short(images['from'] or images['to'])}")
    if diff["change"] == "updated" and diff["manifests_changed"]:
        objects = [f"{name} {how}" for how in ("changed", "added", "removed") for name in diff["objects"][how]]
        parts.append("manifests changed" + (f" ({', '.join(objects)})" if objects else ""))
    sha = diff.get("git_sha")
    if sha and diff["change"] != "removed":
        parts.append(f"git {(sha['from'] or '-')[:SHORT_SHA]} -> {(sha['to'] or '-')[:SHORT_SHA]}"
                     if diff["change"] == "updated" else f"git {(sha['to'] or '-')[:SHORT_SHA]}")
    return parts


def _lines(result, older, newer, retired):
    counts = ", ".join(f"{len(result[k])} {k}" for k in ("added", "removed", "updated") if result[k])
    lines = [f"{_release_name(older)} -> {_release_name(newer)}: {counts or 'no change'}"]
    mark = {"added": "+", "removed": "-", "updated": "~"}
    for name, diff in result["systems"].items():
        detail = _detail(diff)
        if diff["change"] == "removed":
            detail.insert(0, "retired" if name in retired else "no longer recorded")
        lines.append(f"{mark[diff['change']]} {name} ({diff['namespace']}): {'; '.join(detail) or diff['change']}")
    if result["unchanged"]:
        lines.append(f"= unchanged: {', '.join(result['unchanged'])}")
    return lines


def release_diff(older, newer=None):
    """The diff from the older record to the newer one (see ``pair`` for what may be given)."""
    older, newer = pair(older, newer)
    old_systems, new_systems = older.get("systems") or {}, newer.get("systems") or {}
    old_content, new_content = release_content(older) or {}, release_content(newer) or {}
    result = {"from": {k: older.get(k) for k in ("context", "revision", "outcome")} if older else None,
              "to": {k: newer.get(k) for k in ("context", "revision", "outcome")},
              "added": sorted(new_systems.keys() - old_systems.keys()),
              "removed": sorted(old_systems.keys() - new_systems.keys()),
              "updated": sorted(n for n in old_systems.keys() & new_systems.keys() if old_content[n] != new_content[n]),
              "systems": {}}
    result["unchanged"] = sorted((old_systems.keys() & new_systems.keys()) - set(result["updated"]))
    for change in ("added", "removed", "updated"):
        for name in result[change]:
            result["systems"][name] = _system_diff(change, old_systems.get(name), new_systems.get(name))
    result["systems"] = dict(sorted(result["systems"].items()))
    result["changed"] = bool(result["systems"])
    result["lines"] = _lines(result, older, newer, set(newer.get("retired") or []))
    return result
