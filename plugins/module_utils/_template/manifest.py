# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a generated service so that a second run changes nothing and local edits are never lost.

A generated service keeps a manifest (``.slipway-template.json``) that records, for each file it wrote,
the SHA-256 of the content it wrote. On the next run every desired file falls in exactly one case:

========================  =================================================  ==========
file on disk              compared with                                      action
========================  =================================================  ==========
absent, never recorded    -                                                  ``create``
absent, recorded          the user removed a generated file                  conflict
same content as desired   -                                                  ``unchanged`` (mode fixed if needed)
different, recorded hash  the template moved on, the user did not touch it   ``update``
  equals the file's hash
different, anything else  the user edited it (or it predates the generator)  conflict
========================  =================================================  ==========

Conflicts refuse the whole run (nothing is written) unless ``force`` is set, in which case they are
overwritten (or recreated). Check mode runs the same :func:`plan`; only :func:`apply` writes.

Pure Python: no Ansible import. :func:`plan` takes what is on disk as plain data so it is unit-tested
without a filesystem; :func:`read_tree` and :func:`apply` are the only functions that touch disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError

MANIFEST_NAME = ".slipway-template.json"
MANIFEST_FORMAT = 1

CREATE = "create"
UPDATE = "update"
UNCHANGED = "unchanged"
MODE = "mode"
EDITED = "edited"
REMOVED = "removed"
UNMANAGED = "unmanaged"
CONFLICTS = (EDITED, REMOVED, UNMANAGED)
WRITES = (CREATE, UPDATE)


