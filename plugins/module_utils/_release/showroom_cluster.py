# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A showroom in the cluster: admitted (its namespaces, the deployer bound in them), listed, retired.

Admitting and retiring create and delete namespaces and bind roles, which the showroom's deployer may not: they run
with an administrator's connection (``slipway.platform.showroom``). Everything a showroom owns carries
``slipway.io/showroom=<name>`` (its namespaces) or its context (``showroom-<name>``: its journal, snapshots and lock
in ``slipway-showrooms``), and retiring deletes exactly that. Listing needs only reads
(``slipway.platform.showroom_info``).
"""

from __future__ import annotations

import calendar
import contextlib
import time

from ansible_collections.slipway.platform.plugins.module_utils._errors import Conflict, SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import api_path
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import (
    CONTEXT_LABEL,
    MANAGED_BY,
    SUCCEEDED,
    Journal,
    parse_record,
)
from ansible_collections.slipway.platform.plugins.module_utils._release.lease import lease_name
from ansible_collections.slipway.platform.plugins.module_utils._release.showroom import (
    CONTEXT_PREFIX,
    SHOWROOM_LABEL,
    delivery_images,
    hostname,
    namespace_map,
    refuse_collisions,
    showroom_context,
    showroom_name,
)
from ansible_collections.slipway.platform.plugins.module_utils._release.snapshot import SNAPSHOT_LABEL
from ansible_collections.slipway.platform.plugins.module_utils._security.identity import (
    RBAC_API,
    namespace_rules,
    parse_resource,
)
from ansible_collections.slipway.platform.plugins.module_utils._system import read_description

BINDING = "slipway:showroom-deployer"
FIELD_MANAGER = "slipway-showroom"
SERVICE_ACCOUNT_WAIT = 30.0  # seconds for the controller manager to make a new namespace's default account


def base_release(client, context, journal_namespace):
    """The base context's last good release (``None`` when it has none): what the showroom runs of the systems
    the branch does not change."""
    records = Journal(client, context, journal_namespace).records()
    return Journal.last_good(records)


def taken_namespaces(client, name, targets, contexts_journal_namespace):
    """Which of ``targets`` (the showroom's namespaces) someone else has: a context's systems run there (any
    release in the contexts' journal), or it exists and is not this showroom's."""
    taken = {}
    selector = f"{MANAGED_BY}=slipway,{CONTEXT_LABEL}"
    body = client.get(api_path("v1", "configmaps", contexts_journal_namespace), query={"labelSelector": selector})
    for item in body.get("items") or []:
        record = parse_record(item)
        for system in (record.get("systems") or {}).values():
            namespace = (system or {}).get("namespace")
            if namespace in targets:
                taken.setdefault(namespace, f"context {record.get('context')} (its systems run there)")
    for namespace in targets:
        live = client.get(api_path("v1", "namespaces", name=namespace), ok_missing=True)
        owner = ((live or {}).get("metadata", {}).get("labels") or {}).get(SHOWROOM_LABEL)
        if live is not None and owner != name:
            taken.setdefault(namespace, f"showroom {owner}" if owner else "a namespace that exists already")
    return taken


def check(client, name, moved, contexts_journal_namespace):
    """Refuse the showroom before anything is written when one of its namespaces is taken (see
    :func:`taken_namespaces`)."""
    refuse_collisions(name, moved, taken_namespaces(client, name, set(moved.values()), contexts_journal_namespace))


def admit(client, name, namespaces, deployer, role, pull_secret=None, check_mode=False, kinds=()):
    """Make the showroom's namespaces, labelled as its own, with ``deployer`` (an RBAC subject) allowed in each and
    nowhere else - the generated deployer rules for ``kinds`` (``plural.group``; ``identity.namespace_rules``), or
    the ClusterRole ``role`` when one is named - and the registry's pull secret (``{namespace, name}``, copied) on
    each default service account. Returns what it created or changed."""
    changes = []
    source = None
    if pull_secret:
        source = client.get(api_path("v1", "secrets", pull_secret["namespace"], pull_secret["name"]), ok_missing=True)
        if source is None:
            raise SlipwayError(f"the image pull secret {pull_secret['namespace']}/{pull_secret['name']} to copy "
                               "into the showroom does not exist (slipway_showroom_image_pull_secret)")
    for namespace in namespaces:
        changes += _namespace(client, name, namespace, check_mode)
        if not role:
            changes += _role(client, namespace, kinds, check_mode)
        changes += _binding(client, namespace, deployer, role, check_mode)
        if source is not None and not check_mode:
            changes += _pull_secret(client, namespace, source)
    return changes


def _namespace(client, name, namespace, check_mode):
    live = client.get(api_path("v1", "namespaces", name=namespace), ok_missing=True)
    if live is not None:
        return []
    if not check_mode:
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": namespace, "labels": {SHOWROOM_LABEL: name, MANAGED_BY: "slipway"}}}
        client.request("POST", api_path("v1", "namespaces"), body=body)
    return [f"Namespace {namespace}"]


def _role(client, namespace, kinds, check_mode):
    """The deployer's generated rules in one showroom namespace, as Role ``BINDING``."""
    named = api_path(RBAC_API, "roles", namespace, BINDING)
    body = {"apiVersion": RBAC_API, "kind": "Role",
            "metadata": {"name": BINDING, "namespace": namespace, "labels": {MANAGED_BY: "slipway"}},
            "rules": namespace_rules({parse_resource(kind) for kind in kinds})}
    live = client.get(named, ok_missing=True)
    if live is not None and live.get("rules") == body["rules"]:
        return []
    if not check_mode:
        if live is None:
            client.request("POST", api_path(RBAC_API, "roles", namespace), body=body)
        else:
            version = {"resourceVersion": live["metadata"].get("resourceVersion")}
            client.request("PUT", named, body={**body, "metadata": {**body["metadata"], **version}})
    return [f"Role {namespace}/{BINDING} ({', '.join(sorted(kinds))})"]


def _binding(client, namespace, deployer, role, check_mode):
    path = api_path("rbac.authorization.k8s.io/v1", "rolebindings", namespace)
    named = api_path("rbac.authorization.k8s.io/v1", "rolebindings", namespace, BINDING)
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role} if role else \
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": BINDING}
    body = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": BINDING, "namespace": namespace, "labels": {MANAGED_BY: "slipway"}},
            "roleRef": ref, "subjects": [deployer]}
    live = client.get(named, ok_missing=True)
    if live is not None and live.get("roleRef") == body["roleRef"] and live.get("subjects") == body["subjects"]:
        return []
    if not check_mode:
        if live is not None:  # a roleRef cannot change in place
            client.request("DELETE", named)
        client.request("POST", path, body=body)
    return [f"RoleBinding {namespace}/{BINDING} ({ref['kind']} {ref['name']} for {deployer.get('name')})"]


