# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release journal: one ConfigMap per release in ``slipway-system``, numbered per context.

``slipway-release-<context>-<revision:06d>`` holds ``release.json``; labels make a context's history one LIST.
Secrets never enter a record: systems are recorded by image references and a keyed manifest digest.
"""

from __future__ import annotations

import json

from ansible_collections.slipway.platform.plugins.module_utils._errors import Conflict, SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import api_path

NAMESPACE = "slipway-system"
RECORD_KEY = "release.json"
MANAGED_BY = "app.kubernetes.io/managed-by"
CONTEXT_LABEL = "slipway.io/context"
REVISION_LABEL = "slipway.io/revision"
OUTCOME_LABEL = "slipway.io/outcome"
SUCCEEDED, FAILED = "succeeded", "failed"


def record_name(context, revision):
    return f"slipway-release-{context}-{int(revision):06d}"


def parse_record(configmap):
    """The release dict stored in a journal ConfigMap (with a clear error when it was tampered with)."""
    name = (configmap.get("metadata") or {}).get("name")
    raw = (configmap.get("data") or {}).get(RECORD_KEY)
    try:
        record = json.loads(raw)
    except (TypeError, ValueError):
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


class Journal:
    def __init__(self, client, context, namespace=NAMESPACE):
        self.client = client
        self.context = context
        self.namespace = namespace

    @property
    def _collection(self):
        return api_path("v1", "configmaps", self.namespace)

    def records(self):
        """Every release of the context, oldest first."""
        selector = f"{MANAGED_BY}=slipway,{CONTEXT_LABEL}={self.context}"
        body = self.client.get(self._collection, query={"labelSelector": selector})
        records = [parse_record(item) for item in body.get("items") or []]
        return sorted(records, key=lambda r: r["revision"])

    def latest(self, records=None):
        records = self.records() if records is None else records
        return records[-1] if records else None

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
            body = {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": record_name(self.context, revision), "namespace": self.namespace,
                             "labels": {MANAGED_BY: "slipway", CONTEXT_LABEL: self.context,
                                        REVISION_LABEL: str(revision), OUTCOME_LABEL: record.get("outcome", "")}},
                "data": {RECORD_KEY: json.dumps(record, sort_keys=True, indent=1)},
            }
            body.update(extra)
            try:
                self.client.request("POST", self._collection, body=body)
                return record
            except Conflict:
                revision += 1
        raise SlipwayError(f"could not record release for context {self.context}: revision numbers kept clashing")
