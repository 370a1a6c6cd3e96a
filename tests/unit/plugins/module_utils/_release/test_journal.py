"""Journal records: numbering, reading back, clashes, tampering."""

from __future__ import annotations

import json

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release import journal as j
from fake_kube import FakeClient


def test_record_names_are_zero_padded_and_sort():
    assert j.record_name("local", 7) == "slipway-release-local-000007"


def test_write_numbers_and_reads_back_in_order():
    client = FakeClient()
    journal = j.Journal(client, "local")
    journal.write({"outcome": j.SUCCEEDED, "systems": {"a": {"images": {"a": "r/a@sha256:1"}}}}, after_revision=0)
    journal.write({"outcome": j.FAILED, "systems": {}}, after_revision=1)
    j.Journal(client, "staging").write({"outcome": j.SUCCEEDED}, after_revision=0)
    records = journal.records()
    assert [r["revision"] for r in records] == [1, 2]
    assert journal.last_good(records)["revision"] == 1
    stored = client.store["/api/v1/namespaces/slipway-system/configmaps/slipway-release-local-000002"]
    assert stored["metadata"]["labels"][j.REVISION_LABEL] == "2"


def test_a_clashing_revision_takes_the_next_number():
    client = FakeClient()
    journal = j.Journal(client, "local")
    journal.write({"outcome": j.SUCCEEDED}, after_revision=0)
    record = journal.write({"outcome": j.SUCCEEDED}, after_revision=0)  # a stale reader
    assert record["revision"] == 2


def test_missing_revision_and_tampered_record_are_explained():
    client = FakeClient()
    journal = j.Journal(client, "local")
    with pytest.raises(SlipwayError, match="has no release 4"):
        journal.get(4)
    client.store["/api/v1/namespaces/slipway-system/configmaps/x"] = {
        "metadata": {"name": "x", "labels": {j.MANAGED_BY: "slipway", j.CONTEXT_LABEL: "local"}},
        "data": {j.RECORD_KEY: "{not json"}}
    with pytest.raises(SlipwayError, match="has no readable release.json"):
        journal.records()


def test_release_content_ignores_bookkeeping():
    a = {"revision": 1, "finished_at": "t1", "systems": {"s": {"images": {"i": "r"}, "manifest_digest": "d",
                                                               "git_sha": "1"}}}
    b = json.loads(json.dumps(a))
    b.update(revision=2, finished_at="t2")
    b["systems"]["s"]["git_sha"] = "2"
    assert j.release_content(a) == j.release_content(b)
    b["systems"]["s"]["manifest_digest"] = "e"
    assert j.release_content(a) != j.release_content(b)
