# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release journal: one ConfigMap per release in ``slipway-system``, numbered per context.

``slipway-release-<context>-<revision:06d>`` holds ``release.json``; labels make a context's history one LIST.
Secrets never enter a record: systems are recorded by image references and a keyed manifest digest.

The labels and two annotations (the revisions a record needs kept, what is stored beside it) make the journal's
index: a metadata-only LIST, which says which release is the latest, the last good one and what the history limit
may prune (``history.py``) without reading a single record. Full reads are paged (``limit``/``continue``).
"""

from __future__ import annotations

import base64
import gzip
import json

from ansible_collections.slipway.platform.plugins.module_utils._errors import Conflict, SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import METADATA_LIST, api_path

NAMESPACE = "slipway-system"
RECORD_KEY = "release.json"
PACKED_RECORD_KEY = "release.json.gz"  # in binaryData, for a record too large to keep as plain text
PLAIN_LIMIT = 256 * 1024  # bytes of JSON kept as plain text; larger records are gzipped (1,000 systems: ~830 KiB)
CONFIGMAP_LIMIT = 1024 * 1024  # what the API server accepts in one ConfigMap's data and binaryData
MANAGED_BY = "app.kubernetes.io/managed-by"
CONTEXT_LABEL = "slipway.io/context"
REVISION_LABEL = "slipway.io/revision"
OUTCOME_LABEL = "slipway.io/outcome"
REFERS_TO = "slipway.io/refers-to"  # revisions this record needs kept: where its systems' objects are, its action's
COMPANIONS = "slipway.io/companions"  # what its snapshot keeps beside it: "parts=N" and/or "secret"
SUCCEEDED, FAILED = "succeeded", "failed"
PAGE = 50  # records per page of a full read (a record of 1,000 systems is a few hundred KiB)
INDEX_PAGE = 500


def referenced_revisions(record):
    """The revisions a record cannot do without: those holding its systems' stored objects, and the releases its
    action (a rollback, a canary step) came from and went to."""
    found = {int(r) for r in ((record.get("snapshot") or {}).get("stored") or {}).values()}
    action = record.get("action") or {}
    found |= {int(action[k]) for k in ("from", "to") if isinstance(action.get(k), int)}
    found.discard(record.get("revision"))
    return sorted(found)


def companions_note(record):
    index = record.get("snapshot") or {}
    return ",".join(([f"parts={index['parts']}"] if index.get("parts") else [])
                    + (["secret"] if index.get("secrets") else []))


def record_name(context, revision):
    return f"slipway-release-{context}-{int(revision):06d}"


def parse_record(configmap):
    """The release dict stored in a journal ConfigMap (with a clear error when it was tampered with)."""
    name = (configmap.get("metadata") or {}).get("name")
    raw = (configmap.get("data") or {}).get(RECORD_KEY)
    packed = (configmap.get("binaryData") or {}).get(PACKED_RECORD_KEY)
    try:
        record = json.loads(raw if raw is not None or packed is None else gzip.decompress(base64.b64decode(packed)))
    except (TypeError, ValueError, OSError, EOFError):
        raise SlipwayError(f"journal record {NAMESPACE}/{name} has no readable {RECORD_KEY}",
                           hint="restore it from a backup or delete it; the journal is Slipway's source of truth"
                           ) from None
    if not isinstance(record, dict) or not isinstance(record.get("revision"), int):
        raise SlipwayError(f"journal record {NAMESPACE}/{name} has no revision number")
    return record


def release_content(record):
    """What makes two releases the same: per system, the images and the keyed manifest digest."""
    if not record:
        return None
    return {name: {"images": s.get("images") or {}, "manifest_digest": s.get("manifest_digest")}
            for name, s in (record.get("systems") or {}).items()}


def stored_record(body, text, context, revision):
    """Put the record's JSON into the ConfigMap ``body``: plain, or gzipped beside the snapshot when it is large;
    a record that still does not fit is refused before anything is sent."""
    if len(text) <= PLAIN_LIMIT:
        body["data"] = {RECORD_KEY: text}
    else:
        packed = base64.b64encode(gzip.compress(text.encode("utf-8"), mtime=0)).decode("ascii")
        body["binaryData"] = dict(body.get("binaryData") or {}, **{PACKED_RECORD_KEY: packed})
    size = sum(len(v) for field in ("data", "binaryData") for v in (body.get(field) or {}).values())
    if size > CONFIGMAP_LIMIT:
        raise SlipwayError(f"the journal record of release {revision} of context {context} would be {size} bytes, "
                           f"more than the {CONFIGMAP_LIMIT} a ConfigMap may hold",
                           hint="split the context's systems over more contexts")


class Journal:
    def __init__(self, client, context, namespace=NAMESPACE):
        self.client = client
        self.context = context
        self.namespace = namespace

    @property
    def _collection(self):
        return api_path("v1", "configmaps", self.namespace)

    @property
    def _selector(self):
        return f"{MANAGED_BY}=slipway,{CONTEXT_LABEL}={self.context}"

    def _pages(self, size, accept="application/json", selector=None):
        query = {"labelSelector": selector or self._selector, "limit": size}
        while True:
            body = self.client.request("GET", self._collection, query=query, accept=accept)
            yield from body.get("items") or []
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return
            query = dict(query, **{"continue": token})

    def records(self):
        """Every release of the context, oldest first (read in pages)."""
        records = [parse_record(item) for item in self._pages(PAGE)]
        return sorted(records, key=lambda r: r["revision"])

    def read(self, revisions):
        """The records of ``revisions`` (those that exist), oldest first: one paged LIST, not one GET each."""
        if not revisions:
            return []
        selector = f"{self._selector},{REVISION_LABEL} in ({','.join(str(int(r)) for r in sorted(set(revisions)))})"
        return sorted((parse_record(item) for item in self._pages(PAGE, selector=selector)),
                      key=lambda r: r["revision"])

    def index(self):
        """The metadata of every record, oldest first, without the records (see the module docstring)."""
        found = []
        for item in self._pages(INDEX_PAGE, accept=METADATA_LIST):
            meta = item.get("metadata") or {}
            try:
                revision = int((meta.get("labels") or {}).get(REVISION_LABEL))
            except (TypeError, ValueError):
                continue  # not a record this code wrote; records() reports it
            found.append(dict(meta, revision=revision))
        return sorted(found, key=lambda m: m["revision"])

    def latest(self, records=None):
        """The latest record: from ``records`` when given, else read alone (the index, then one record)."""
        if records is not None:
            return records[-1] if records else None
        index = self.index()
        return self.get(index[-1]["revision"]) if index else None

    @staticmethod
    def last_good(records):
        good = [r for r in records if r.get("outcome") == SUCCEEDED]
        return good[-1] if good else None

    def get(self, revision):
        found = self.client.get(api_path("v1", "configmaps", self.namespace, record_name(self.context, revision)),
                                ok_missing=True)
        if found is None:
            raise SlipwayError(f"context {self.context} has no release {revision} in the journal "
                               f"({self.namespace}); it may have been pruned from the history")
        return parse_record(found)

    def write(self, record, after_revision, attach=None):
        """Create the record as the next revision; a name clash (a racing writer) takes the next number.

        ``attach(record)`` (the release snapshot, ``snapshot.py``) stores what goes beside the record and returns
        extra ConfigMap fields (``binaryData``); it may add its index to ``record``.
        """
        revision = (after_revision or 0) + 1
        for _attempt in range(5):
            record = dict(record, revision=revision)
            extra = attach(record) if attach is not None else {}
            text = json.dumps(record, sort_keys=True, separators=(",", ":"))
            body = {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": record_name(self.context, revision), "namespace": self.namespace,
                             "labels": {MANAGED_BY: "slipway", CONTEXT_LABEL: self.context,
                                        REVISION_LABEL: str(revision), OUTCOME_LABEL: record.get("outcome", "")},
                             "annotations": {REFERS_TO: ",".join(map(str, referenced_revisions(record))),
                                             COMPANIONS: companions_note(record)}},
            }
            body.update(extra)
            stored_record(body, text, self.context, revision)
            try:
                self.client.request("POST", self._collection, body=body)
                return record
            except Conflict:
                revision += 1
        raise SlipwayError(f"could not record release for context {self.context}: revision numbers kept clashing")
