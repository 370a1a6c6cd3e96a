# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release snapshots: the exact objects a release applied, kept beside its journal record, and config versioning.

A rollback reapplies exactly what a release applied, so every record keeps its rendered objects:

- non-secret objects: gzip + base64 in the journal ConfigMap's ``binaryData`` (``objects.json.gz``); when that
  would make the record too large, in companion ConfigMaps ``slipway-snapshot-<context>-<revision:06d>-<n>``;
- Secret objects: in a companion Secret ``slipway-release-<context>-<revision:06d>`` (never in a ConfigMap, the
  record, the output or an annotation).

The record itself only gets a small index, ``snapshot``: which revision holds each system's objects (a system
carried over from an earlier release, or delivered again with the same objects, points at the revision that stored
it) and how many objects this revision stores.

Config versioning: every pod template that uses a ConfigMap or Secret declared in the same delivery gets the
annotation ``slipway.io/config-digest``, a keyed hash of that config. Changing the config rolls the workload
out; rolling back restores the old digest together with the old config, so the pods restart on it.
"""

from __future__ import annotations

import base64
import gzip
import json

from ansible_collections.slipway.platform.plugins.module_utils._errors import Conflict, SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import api_path
from ansible_collections.slipway.platform.plugins.module_utils._kube.plain_copy import plain_copy
from ansible_collections.slipway.platform.plugins.module_utils._kube.normalize import (
    canonical_json,
    is_secret,
    keyed_digest,
    secret_to_data,
)
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import parse_record, record_name

FORMAT = 1
OBJECTS_KEY = "objects.json.gz"
SECRETS_KEY = "secrets.json.gz"
INLINE_LIMIT = 256 * 1024  # compressed bytes kept in the record itself
CHUNK = 700 * 1024  # compressed bytes per companion ConfigMap (base64 grows it to ~933 KiB < 1 MiB)
SNAPSHOT_LABEL = "slipway.io/snapshot-of"  # companions carry this, never slipway.io/context (not journal records)
REVISION_LABEL = "slipway.io/revision"
CONFIG_ANNOTATION = "slipway.io/config-digest"
TEMPLATE_KINDS = {"Deployment": ("spec", "template"), "StatefulSet": ("spec", "template"),
                  "DaemonSet": ("spec", "template"), "ReplicaSet": ("spec", "template"),
                  "Job": ("spec", "template"), "CronJob": ("spec", "jobTemplate", "spec", "template")}


# ----------------------------------------------------------------------------- encoding


def pack(value):
    """JSON -> gzip -> bytes (deterministic: no timestamp in the gzip header)."""
    return gzip.compress(canonical_json(value).encode("utf-8"), mtime=0)


def unpack(data, where):
    try:
        return json.loads(gzip.decompress(data).decode("utf-8"))
    except (OSError, EOFError, ValueError, UnicodeDecodeError):
        raise SlipwayError(f"the stored snapshot {where} is not readable (truncated or edited by hand?)") from None


def b64(data):
    return base64.b64encode(data).decode("ascii")


def unb64(text, where):
    try:
        return base64.b64decode(text or "", validate=True)
    except ValueError:
        raise SlipwayError(f"the stored snapshot {where} is not valid base64") from None


def secret_name(context, revision):
    return f"slipway-release-{context}-{int(revision):06d}"


def part_name(context, revision, index):
    return f"slipway-snapshot-{context}-{int(revision):06d}-{index}"


def split_objects(systems):
    """``{system: meta+objects}`` -> (non-secret part, secret part ``{system: [Secret bodies]}``)."""
    plain, secret = {}, {}
    for name, entry in systems.items():
        objects = entry.get("objects") or []
        plain[name] = dict(entry, objects=[o for o in objects if not is_secret(o)])
        secrets = [o for o in objects if is_secret(o)]
        if secrets:
            secret[name] = secrets
    return plain, secret


def join_objects(plain, secret):
    """The inverse of :func:`split_objects` (Secrets first: they are applied before workloads anyway)."""
    out = {}
    for name, entry in plain.items():
        out[name] = dict(entry, objects=list(secret.get(name) or []) + list(entry.get("objects") or []))
    return out


# ----------------------------------------------------------------------------- writing


def stored_index(record):
    """``{system: revision holding its objects}`` of a record (empty without a record or a snapshot)."""
    return ((record or {}).get("snapshot") or {}).get("stored") or {}


def manifest_digest(key, run):
    """One keyed digest of everything a system's run applies (its objects' digests)."""
    return keyed_digest(key, sorted(p.digest for p in run.plans))


def stored_as_before(delivery, name, run):
    """Whether ``name`` applies exactly what the revision that stored it last time holds: the same objects (keyed
    digests), namespace, images, dependencies and files. Then the record points at that revision instead of storing
    the objects again, so a release that changes one system among 1,000 stores one."""
    if name not in stored_index(delivery.last):
        return False
    before, system = delivery.last_systems.get(name) or {}, run.system
    return (before.get("manifest_digest") == manifest_digest(delivery.key, run)
            and before.get("namespace") == system.namespace and before.get("images") == system.images
            and before.get("depends_on") == list(system.depends_on) and before.get("files") == system.files)


def system_entries(delivery):
    """What each system delivered in this run applied: bodies as applied (stringData folded, digest annotated),
    except the systems stored as before (:func:`stored_as_before`)."""
    entries = {}
    for name, run in delivery.runs.items():
        if stored_as_before(delivery, name, run):
            continue
        system = run.system
        entries[name] = {"namespace": system.namespace, "depends_on": list(system.depends_on),
                         "images": dict(system.images), "git_sha": system.git_sha, "files": list(system.files),
                         "objects": [plain_copy(p.body) for p in run.plans]}
    return entries


class SnapshotWriter:
    """``Journal.write(..., attach=writer)``: stores the companions, indexes the record, returns the binaryData."""

    def __init__(self, client, context, namespace, entries, previous):
        self.client = client
        self.context = context
        self.namespace = namespace
        self.entries = entries
        self.previous = stored_index(previous)

    def __call__(self, record):
        revision = record["revision"]
        plain, secret = split_objects(self.entries)
        stored = {}
        for name in (record.get("systems") or {}):
            if name in self.entries:
                stored[name] = revision
            elif name in self.previous:
                stored[name] = self.previous[name]
        blob = pack(plain)
        parts = 0
        if len(blob) > INLINE_LIMIT:
            chunks = [blob[i:i + CHUNK] for i in range(0, len(blob), CHUNK)]
            for index, chunk in enumerate(chunks):
                self._put("configmaps", part_name(self.context, revision, index), revision,
                          {"binaryData": {OBJECTS_KEY: b64(chunk)}})
            parts = len(chunks)
        if secret:
            self._put("secrets", secret_name(self.context, revision), revision,
                      {"type": "Opaque", "data": {SECRETS_KEY: b64(pack(secret))}})
        record["snapshot"] = {
            "format": FORMAT, "stored": stored, "parts": parts,
            "objects": sum(len(e["objects"]) for e in plain.values()),
            "secrets": sum(len(v) for v in secret.values()),
        }
        return {} if parts else {"binaryData": {OBJECTS_KEY: b64(blob)}}

    def _put(self, plural, name, revision, fields):
        kind = "Secret" if plural == "secrets" else "ConfigMap"
        body = dict({"apiVersion": "v1", "kind": kind,
                     "metadata": {"name": name, "namespace": self.namespace,
                                  "labels": {"app.kubernetes.io/managed-by": "slipway",
                                             SNAPSHOT_LABEL: self.context, REVISION_LABEL: str(revision)}}},
                    **fields)
        try:
            self.client.request("POST", api_path("v1", plural, self.namespace), body=body)
        except Conflict:
            # left behind by a run killed before it recorded this revision: replace it
            path = api_path("v1", plural, self.namespace, name)
            found = self.client.get(path)
            body["metadata"]["resourceVersion"] = (found.get("metadata") or {}).get("resourceVersion")
            self.client.request("PUT", path, body=body)


def snapshot_writer(delivery):
    """The ``attach`` callable for the journal write of ``delivery`` (a ``_release.engine.Delivery``)."""
    return SnapshotWriter(delivery.client, delivery.opts.context, delivery.opts.journal_namespace,
                          system_entries(delivery), delivery.last)


# ----------------------------------------------------------------------------- reading


def available(records):
    """Revisions a rollback can go to: ``[(revision, outcome)]`` of records that carry a snapshot index."""
    return [(r["revision"], r.get("outcome")) for r in records if (r.get("snapshot") or {}).get("stored") is not None]


def describe_available(records):
    found = available(records)
    if not found:
        return "none (no release of this context was recorded with its objects)"
    return ", ".join(f"{revision} ({outcome})" for revision, outcome in found)


class SnapshotReader:
    """Loads stored objects; each revision's companions are read once."""

    def __init__(self, client, context, namespace):
        self.client = client
        self.context = context
        self.namespace = namespace
        self._cache = {}

    def _get(self, plural, name):
        return self.client.get(api_path("v1", plural, self.namespace, name), ok_missing=True)

    def revision_objects(self, revision):
        """``{system: {namespace, depends_on, images, git_sha, files, objects}}`` stored by one revision."""
        if revision in self._cache:
            return self._cache[revision]
        name = record_name(self.context, revision)
        where = f"of release {revision} ({self.namespace}/{name})"
        found = self._get("configmaps", name)
        if found is None:
            raise SlipwayError(f"release {revision} of context {self.context} is no longer in the journal "
                               f"({self.namespace}); its objects cannot be restored")
        index = parse_record(found).get("snapshot") or {}
        if not index:
            raise SlipwayError(f"release {revision} of context {self.context} was recorded without its objects "
                               "(before snapshots existed); it cannot be restored")
        if index.get("parts"):
            blob = b""
            for part in range(index["parts"]):
                piece = self._get("configmaps", part_name(self.context, revision, part))
                if piece is None:
                    raise SlipwayError(f"part {part} of the snapshot {where} is missing; it cannot be restored")
                blob += unb64((piece.get("binaryData") or {}).get(OBJECTS_KEY), where)
        else:
            blob = unb64((found.get("binaryData") or {}).get(OBJECTS_KEY), where)
        plain = unpack(blob, where)
        secret = {}
        if index.get("secrets"):
            holder = self._get("secrets", secret_name(self.context, revision))
            if holder is None:
                raise SlipwayError(f"the Secrets of release {revision} (Secret {self.namespace}/"
                                   f"{secret_name(self.context, revision)}) are missing; it cannot be restored")
            secret = unpack(unb64((holder.get("data") or {}).get(SECRETS_KEY), where), where)
        self._cache[revision] = join_objects(plain, secret)
        return self._cache[revision]

    def release_objects(self, record, systems=None):
        """Every (or the named) system of a release with the objects it applied, resolved across revisions."""
        stored = stored_index(record)
        wanted = list(record.get("systems") or {}) if systems is None else list(systems)
        out = {}
        for name in wanted:
            if name not in (record.get("systems") or {}):
                continue
            if name not in stored:
                raise SlipwayError(f"release {record['revision']} of context {self.context} has no stored objects "
                                   f"for system {name} (it was delivered before snapshots existed)")
            objects = self.revision_objects(stored[name])
            if name not in objects:
                raise SlipwayError(f"the snapshot of release {stored[name]} lacks system {name}")
            out[name] = objects[name]
        return out