def _pull_secret(client, namespace, source):
    changes = []
    name = source["metadata"]["name"]
    path = api_path("v1", "secrets", namespace)
    named = api_path("v1", "secrets", namespace, name)
    live = client.get(named, ok_missing=True)
    if live is None or live.get("data") != source.get("data"):
        body = {"apiVersion": "v1", "kind": "Secret", "type": source.get("type"), "data": source.get("data"),
                "metadata": {"name": name, "namespace": namespace, "labels": {MANAGED_BY: "slipway"}}}
        if live is None:
            client.request("POST", path, body=body)
        else:
            client.request("PUT", named, body=dict(body, metadata=dict(
                body["metadata"], resourceVersion=live["metadata"]["resourceVersion"])))
        changes.append(f"Secret {namespace}/{name}")
    account = _default_account(client, namespace)
    pulls = account.get("imagePullSecrets") or []
    if {"name": name} not in pulls:
        client.request("PATCH", api_path("v1", "serviceaccounts", namespace, "default"),
                       body={"imagePullSecrets": [*pulls, {"name": name}]},
                       content_type="application/merge-patch+json")
        changes.append(f"ServiceAccount {namespace}/default (pulls with {name})")
    return changes


def _default_account(client, namespace):
    deadline = time.monotonic() + SERVICE_ACCOUNT_WAIT
    while True:
        account = client.get(api_path("v1", "serviceaccounts", namespace, "default"), ok_missing=True)
        if account is not None:
            return account
        if time.monotonic() > deadline:
            raise SlipwayError(f"namespace {namespace} got no default service account within "
                               f"{SERVICE_ACCOUNT_WAIT:g}s: is the controller manager running?")
        time.sleep(0.5)


