"""The journal that stays small: the history limit prunes old records with their companions, never the last good
release nor what a kept release, a canary step or a hold refers to; a record of 1,000 systems fits a ConfigMap;
full reads are paged and the index is read without the records."""

from __future__ import annotations

import hashlib
import json

from ansible_collections.slipway.platform.plugins.module_utils._release import history as h
from ansible_collections.slipway.platform.plugins.module_utils._release import journal as j
from ansible_collections.slipway.platform.plugins.module_utils._release import snapshot as s
from fake_kube import FakeClient

NS = "/api/v1/namespaces/slipway-system"
CONFIGMAP_LIMIT = 1024 * 1024  # what the API server accepts in a ConfigMap's data and binaryData together


def deliver(client, outcome="succeeded", changed=("app",), carried=(), action=None, big=False):
    """Record one release the way a delivery does: ``changed`` systems store their objects in this revision,
    ``carried`` ones point at the revision that stored them."""
    journal = j.Journal(client, "local")
    last = journal.latest()
    entries = {name: {"namespace": "shop", "depends_on": [], "images": {}, "git_sha": None, "files": [],
                      "objects": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                   "data": {"blob": hashlib.sha256(name.encode()).hexdigest() * (400 if big else 1)}},
                                  {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                                   "data": {"pw": "c2VjcmV0"}}]}
               for name in changed}
    writer = s.SnapshotWriter(client, "local", "slipway-system", entries, last)
    record = {"outcome": outcome, "systems": {n: {} for n in list(changed) + list(carried)}}
    if action:
        record["action"] = action
    return journal.write(record, after_revision=(last or {}).get("revision", 0), attach=writer)


def names(client, plural):
    return sorted(k.rsplit("/", 1)[1] for k in client.store if k.startswith(f"{NS}/{plural}/"))


def revisions(client):
    return [r["revision"] for r in j.Journal(client, "local").records()]


def test_records_beyond_the_limit_go_with_their_snapshot_parts_and_secrets(monkeypatch):
    monkeypatch.setattr(s, "INLINE_LIMIT", 64)  # every snapshot spills into companion ConfigMaps
    monkeypatch.setattr(s, "CHUNK", 512)
    client = FakeClient()
    for _release in range(5):
        deliver(client, big=True)
    assert any(n.startswith("slipway-snapshot-local-000001-") for n in names(client, "configmaps"))
    pruned = h.prune(j.Journal(client, "local"), history_max=2, say=said.append)
    assert pruned == [1, 2, 3]
    assert revisions(client) == [4, 5]
    gone = ("slipway-snapshot-local-000001", "slipway-snapshot-local-000003")
    assert not [n for n in names(client, "configmaps") if n.startswith(gone)]
    assert [n for n in names(client, "configmaps") if n.startswith("slipway-snapshot-local-000004-")]
    assert names(client, "secrets") == ["slipway-release-local-000004", "slipway-release-local-000005"]
    assert said == ["journal: pruned 3 release(s) beyond the history limit of 2 (kept 2)"]
    assert h.prune(j.Journal(client, "local"), history_max=2) == []  # nothing more to do


said = []


def test_the_last_good_release_is_kept_however_old():
    client = FakeClient()
    deliver(client)  # 1: the last good release
    for _release in range(4):
        deliver(client, outcome="failed")  # 2-5
    assert h.prune(j.Journal(client, "local"), history_max=2) == [2, 3]
    assert revisions(client) == [1, 4, 5]


def test_a_system_carried_over_keeps_the_revision_that_stored_its_objects():
    client = FakeClient()
    deliver(client, changed=("db", "app"))  # 1 stores db's objects; db never changes again
    for _release in range(4):
        deliver(client, changed=("app",), carried=("db",))
    latest = j.Journal(client, "local").latest()
    assert latest["snapshot"]["stored"] == {"app": 5, "db": 1}
    assert h.prune(j.Journal(client, "local"), history_max=2) == [2, 3]
    assert revisions(client) == [1, 4, 5]
    objects = s.SnapshotReader(client, "local", "slipway-system").release_objects(latest)
    assert sorted(objects) == ["app", "db"]  # a rollback to the latest release still finds everything


