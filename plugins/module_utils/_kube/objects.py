# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rendered manifests to validated desired objects: checks, identities, ownership labels, ordering."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._gates import parse_health
from ansible_collections.slipway.platform.plugins.module_utils._kube.plain_copy import plain_copy
from ansible_collections.slipway.platform.plugins.module_utils._metrics import annotate_workload, parse_metrics
from ansible_collections.slipway.platform.plugins.module_utils._system import DNS_LABEL, System

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "slipway"
SYSTEM_LABEL = "slipway.io/system"
CONTEXT_LABEL = "slipway.io/context"
DIGEST_ANNOTATION = "slipway.io/digest"
FIELD_MANAGER = "slipway"

# Apply order within a system (in the spirit of Helm's install order); unknown kinds go last.
KIND_ORDER = [
    "Namespace", "CustomResourceDefinition", "PriorityClass", "NetworkPolicy", "ResourceQuota", "LimitRange",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "ConfigMap", "StorageClass", "PersistentVolume",
    "PersistentVolumeClaim", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service",
    "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler",
    "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
]
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_NAME_FREE_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}  # names like "system:x"


def kind_rank(kind):
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


@dataclass
class Desired:
    """One object a system declares, with where it came from (for error messages)."""

    system: str
    source: str  # "<file> (document N)"
    body: dict
    resource: object = None  # discovery.Resource, set once discovered
    pending_crd: bool = False  # served by a CRD this delivery creates: dry-run only once it is established

    @property
    def api_version(self):
        return self.body["apiVersion"]

    @property
    def kind(self):
        return self.body["kind"]

    @property
    def name(self):
        return self.body["metadata"]["name"]

    @property
    def namespace(self):
        return self.body["metadata"].get("namespace")

    @property
    def group(self):
        return self.api_version.rpartition("/")[0] if "/" in self.api_version else ""

    @property
    def key(self):
        return object_key(self.group, self.kind, self.namespace, self.name)

    @property
    def label(self):
        return object_label(self.kind, self.namespace, self.name)

    @property
    def where(self):
        return f"system {self.system}, {self.source}, {self.label}"


def object_key(group, kind, namespace, name):
    return f"{group}/{kind}/{namespace or ''}/{name}"


def object_label(kind, namespace, name):
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _document_errors(doc, where):
    if not isinstance(doc, dict):
        return [f"{where}: a manifest document must be a mapping, got {type(doc).__name__}"]
    errors = []
    for key in ("apiVersion", "kind"):
        if not isinstance(doc.get(key), str) or not doc.get(key):
            errors.append(f"{where}: missing or empty {key!r} (every object needs apiVersion, kind, metadata.name)")
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict):
        errors.append(f"{where}: missing 'metadata' mapping with a 'name'")
        return errors
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        hint = " (generateName is not supported: delivery must be idempotent)" if metadata.get("generateName") else ""
        errors.append(f"{where}: missing 'metadata.name'{hint}")
    elif doc.get("kind") not in _NAME_FREE_KINDS and not _DNS_SUBDOMAIN.match(name):
        errors.append(f"{where}: metadata.name {name!r} is not a valid name (lowercase letters, digits, '-', '.')")
    for key in ("labels", "annotations"):
        if metadata.get(key) is not None and not isinstance(metadata.get(key), dict):
            errors.append(f"{where}: metadata.{key} must be a mapping")
        for k, v in (metadata.get(key) or {}).items():
            if not isinstance(v, str):
                errors.append(f"{where}: metadata.{key}.{k} must be a string (quote it), got {v!r}")
    if doc.get("kind") == "Secret" and "stringData" in doc and not isinstance(doc["stringData"], dict):
        errors.append(f"{where}: Secret stringData must be a mapping")
    return errors