def showrooms(client, journal_namespace, now=None):
    """Every showroom the cluster has, oldest first: its namespaces and what its journal says."""
    now = time.time() if now is None else now
    found = {}
    body = client.get(api_path("v1", "namespaces"), query={"labelSelector": SHOWROOM_LABEL})
    for item in body.get("items") or []:
        if (item.get("status") or {}).get("phase") == "Terminating":  # a retired showroom's, on its way out
            continue
        metadata = item.get("metadata") or {}
        entry = found.setdefault(metadata["labels"][SHOWROOM_LABEL], {"namespaces": [], "created": None})
        entry["namespaces"].append(metadata["name"])
        created = _epoch(metadata.get("creationTimestamp"))
        entry["created"] = min(filter(None, [entry["created"], created]), default=None)
    selector = f"{MANAGED_BY}=slipway,{CONTEXT_LABEL}"
    records = {}
    for item in client.get(api_path("v1", "configmaps", journal_namespace),
                           query={"labelSelector": selector}).get("items") or []:
        record = parse_record(item)
        context = str(record.get("context") or "")
        if context.startswith(CONTEXT_PREFIX):
            records.setdefault(context[len(CONTEXT_PREFIX):], []).append(record)
    for name in records:
        found.setdefault(name, {"namespaces": [], "created": None})
    return sorted((_described(name, entry, sorted(records.get(name, []), key=lambda r: r["revision"]), now)
                   for name, entry in found.items()), key=lambda s: (s["created"] or "", s["name"]))


def _described(name, entry, records, now):
    latest = records[-1] if records else None
    meta = next((r["showroom"] for r in reversed(records) if isinstance(r.get("showroom"), dict)), {})
    good = next((r for r in reversed(records) if r.get("outcome") == SUCCEEDED), None)
    first = _epoch(records[0].get("started_at")) if records else None
    created = min(filter(None, [entry["created"], first]), default=None)
    last = _epoch(latest.get("finished_at")) if latest else None
    actor = (latest or {}).get("actor") or {}
    return {
        "name": name, "context": CONTEXT_PREFIX + name, "namespaces": sorted(entry["namespaces"]),
        "branch": meta.get("branch"), "base": meta.get("base"), "url": meta.get("url"),
        "who": meta.get("requested_by") or actor.get("user"),
        "systems": {system: (data or {}).get("images") or {} for system, data in
                    sorted(((good or latest or {}).get("systems") or {}).items())},
        "revision": (latest or {}).get("revision"), "outcome": (latest or {}).get("outcome"),
        "last_delivery": (latest or {}).get("finished_at"), "created": _iso(created),
        "age_seconds": round(now - created) if created else None,
        "idle_seconds": round(now - (last or created)) if (last or created) else None,
    }


def untested(systems, system_images, images, running):
    """The ``systems`` whose images (``images``) the showroom's last good release (``running``) does not run."""
    return [system for system in systems
            if any((running.get(system) or {}).get("images", {}).get(image) != images.get(image)
                   for image in system_images[system])]