def raw_system(name, entry, source):
    """A stored system in the shape ``deliver()`` takes (``rendered``), its documents being the stored objects."""
    return {"name": name, "namespace": entry["namespace"], "depends_on": list(entry.get("depends_on") or []),
            "images": dict(entry.get("images") or {}), "git_sha": entry.get("git_sha"), "health": entry.get("health"),
            "documents": [{"file": source, "index": i, "content": plain_copy(obj)}
                          for i, obj in enumerate(entry.get("objects") or [])]}


# ----------------------------------------------------------------------------- config versioning


def pod_template(body):
    path = TEMPLATE_KINDS.get(body.get("kind"))
    node = body
    for key in path or ():
        node = node.get(key) if isinstance(node, dict) else None
    return node if path and isinstance(node, dict) else None


def config_refs(pod_spec):
    """``{("ConfigMap"|"Secret", name)}`` a pod spec reads (volumes, projected volumes, envFrom, env)."""
    refs = set()
    for volume in pod_spec.get("volumes") or []:
        if (volume.get("configMap") or {}).get("name"):
            refs.add(("ConfigMap", volume["configMap"]["name"]))
        if (volume.get("secret") or {}).get("secretName"):
            refs.add(("Secret", volume["secret"]["secretName"]))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if (source.get("configMap") or {}).get("name"):
                refs.add(("ConfigMap", source["configMap"]["name"]))
            if (source.get("secret") or {}).get("name"):
                refs.add(("Secret", source["secret"]["name"]))
    for container in (pod_spec.get("containers") or []) + (pod_spec.get("initContainers") or []):
        for source in container.get("envFrom") or []:
            if (source.get("configMapRef") or {}).get("name"):
                refs.add(("ConfigMap", source["configMapRef"]["name"]))
            if (source.get("secretRef") or {}).get("name"):
                refs.add(("Secret", source["secretRef"]["name"]))
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            if (value_from.get("configMapKeyRef") or {}).get("name"):
                refs.add(("ConfigMap", value_from["configMapKeyRef"]["name"]))
            if (value_from.get("secretKeyRef") or {}).get("name"):
                refs.add(("Secret", value_from["secretKeyRef"]["name"]))
    return refs


