# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Applying a context's generated identities (``identity.py``) with an admin's credentials.

The kinds each namespace receives are read from the rendered systems and resolved through API discovery, so a
custom kind maps to its real plural. Objects are applied server-side under ``slipway-security`` only when their rules,
subjects or labels differ; those labelled for the context that are no longer wanted are deleted. Check mode sends the
same requests as server-side dry-runs.
"""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import api_path
from ansible_collections.slipway.platform.plugins.module_utils._kube.discovery import Discovery
from ansible_collections.slipway.platform.plugins.module_utils._security.identity import (
    LABEL,
    RBAC_API,
    identity_objects,
    resource_name,
)

FIELD_MANAGER = "slipway-security"
PLURALS = {"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings", "Role": "roles",
           "RoleBinding": "rolebindings"}
COMPARED = ("rules", "subjects", "roleRef")


def delivered_resources(discovery, rendered):
    """``{namespace: {(group, plural)}}`` from the rendered systems' documents."""
    found = {}
    for system in rendered:
        for document in system.get("documents") or []:
            content = document.get("content")
            if not isinstance(content, dict) or not content.get("kind"):
                continue
            resource = discovery.resource(content.get("apiVersion", ""), content["kind"],
                                          where=f"system {system['name']}: {document.get('file')}")
            if not resource.namespaced:
                raise SlipwayError(f"system {system['name']} delivers the cluster-wide {content['kind']} "
                                   f"{(content.get('metadata') or {}).get('name')!r}: a deployer writes only in its "
                                   f"namespaces; apply it with an admin's credentials instead")
            namespace = (content.get("metadata") or {}).get("namespace") or system.get("namespace")
            found.setdefault(namespace, set()).add((resource.group, resource.name))
    return found


def _path(obj, name=True):
    namespace = obj["metadata"].get("namespace")
    return api_path(RBAC_API, PLURALS[obj["kind"]], namespace, obj["metadata"]["name"] if name else None)


def _differs(live, obj):
    if live is None:
        return True
    if (live["metadata"].get("labels") or {}).get(LABEL) != obj["metadata"]["labels"][LABEL]:
        return True
    return any(live.get(field) != obj.get(field) for field in COMPARED if field in obj)


def _key(obj):
    return obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]


def stale_objects(client, context, wanted):
    """Objects labelled for ``context`` that ``wanted`` no longer holds."""
    keys = {_key(obj) for obj in wanted}
    stale = []
    for kind, plural in PLURALS.items():
        listed = client.get(api_path(RBAC_API, plural), query={"labelSelector": f"{LABEL}={context}"}) or {}
        for item in listed.get("items") or []:
            item["kind"] = kind
            if _key(item) not in keys:
                stale.append(item)
    return stale


def _describe(obj):
    namespace = obj["metadata"].get("namespace")
    return f"{obj['kind']} {namespace + '/' if namespace else ''}{obj['metadata']['name']}"


def apply_identities(client, context, subject, rendered, journal_namespace, viewer_groups, check_mode):
    """Apply (or dry-run) the context's identities; the result lists what changed, with before/after for a diff."""
    resources = delivered_resources(Discovery(client), rendered)
    wanted = identity_objects(context, subject, resources, journal_namespace, viewer_groups)
    dry_run = {"dryRun": "All"} if check_mode else {}
    applied, removed, before, after = [], [], {}, {}
    for obj in wanted:
        live = client.get(_path(obj), ok_missing=True)
        if not _differs(live, obj):
            continue
        client.request("PATCH", _path(obj), body=obj, content_type="application/apply-patch+yaml",
                       query=dict(dry_run, fieldManager=FIELD_MANAGER, force="true"))
        applied.append(_describe(obj))
        before[_describe(obj)] = {f: live.get(f) for f in COMPARED if f in obj} if live else None
        after[_describe(obj)] = {f: obj[f] for f in COMPARED if f in obj}
    for obj in stale_objects(client, context, wanted):
        client.request("DELETE", _path(obj), query=dry_run or None)
        removed.append(_describe(obj))
        before[_describe(obj)], after[_describe(obj)] = {f: obj.get(f) for f in COMPARED if f in obj}, None
    namespaces = sorted(resources)
    return {"changed": bool(applied or removed), "applied": applied, "removed": removed,
            "namespaces": {ns: sorted(resource_name(group, plural) for group, plural in resources[ns])
                           for ns in namespaces},
            "diff": {"before": before, "after": after}}