def build_systems(raw_systems):
    """Validate the rendered systems and return ``[System]``; raise one error listing every problem.

    ``raw_systems``: ``[{name, namespace, depends_on, images, git_sha, health, documents: [{file, index, content}]}]``
    where ``content`` is the parsed YAML document (``None`` for an empty one, which is skipped), ``health`` the
    gates of its ``slipway.yml`` (optional; see ``_gates.py``) and ``metrics`` its metrics port (optional; the
    workloads' pod templates get annotated with it, see ``_metrics.py``).
    """
    errors, systems = [], []
    names = set()
    for raw in raw_systems:
        name = raw.get("name")
        if not isinstance(name, str) or not DNS_LABEL.match(name):
            errors.append(f"system {name!r}: the name must be a DNS-1123 label (lowercase, digits, '-')")
            continue
        if name in names:
            errors.append(f"system {name}: listed twice")
            continue
        names.add(name)
        namespace = raw.get("namespace")
        if not isinstance(namespace, str) or not DNS_LABEL.match(namespace):
            errors.append(f"system {name}: 'namespace' {namespace!r} must be a DNS-1123 label (in its slipway.yml)")
            continue
        depends = raw.get("depends_on") or []
        if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
            errors.append(f"system {name}: depends_on must be a list of system names")
            depends = []
        gates, problems = parse_health(raw.get("health"), name, namespace)
        errors.extend(problems)
        metrics, problems = parse_metrics(raw.get("metrics"), name)
        errors.extend(problems)
        system = System(name=name, namespace=namespace, depends_on=list(depends), images=dict(raw.get("images") or {}),
                        git_sha=raw.get("git_sha"), files=[], health=gates, inputs=raw.get("inputs"))
        for doc in raw.get("documents") or []:
            content, source = doc.get("content"), f"{doc.get('file')} (document {doc.get('index', 0) + 1})"
            if doc.get("file") not in system.files:
                system.files.append(doc.get("file"))
            if content is None:
                continue  # an empty document: skipped
            for item_index, item in enumerate(_expand_list(content)):
                item_source = source if item is content else f"{source} item {item_index + 1}"
                problems = _document_errors(item, f"system {name}, {item_source}")
                if problems:
                    errors.extend(problems)
                    continue
                body = item if raw.get("documents_owned") else plain_copy(item)
                body.pop("status", None)
                annotate_workload(body, metrics, name)  # where Prometheus finds the pods (_metrics.py)
                desired = Desired(system=name, source=item_source, body=body)
                system.objects.append(desired)
        if raw.get("files"):  # objects reused from a snapshot: the files they were rendered from
            system.files = list(raw["files"])
        systems.append(system)
    for system in systems:
        for dep in system.depends_on:
            if dep == system.name:
                errors.append(f"system {system.name}: depends on itself")
    if errors:
        raise SlipwayError(f"{len(errors)} problem(s) in the rendered manifests; nothing was written:\n- "
                           + "\n- ".join(errors), problems=errors)
    return systems


def _expand_list(content):
    if isinstance(content, dict) and content.get("kind") == "List" and isinstance(content.get("items"), list):
        return content["items"]
    return [content]


def crd_resources(systems, resource_type):
    """Resources that CRDs of this delivery will serve: ``{(apiVersion, kind): resource}``."""
    found = {}
    for system in systems:
        for desired in system.objects:
            if desired.kind != "CustomResourceDefinition" or desired.group != "apiextensions.k8s.io":
                continue
            spec = desired.body.get("spec") or {}
            names = spec.get("names") or {}
            if not (spec.get("group") and names.get("kind") and names.get("plural")):
                continue
            for version in spec.get("versions") or []:
                if isinstance(version, dict) and version.get("name"):
                    api_version = f"{spec['group']}/{version['name']}"
                    found[(api_version, names["kind"])] = resource_type(
                        api_version, names["kind"], names["plural"], spec.get("scope", "Namespaced") == "Namespaced")
    return found