def test_the_release_a_canary_step_or_rollback_came_from_is_kept():
    client = FakeClient()
    deliver(client)  # 1
    deliver(client)  # 2: the release the canary started from
    deliver(client, outcome="failed")  # 3
    deliver(client, outcome="failed")  # 4
    deliver(client, outcome="failed", action={"kind": "canary", "system": "app", "from": 2})  # 5
    assert h.prune(j.Journal(client, "local"), history_max=1) == [1, 3, 4]
    assert revisions(client) == [2, 5]


def test_the_release_at_the_start_of_a_jobs_hold_is_kept():
    client = FakeClient()
    for revision in range(1, 6):
        deliver(client, outcome="succeeded" if revision < 3 else "failed")
        meta = client.store[f"{NS}/configmaps/{j.record_name('local', revision)}"]["metadata"]
        meta["creationTimestamp"] = f"2026-11-30T10:0{revision}:00Z"
    # the last good release is 2; a job took its hold at 10:01:30, when the context was at release 1
    client.store["/apis/coordination.k8s.io/v1/namespaces/slipway-system/leases/slipway-lock-local"] = {
        "metadata": {"name": "slipway-lock-local", "annotations": {"slipway.io/hold": "true"}},
        "spec": {"holderIdentity": "ci job 7", "acquireTime": "2026-11-30T10:01:30.000000Z"}}
    assert h.prune(j.Journal(client, "local"), history_max=1) == [3, 4]
    assert revisions(client) == [1, 2, 5]


def test_records_written_before_the_index_are_read_for_their_references():
    client = FakeClient()
    deliver(client, changed=("db", "app"))
    for _release in range(3):
        deliver(client, changed=("app",), carried=("db",))
    for revision in range(1, 5):  # as an older Slipway wrote them: no annotations
        client.store[f"{NS}/configmaps/{j.record_name('local', revision)}"]["metadata"].pop("annotations")
    assert h.prune(j.Journal(client, "local"), history_max=1) == [2, 3]
    assert revisions(client) == [1, 4]
    assert names(client, "secrets") == ["slipway-release-local-000001", "slipway-release-local-000004"]


def test_zero_keeps_every_release():
    client = FakeClient()
    for _release in range(3):
        deliver(client)
    assert h.prune(j.Journal(client, "local"), history_max=0) == []
    assert revisions(client) == [1, 2, 3]