def config_content(body):
    body = secret_to_data(plain_copy(body))
    return {k: body.get(k) for k in ("data", "binaryData", "type") if body.get(k) is not None}


def annotate_config(systems, key):
    """Put ``slipway.io/config-digest`` on every pod template that uses config declared in this delivery.

    ``systems``: ``_kube.objects.System`` with placed objects (namespaces defaulted). The digest is keyed (HMAC),
    so a Secret's value never shows; returns the number of templates annotated.
    """
    config = {}
    for system in systems:
        for desired in system.objects:
            if desired.kind in ("ConfigMap", "Secret") and desired.api_version == "v1":
                config[(desired.namespace, desired.kind, desired.name)] = config_content(desired.body)
    annotated = 0
    for system in systems:
        for desired in system.objects:
            template = pod_template(desired.body)
            if template is None:
                continue
            used = sorted(ref for ref in config_refs(template.get("spec") or {})
                          if (desired.namespace,) + ref in config)
            if not used:
                continue
            digest = keyed_digest(key, [[kind, name, config[(desired.namespace, kind, name)]] for kind, name in used])
            metadata = template.setdefault("metadata", {})
            metadata["annotations"] = dict(metadata.get("annotations") or {}, **{CONFIG_ANNOTATION: digest})
            annotated += 1
    return annotated
