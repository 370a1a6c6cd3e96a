# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Field ownership (``metadata.managedFields``): which fields someone added by hand that a delivery takes back.

Server-side apply removes a field only when the applier owned it and no longer applies it; a field another
manager added survives every apply. A field that hand managers alone own and that the manifests do not declare
is therefore moved into the delivery's own Apply entry (the ownership transfer Kubernetes documents, as kubectl
does when it upgrades client-side-applied objects), and the next apply of the manifests removes it.

A field path is a tuple of fieldsV1 segments: ``("f:spec", "f:containers", 'k:{"name":"app"}', "f:image")``.
Nothing here talks to the API or imports Ansible.
"""

from __future__ import annotations

import copy
import json

SELF = "."  # a fieldsV1 node that is itself owned (a list item, a map key), besides its children


def field_paths(fields_v1, prefix=()):
    """The paths a fieldsV1 tree owns: its leaves and every node marked ``.``."""
    found = set()
    for segment, child in (fields_v1 or {}).items():
        if segment == SELF:
            continue
        path = (*prefix, segment)
        if not child or SELF in child:
            found.add(path)
        found |= field_paths(child, path)
    return found


def fields_v1(paths):
    """The fieldsV1 tree owning exactly ``paths`` (the inverse of :func:`field_paths`)."""
    tree = {}
    for path in sorted(paths):
        node = tree
        for segment in path:
            node = node.setdefault(segment, {})
    for path in paths:
        node = tree
        for segment in path:
            node = node[segment]
        if node and SELF not in node:
            node[SELF] = {}
    return tree


def render(path):
    """A path as the API names fields in conflicts: ``.spec.containers[name="app"].env[name="DRIFT"]``."""
    out = []
    for segment in path:
        kind, value = segment.split(":", 1)
        if kind == "f":
            out.append("." + value)
        elif kind == "k":
            key = json.loads(value)
            out.append("[" + ",".join(f"{name}={json.dumps(key[name])}" for name in sorted(key)) + "]")
        elif kind == "v":
            out.append(f"[={value}]")
        else:  # "i": a position in a list without keys
            out.append(f"[{value}]")
    return "".join(out)


def topmost(paths):
    """The paths none of whose ancestors is among them (what a report names: the item, not each of its fields)."""
    return sorted(p for p in paths if not any(p[:n] in paths for n in range(1, len(p))))


def _main_entries(managed_fields):
    """Entries of the object itself; a subresource's (``status``, ``scale``) is never a hand-added field."""
    return [entry for entry in managed_fields or [] if not entry.get("subresource")]


def _is_own_apply(entry, manager):
    return entry.get("manager") == manager and entry.get("operation") == "Apply"


def hand_added(managed_fields, removable, manager):
    """``{path: hand manager}`` of the fields to take back: added by hand, not declared, owned by no one else.

    ``removable(name)`` says whether a field manager is a person whose undeclared fields go; ``manager`` is the
    delivery's own field manager, whose Apply entry holds what the manifests declare. A path qualifies when
    removable managers alone own it (in the same API version as the delivery's entry), the delivery declares
    neither it nor anything under it (a label map whose keys are partly declared stays), and no other manager
    (a controller, an autoscaler, the delivery's own non-apply writes) owns anything at or under it.
    """
    entries = _main_entries(managed_fields)
    own = next((e for e in entries if _is_own_apply(e, manager)), None)
    declared = field_paths((own or {}).get("fieldsV1"))
    version = (own or {}).get("apiVersion")
    hand, others = {}, set()
    for entry in entries:
        if entry is own:
            continue
        paths = field_paths(entry.get("fieldsV1"))
        name = entry.get("manager") or ""
        if removable(name) and (version is None or entry.get("apiVersion") == version):
            for path in paths:
                hand.setdefault(path, name)
        else:
            others |= paths
    covered = {path[:n] for path in declared | others for n in range(1, len(path) + 1)}  # each, and its ancestors
    return {path: name for path, name in hand.items() if path not in covered}


def transferred(managed_fields, taken, manager, api_version):
    """``managedFields`` with the ``taken`` paths moved from the entries owning them into ``manager``'s Apply entry.

    Entries left owning nothing are dropped; without an Apply entry of ``manager`` one is added.
    """
    out, own_found = [], False
    for entry in managed_fields or []:
        entry = copy.deepcopy(entry)
        paths = field_paths(entry.get("fieldsV1"))
        if not entry.get("subresource") and _is_own_apply(entry, manager):
            own_found = True
            entry["fieldsV1"] = fields_v1(paths | set(taken))
        elif not entry.get("subresource") and paths & set(taken):
            if not paths - set(taken):
                continue
            entry["fieldsV1"] = fields_v1(paths - set(taken))
        out.append(entry)
    if not own_found:
        out.append({"manager": manager, "operation": "Apply", "apiVersion": api_version, "fieldsType": "FieldsV1",
                    "fieldsV1": fields_v1(taken)})
    return out