def place_objects(systems, discovery, context, pending=None):
    """Resolve every object's resource, default its namespace, add ownership labels, reject duplicates.

    ``pending``: resources that CRDs of this delivery will serve (see :func:`crd_resources`).
    Returns the problems found (strings); the caller raises them all at once.
    """
    errors, owners = [], {}
    pending = pending or {}
    for system in systems:
        for desired in system.objects:
            try:
                desired.resource = discovery.resource(desired.api_version, desired.kind, desired.where)
            except SlipwayError as exc:
                desired.resource = pending.get((desired.api_version, desired.kind))
                if desired.resource is None:
                    errors.append(exc.msg)
                    continue
                desired.pending_crd = True
            metadata = desired.body["metadata"]
            if desired.resource.namespaced:
                metadata.setdefault("namespace", system.namespace)
            elif metadata.get("namespace"):
                errors.append(f"{desired.where}: {desired.kind} is cluster-scoped; remove metadata.namespace")
                continue
            labels = metadata.setdefault("labels", {}) or {}
            metadata["labels"] = labels
            for key, value in ((MANAGED_BY, MANAGER), (SYSTEM_LABEL, system.name), (CONTEXT_LABEL, context)):
                if key in labels and labels[key] != value:
                    errors.append(f"{desired.where}: label {key} is Slipway's; remove it from the manifest")
                labels[key] = value
            if desired.key in owners:
                errors.append(f"{desired.where}: declared again (first in {owners[desired.key].where})")
            else:
                owners[desired.key] = desired
    return errors


def dependency_order(systems, known_elsewhere=()):
    """Systems in dependency order (a list of waves); raise on unknown dependencies or cycles."""
    by_name = {s.name: s for s in systems}
    errors = [f"system {s.name}: depends on {dep!r}, which is neither delivered now nor in the last release"
              for s in systems for dep in s.depends_on if dep not in by_name and dep not in known_elsewhere]
    if errors:
        raise SlipwayError("; ".join(errors), hint="add the dependency to slipway_systems or fix depends_on")
    remaining = {s.name: {d for d in s.depends_on if d in by_name} for s in systems}
    waves = []
    while remaining:
        wave = sorted(name for name, deps in remaining.items() if not deps)
        if not wave:
            cycle = " -> ".join(sorted(remaining))
            raise SlipwayError(f"systems depend on each other in a cycle: {cycle}",
                               hint="break the cycle in depends_on (slipway.yml)")
        waves.append(wave)
        for name in wave:
            del remaining[name]
        for deps in remaining.values():
            deps.difference_update(wave)
    return waves


def apply_groups(objects):
    """Objects grouped by kind rank (each group may be applied in parallel), in apply order."""
    groups = {}
    for desired in objects:
        groups.setdefault(kind_rank(desired.kind), []).append(desired)
    return [sorted(groups[rank], key=lambda d: d.key) for rank in sorted(groups)]


def _secret_slots(rendered):
    """``(key, document-or-item)`` for every Secret in rendered systems (List items included)."""
    for system in rendered or []:
        for document in system.get("documents") or []:
            content = document.get("content")
            for position, item in enumerate(_expand_list(content) if isinstance(content, dict) else []):
                if isinstance(item, dict) and item.get("kind") == "Secret":
                    yield f"{system.get('name')}/{document.get('file')}/{document.get('index')}/{position}", item


def split_secrets(rendered):
    """Move Secret values out of rendered systems, so they travel in a ``no_log`` option of their own.

    Returns ``(rendered, payloads)``; the input is not changed. :func:`merge_secrets` puts them back.
    """
    rendered = plain_copy(rendered)
    payloads = {}
    for key, item in _secret_slots(rendered):
        payload = {field: item.pop(field) for field in ("data", "stringData") if field in item}
        if payload:
            payloads[key] = payload
    return rendered, payloads


def merge_secrets(rendered, payloads):
    rendered = plain_copy(rendered)
    for key, item in _secret_slots(rendered):
        item.update(plain_copy((payloads or {}).get(key) or {}))
    return rendered