def test_a_record_of_a_thousand_systems_fits_a_configmap_and_its_objects_spill_to_companions():
    """1,000 systems x (Deployment, Service, ConfigMap), recorded as ``release_record`` shapes them."""
    client = FakeClient()
    systems, entries = {}, {}
    for i in range(1000):
        name = f"svc{i:03d}"
        objects = [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "bench"},
                    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                             "template": {"metadata": {"labels": {"app": name}, "annotations": {
                                 s.CONFIG_ANNOTATION: hashlib.sha256(name.encode()).hexdigest()}},
                                 "spec": {"containers": [{"name": "app",
                                                          "image": f"127.0.0.1:5001/{name}@sha256:{'ab' * 32}"}]}}}},
                   {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "bench"},
                    "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}},
                   {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "bench"},
                    "data": {"greeting": f"hello from {name}", "salt": hashlib.sha256(name.encode()).hexdigest()}}]
        entries[name] = {"namespace": "bench", "depends_on": [], "images": {name: objects[0]["spec"]["template"][
            "spec"]["containers"][0]["image"]}, "git_sha": "f" * 40, "files": ["deploy/app.yaml.j2"],
            "objects": objects}
        systems[name] = {"namespace": "bench", "images": entries[name]["images"], "git_sha": "f" * 40,
                         "manifest_digest": hashlib.sha256(b"m" + name.encode()).hexdigest(),
                         "files": ["deploy/app.yaml.j2"], "result": "changed", "changed_in": 1,
                         "objects": [{"apiVersion": o["apiVersion"], "kind": o["kind"], "namespace": "bench",
                                      "name": name, "digest": hashlib.sha256(json.dumps(o).encode()).hexdigest()}
                                     for o in objects]}
    writer = s.SnapshotWriter(client, "local", "slipway-system", entries, None)
    record = {"context": "local", "outcome": "succeeded", "message": "", "actor": {"holder": "bench"},
              "systems": systems, "summary": {"created": 3000, "updated": 0, "unchanged": 0, "pruned": 0}}
    written = j.Journal(client, "local").write(record, after_revision=0, attach=writer)
    for path, stored in client.store.items():
        size = sum(len(v) for field in ("data", "binaryData") for v in (stored.get(field) or {}).values())
        assert size < CONFIGMAP_LIMIT * 0.9, f"{path}: {size} bytes"
    stored = client.store[f"{NS}/configmaps/{j.record_name('local', 1)}"]
    assert j.PACKED_RECORD_KEY in stored["binaryData"] and "data" not in stored  # too large as plain text
    assert written["snapshot"]["objects"] == 3000
    assert j.Journal(client, "local").records()[0]["systems"] == systems
    back = s.SnapshotReader(client, "local", "slipway-system").release_objects(j.Journal(client, "local").get(1))
    assert len(back) == 1000 and back["svc999"]["objects"][2]["data"]["greeting"] == "hello from svc999"


class PagingClient(FakeClient):
    """Answers a LIST with ``limit`` a page at a time, with a ``continue`` token, as the API server does."""

    def request(self, method, path, body=None, query=None, content_type="application/json", ok_missing=False,
                accept="application/json"):
        found = super().request(method, path, body, query, content_type, ok_missing, accept)
        if method != "GET" or not (query or {}).get("limit") or "items" not in (found or {}):
            return found
        start = int((query or {}).get("continue") or 0)
        end = start + int(query["limit"])
        page = {"items": found["items"][start:end], "metadata": {}}
        if end < len(found["items"]):
            page["metadata"]["continue"] = str(end)
        return page


def test_reads_are_paged_and_the_index_and_chosen_records_need_no_full_read(monkeypatch):
    monkeypatch.setattr(j, "PAGE", 3)
    monkeypatch.setattr(j, "INDEX_PAGE", 4)
    client = PagingClient()
    for _release in range(10):
        deliver(client, outcome="succeeded")
    journal = j.Journal(client, "local")
    client.calls.clear()
    assert [r["revision"] for r in journal.records()] == list(range(1, 11))
    assert len(client.calls) == 4  # 10 records, 3 a page
    assert [e["revision"] for e in journal.index()] == list(range(1, 11))
    assert [r["revision"] for r in journal.read([9, 2, 10])] == [2, 9, 10]
    client.calls.clear()
    assert journal.latest()["revision"] == 10
    assert [c[0] for c in client.calls] == ["GET"] * 4  # three pages of the index, then the one record


def test_release_info_reads_the_index_and_only_the_records_it_returns():
    from ansible_collections.slipway.platform.plugins.modules import release_info

    client = PagingClient()
    deliver(client)  # 1: the last good release
    for _release in range(29):
        deliver(client, outcome="failed")  # 2-30
    client.calls.clear()
    found = release_info.read(client, {"context": "local", "journal_namespace": "slipway-system", "history": 3,
                                       "revision": 7})
    assert [r["revision"] for r in found["releases"]] == [28, 29, 30]
    assert found["latest"]["revision"] == 30 and found["last_good"]["revision"] == 1
    assert found["release"]["revision"] == 7
    lists = [q for method, path, q in client.calls if method == "GET" and path.endswith("/configmaps")]
    assert lists[-1]["labelSelector"].endswith("slipway.io/revision in (1,7,28,29,30)")  # five records, one LIST
    assert len(lists) == 2  # the index (one page of 500), then the records shown