def stale(listed, ttl_seconds):
    """The showrooms without a delivery for longer than ``ttl_seconds`` (one never delivered counts from its
    namespaces' creation)."""
    if ttl_seconds <= 0:
        raise SlipwayError(f"the showroom TTL must be a positive number of seconds, not {ttl_seconds!r}")
    return [s for s in listed if s["idle_seconds"] is not None and s["idle_seconds"] > ttl_seconds]


def retire(client, name, journal_namespace, check_mode=False):
    """Delete everything showroom ``name`` owns: its namespaces (with all in them), its journal, snapshots and lock.
    Nothing else: only namespaces labelled as its own, only objects of its context. Returns what went."""
    context = showroom_context(name)
    gone = []
    namespaces = client.get(api_path("v1", "namespaces"), query={"labelSelector": f"{SHOWROOM_LABEL}={name}"})
    targets = [("v1", "namespaces", None, item["metadata"]["name"]) for item in namespaces.get("items") or []]
    for plural in ("configmaps", "secrets"):
        for selector in (f"{CONTEXT_LABEL}={context}", f"{SNAPSHOT_LABEL}={context}"):
            listed = client.get(api_path("v1", plural, journal_namespace), query={"labelSelector": selector})
            targets += [("v1", plural, journal_namespace, item["metadata"]["name"])
                        for item in listed.get("items") or []]
    lock = api_path("coordination.k8s.io/v1", "leases", journal_namespace, lease_name(context))
    if client.get(lock, ok_missing=True) is not None:
        targets.append(("coordination.k8s.io/v1", "leases", journal_namespace, lease_name(context)))
    for group_version, plural, namespace, object_name in targets:
        if not check_mode:
            with contextlib.suppress(Conflict):  # already being deleted
                client.request("DELETE", api_path(group_version, plural, namespace, object_name), ok_missing=True)
        gone.append(f"{plural} {namespace + '/' if namespace else ''}{object_name}")
    return gone


def _epoch(text):
    if not text:
        return None
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
    except (TypeError, ValueError):
        return None


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else None


def present(client, request, check_mode=False):
    """Check, then admit, showroom ``request["name"]`` (a name people chose; made a label here) and say what it will
    run. ``request``: name, ecosystem_root, systems, base_context, base_journal_namespace, deployer, deployer_kinds,
    deployer_role, image_pull_secret, built (the build report, optional), branch_systems (optional), domain.
    Nothing is written before every check passed, and nothing at all in ``check_mode``."""
    name = showroom_name(request["name"])
    descriptions = {system: read_description(request["ecosystem_root"], system)[1] for system in request["systems"]}
    moved = namespace_map(name, [d.get("namespace") for d in descriptions.values()])
    check(client, name, moved, request["base_journal_namespace"])
    base = base_release(client, request["base_context"], request["base_journal_namespace"])
    result = {"showroom": name, "context": showroom_context(name), "namespaces": moved,
              "hostname": hostname(name, request["domain"]) if request.get("domain") else None,
              "base": {"context": request["base_context"], "revision": (base or {}).get("revision")}}
    if request.get("built") is not None:
        system_images = {system: [image["name"] for image in d.get("images") or []]
                         for system, d in descriptions.items()}
        result["images"], result["branch_systems"] = delivery_images(
            system_images, request["built"], (base or {}).get("systems") or {}, request.get("branch_systems"))
        # what the showroom already runs was tested before it was delivered: only new images need their tests
        running = base_release(client, result["context"], request["journal_namespace"]) or {}
        result["untested_systems"] = untested(result["branch_systems"], system_images, result["images"],
                                              running.get("systems") or {})
    result["created"] = admit(client, name, sorted(moved.values()), request["deployer"], request.get("deployer_role"),
                              request.get("image_pull_secret"), check_mode, request.get("deployer_kinds") or ())
    result["changed"] = bool(result["created"])
    return result