def sha256(content):
    """Hex SHA-256 of text content, as recorded in the manifest."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def check_relative_path(path):
    """Refuse paths that could escape the destination folder (absolute, ``..``, empty parts)."""
    if not isinstance(path, str) or not path:
        raise SlipwayError("a template file path must be a non-empty string", path=path)
    parts = path.split("/")
    if path.startswith("/") or any(part in ("", ".", "..") for part in parts) or "\\" in path:
        raise SlipwayError(f"template file path {path!r} must be relative, with no '.', '..' or empty parts",
                           path=path)
    if path == MANIFEST_NAME:
        raise SlipwayError(f"{MANIFEST_NAME} is reserved for the generator's manifest", path=path)
    return path


def normalise_files(files):
    """Validate the desired files: a list of ``{path, content, mode}`` -> ``{path: (content, mode)}``."""
    desired = {}
    for entry in files:
        path = check_relative_path(entry.get("path"))
        if path in desired:
            raise SlipwayError(f"template file {path!r} is listed twice", path=path)
        content = entry.get("content")
        if not isinstance(content, str):
            raise SlipwayError(f"template file {path!r} has no text content", path=path)
        mode = entry.get("mode") or "0644"
        try:
            mode = int(str(mode), 8)
        except ValueError:
            raise SlipwayError(f"template file {path!r} has mode {entry.get('mode')!r}, not octal", path=path) from None
        desired[path] = (content, mode & 0o7777)
    return desired


def parse_manifest(text):
    """The recorded ``{path: sha256}`` from manifest text (``None``: no manifest yet)."""
    if text is None:
        return {}
    try:
        data = json.loads(text)
        recorded = data["files"]
        if not isinstance(recorded, dict) or not all(isinstance(v, str) for v in recorded.values()):
            raise TypeError("files must map paths to checksums")
    except (ValueError, KeyError, TypeError) as exc:
        raise SlipwayError(f"the manifest {MANIFEST_NAME} is not readable ({exc}); restore it from version control "
                           f"or delete it and generate again with force") from None
    return dict(recorded)


def render_manifest(template, variables, files):
    """Manifest text for the desired files; stable (sorted keys) so an unchanged service rewrites nothing."""
    return json.dumps({
        "format": MANIFEST_FORMAT,
        "generator": "slipway.platform.service_template",
        "template": template,
        "variables": variables,
        "files": {path: sha256(content) for path, (content, _mode) in sorted(files.items())},
    }, indent=2, sort_keys=True) + "\n"


def plan(desired, existing, manifest_text, *, template, variables=None, force=False):
    """Decide what to do for every desired file; pure.

    ``desired``: ``{path: (content, mode)}`` from :func:`normalise_files`.
    ``existing``: ``{path: (content, mode)}`` of those paths that exist on disk (content ``None`` when the
    path exists but is not a regular text file).
    ``manifest_text``: the current manifest or ``None``.

    Returns a dict: ``actions`` (``{path: action}``), ``conflicts`` (``{path: reason}``), the lists by
    action, ``manifest`` (the text to write, or ``None`` when the current one is already right) and
    ``changed``. Raises nothing for conflicts: the caller decides (refuse, or overwrite with ``force``).
    """
    recorded = parse_manifest(manifest_text)
    actions, conflicts = {}, {}
    for path, (content, mode) in sorted(desired.items()):
        want = sha256(content)
        on_disk = existing.get(path)
        if on_disk is None:
            if path in recorded:
                conflicts[path] = REMOVED
                actions[path] = CREATE if force else REMOVED
            else:
                actions[path] = CREATE
            continue
        have_content, have_mode = on_disk
        if have_content is not None and sha256(have_content) == want:
            actions[path] = MODE if have_mode != mode else UNCHANGED
        elif have_content is not None and recorded.get(path) == sha256(have_content):
            actions[path] = UPDATE
        else:
            conflicts[path] = EDITED if path in recorded else UNMANAGED
            actions[path] = UPDATE if force else conflicts[path]
    new_manifest = render_manifest(template, variables or {}, desired)
    by_action = {name: sorted(p for p, a in actions.items() if a == name)
                 for name in (CREATE, UPDATE, UNCHANGED, MODE)}
    writes_anything = any(by_action[name] for name in (CREATE, UPDATE, MODE))
    manifest_changes = new_manifest != manifest_text
    refused = bool(conflicts) and not force
    return {
        "actions": actions,
        "conflicts": conflicts,
        "created": by_action[CREATE],
        "updated": by_action[UPDATE],
        "modes": by_action[MODE],
        "unchanged": by_action[UNCHANGED],
        "refused": refused,
        "manifest": new_manifest if manifest_changes else None,
        "changed": not refused and (writes_anything or manifest_changes),
    }


def conflict_message(conflicts, dest):
    """One sentence per conflicting file, and how to proceed."""
    reasons = {
        EDITED: "edited since it was generated",
        REMOVED: "removed since it was generated",
        UNMANAGED: "exists and was not written by the generator",
    }
    lines = [f"{path}: {reasons[reason]}" for path, reason in sorted(conflicts.items())]
    return (f"refusing to overwrite local changes in {dest}: " + "; ".join(lines)
            + ". Nothing was written; set force to replace them with the template's version.")


def diffs(desired, existing, result, dest):
    """Ansible ``diff`` entries for the files that would be written (before/after text)."""
    entries = []
    for path in result["created"] + result["updated"]:
        before = existing.get(path)
        entries.append({
            "before_header": os.path.join(dest, path) if before else "/dev/null",
            "after_header": os.path.join(dest, path),
            "before": (before[0] or "") if before else "",
            "after": desired[path][0],
        })
    for path in result["modes"]:
        entries.append({
            "before_header": f"{os.path.join(dest, path)} (mode)",
            "after_header": f"{os.path.join(dest, path)} (mode)",
            "before": "%04o\n" % existing[path][1],
            "after": "%04o\n" % desired[path][1],
        })
    return entries


def read_tree(dest, paths):
    """What exists on disk for ``paths`` under ``dest``: ``({path: (content, mode)}, manifest_text)``."""
    existing = {}
    for path in paths:
        full = os.path.join(dest, path)
        try:
            info = os.lstat(full)
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(info.st_mode)
        if not stat.S_ISREG(info.st_mode):
            existing[path] = (None, mode)
            continue
        try:
            with open(full, encoding="utf-8") as handle:
                existing[path] = (handle.read(), mode)
        except UnicodeDecodeError:
            existing[path] = (None, mode)
    try:
        with open(os.path.join(dest, MANIFEST_NAME), encoding="utf-8") as handle:
            manifest_text = handle.read()
    except FileNotFoundError:
        manifest_text = None
    return existing, manifest_text


def _write_atomically(full, content, mode):
    """Write through a temporary file in the same folder, then rename: never half a file on disk."""
    folder = os.path.dirname(full)
    os.makedirs(folder, exist_ok=True)
    if os.path.lexists(full) and not os.path.isfile(full):
        raise SlipwayError(f"{full} exists and is not a regular file; move it away first", path=full)
    handle, temporary = tempfile.mkstemp(prefix=".slipway-", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, full)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def apply(dest, desired, result):
    """Write what :func:`plan` decided. Refuses (raises) when the plan was refused."""
    if result["refused"]:
        raise SlipwayError(conflict_message(result["conflicts"], dest), conflicts=result["conflicts"])
    for path in result["created"] + result["updated"]:
        content, mode = desired[path]
        _write_atomically(os.path.join(dest, path), content, mode)
    for path in result["modes"]:
        os.chmod(os.path.join(dest, path), desired[path][1])
    if result["manifest"] is not None:
        _write_atomically(os.path.join(dest, MANIFEST_NAME), result["manifest"], 0o644)
