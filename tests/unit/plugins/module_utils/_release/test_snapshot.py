"""Release snapshots: storing, reading back across revisions, large and secret parts, config versioning."""

from __future__ import annotations

import base64
import json
import os
from types import SimpleNamespace

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.objects import Desired, System
from ansible_collections.slipway.platform.plugins.module_utils._release import snapshot as s
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import Journal
from fake_kube import FakeClient

NS = "/api/v1/namespaces/slipway-system"
KEY = b"k" * 32


def cm(name, **data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "shop"}, "data": data}


def sec(name, **data):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "shop"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def entry(*objects, images=None):
    return {"namespace": "shop", "depends_on": [], "images": images or {}, "git_sha": None, "files": [],
            "objects": list(objects)}


def write(client, entries, previous=None, systems=None, after=0):
    writer = s.SnapshotWriter(client, "local", "slipway-system", entries, previous)
    record = {"outcome": "succeeded", "systems": {n: {} for n in (systems or entries)}}
    return Journal(client, "local").write(record, after_revision=after, attach=writer)


def test_objects_are_stored_inline_and_secrets_only_in_a_companion_secret():
    client = FakeClient()
    record = write(client, {"app": entry(cm("cfg", a="1"), sec("pw", password="SENTINEL-value"))})
    assert record["snapshot"] == {"format": 1, "stored": {"app": 1}, "parts": 0, "objects": 1, "secrets": 1}
    stored = client.store[f"{NS}/configmaps/slipway-release-local-000001"]
    text = json.dumps(stored)
    assert "SENTINEL" not in text and base64.b64encode(b"SENTINEL-value").decode() not in text
    assert "SENTINEL" not in s.unpack(base64.b64decode(stored["binaryData"][s.OBJECTS_KEY]), "x").__repr__()
    holder = client.store[f"{NS}/secrets/slipway-release-local-000001"]
    assert holder["metadata"]["labels"][s.SNAPSHOT_LABEL] == "local"
    assert "slipway.io/context" not in holder["metadata"]["labels"]  # not mistaken for a journal record
    back = s.SnapshotReader(client, "local", "slipway-system").release_objects(record)
    assert [o["kind"] for o in back["app"]["objects"]] == ["Secret", "ConfigMap"]
    assert back["app"]["objects"][0]["data"]["password"] == base64.b64encode(b"SENTINEL-value").decode()


def test_carried_systems_point_at_the_revision_that_stored_them():
    client = FakeClient()
    first = write(client, {"a": entry(cm("a", v="1")), "b": entry(cm("b", v="1"))})
    second = write(client, {"a": entry(cm("a", v="2"))}, previous=first, systems=["a", "b"], after=1)
    assert second["snapshot"]["stored"] == {"a": 2, "b": 1}
    reader = s.SnapshotReader(client, "local", "slipway-system")
    back = reader.release_objects(second)
    assert back["a"]["objects"][0]["data"] == {"v": "2"} and back["b"]["objects"][0]["data"] == {"v": "1"}
    del client.store[f"{NS}/configmaps/slipway-release-local-000001"]
    with pytest.raises(SlipwayError, match="release 1 of context local is no longer in the journal"):
        s.SnapshotReader(client, "local", "slipway-system").release_objects(second)


def test_a_large_snapshot_goes_to_companion_configmaps(monkeypatch):
    monkeypatch.setattr(s, "INLINE_LIMIT", 1000)
    monkeypatch.setattr(s, "CHUNK", 700)
    client = FakeClient()
    big = entry(*[cm(f"c{i}", blob=os.urandom(200).hex()) for i in range(5)])
    record = write(client, {"app": big})
    parts = record["snapshot"]["parts"]
    assert parts > 1
    assert "binaryData" not in client.store[f"{NS}/configmaps/slipway-release-local-000001"]
    assert all(f"{NS}/configmaps/slipway-snapshot-local-000001-{i}" in client.store for i in range(parts))
    back = s.SnapshotReader(client, "local", "slipway-system").release_objects(record)
    assert back["app"]["objects"] == big["objects"]
    assert Journal(client, "local").records()[0]["revision"] == 1  # companions are not journal records


def test_an_orphan_companion_from_a_killed_run_is_replaced():
    client = FakeClient()
    client.store[f"{NS}/secrets/slipway-release-local-000001"] = {
        "metadata": {"name": "slipway-release-local-000001", "resourceVersion": "1"}, "data": {}}
    record = write(client, {"app": entry(sec("pw", password="new"))})
    back = s.SnapshotReader(client, "local", "slipway-system").release_objects(record)
    assert back["app"]["objects"][0]["data"]["password"] == base64.b64encode(b"new").decode()


def test_missing_pieces_and_old_records_are_explained():
    client = FakeClient()
    Journal(client, "local").write({"outcome": "succeeded", "systems": {"app": {}}}, after_revision=0)
    old = Journal(client, "local").records()[0]
    with pytest.raises(SlipwayError, match="delivered before snapshots existed"):
        s.SnapshotReader(client, "local", "slipway-system").release_objects(old)
    record = write(client, {"app": entry(sec("pw", password="x"))}, after=1)
    del client.store[f"{NS}/secrets/slipway-release-local-000002"]
    with pytest.raises(SlipwayError, match="Secrets of release 2 .* are missing"):
        s.SnapshotReader(client, "local", "slipway-system").release_objects(record)
    assert s.available([old, record]) == [(2, "succeeded")]
    assert s.describe_available([old]).startswith("none")


def test_tampered_snapshot_is_a_clean_error():
    with pytest.raises(SlipwayError, match="not readable"):
        s.unpack(b"not gzip", "of release 1")
    with pytest.raises(SlipwayError, match="not valid base64"):
        s.unb64("***", "of release 1")


def test_pack_is_deterministic():
    assert s.pack({"b": 1, "a": [1, 2]}) == s.pack({"a": [1, 2], "b": 1})


def delivered(runs, last=None):
    """A delivery's state as ``system_entries`` reads it (``engine.Delivery``)."""
    return SimpleNamespace(runs=runs, last=last, key=KEY, last_systems=(last or {}).get("systems") or {})


def app_run(digest="d1", images=None, depends_on=("db",)):
    plan = SimpleNamespace(body={"kind": "ConfigMap", "metadata": {"name": "x"}}, digest=digest)
    system = System(name="app", namespace="shop", depends_on=list(depends_on), images=images or {"app": "r/app:1"},
                    files=["f"])
    return SimpleNamespace(system=system, plans=[plan])


def recorded(run, stored_in=2):
    """The latest record, as it was written when ``run`` was delivered and its objects stored by ``stored_in``."""
    system = run.system
    return {"systems": {"app": {"namespace": system.namespace, "images": dict(system.images),
                                "depends_on": list(system.depends_on), "files": list(system.files),
                                "manifest_digest": s.manifest_digest(KEY, run)}},
            "snapshot": {"stored": {"app": stored_in}}}


def test_system_entries_keep_the_applied_bodies():
    run = app_run()
    found = s.system_entries(delivered({"app": run}))
    assert found == {"app": {"namespace": "shop", "depends_on": ["db"], "images": {"app": "r/app:1"},
                             "git_sha": None, "files": ["f"], "objects": [run.plans[0].body]}}
    assert found["app"]["objects"][0] is not run.plans[0].body


def test_a_system_applying_what_an_earlier_revision_stored_points_at_it_instead_of_being_stored_again():
    last = recorded(app_run())
    assert s.system_entries(delivered({"app": app_run()}, last)) == {}
    client = FakeClient()
    write(client, {"app": entry(cm("a", v="1"))})  # revision 1 stores app
    writer = s.SnapshotWriter(client, "local", "slipway-system", {}, {"snapshot": {"stored": {"app": 1}}})
    second = Journal(client, "local").write({"outcome": "succeeded", "systems": {"app": {}}}, after_revision=1,
                                            attach=writer)
    assert second["snapshot"]["stored"] == {"app": 1} and second["snapshot"]["objects"] == 0
    assert s.SnapshotReader(client, "local", "slipway-system").release_objects(second)["app"]["objects"] == [
        cm("a", v="1")]


@pytest.mark.parametrize("change", [{"digest": "d2"}, {"images": {"app": "r/app:2"}}, {"depends_on": ()}])
def test_a_system_whose_objects_or_description_changed_is_stored_again(change):
    last = recorded(app_run())
    assert list(s.system_entries(delivered({"app": app_run(**change)}, last))) == ["app"]
    unindexed = dict(last, snapshot={"stored": {}})  # the revision holding it is not known: store it
    assert list(s.system_entries(delivered({"app": app_run()}, unindexed))) == ["app"]


def test_raw_system_is_what_deliver_takes():
    raw = s.raw_system("app", entry(cm("a", v="1")), "snapshot of release 3")
    assert raw["documents"] == [{"file": "snapshot of release 3", "index": 0, "content": cm("a", v="1")}]
    assert raw["health"] is None
    gates = [{"command": ["true"]}]
    assert s.raw_system("app", dict(entry(), health=gates), "x")["health"] == gates  # restored with its gates


# ----------------------------------------------------------------------------- config versioning


def workload(name="web", kind="Deployment", **pod):
    template = {"metadata": {"labels": {"app": name}}, "spec": dict({"containers": [{"name": "c", "image": "i"}]},
                                                                    **pod)}
    spec = {"jobTemplate": {"spec": {"template": template}}} if kind == "CronJob" else {"template": template}
    return {"apiVersion": "apps/v1" if kind != "CronJob" else "batch/v1", "kind": kind,
            "metadata": {"name": name, "namespace": "shop"}, "spec": spec}


def systems_of(*bodies):
    return [System(name="app", namespace="shop", objects=[Desired(system="app", source="f", body=b) for b in bodies])]


def digest_of(systems, index):
    template = s.pod_template(systems[0].objects[index].body)
    return (template.get("metadata", {}).get("annotations") or {}).get(s.CONFIG_ANNOTATION)


def test_config_refs_cover_volumes_projected_env_from_and_env():
    pod = {"volumes": [{"name": "a", "configMap": {"name": "cm1"}}, {"name": "b", "secret": {"secretName": "s1"}},
                       {"name": "c", "projected": {"sources": [{"configMap": {"name": "cm2"}},
                                                               {"secret": {"name": "s2"}}]}}],
           "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "s3"}}]}],
           "containers": [{"name": "c", "envFrom": [{"configMapRef": {"name": "cm3"}}],
                           "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm4", "key": "k"}}},
                                   {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "s4", "key": "k"}}}]}]}
    assert s.config_refs(pod) == {("ConfigMap", f"cm{i}") for i in range(1, 5)} | {("Secret", f"s{i}")
                                                                                   for i in range(1, 5)}


def test_config_digest_follows_the_config_and_hides_secret_values():
    pod = {"volumes": [{"name": "a", "configMap": {"name": "cfg"}}, {"name": "b", "secret": {"secretName": "pw"}}]}
    one = systems_of(cm("cfg", a="1"), sec("pw", password="SENTINEL"), workload(**pod),
                     workload("lonely"), workload("cron", kind="CronJob", **pod))
    assert s.annotate_config(one, KEY) == 2
    first = digest_of(one, 2)
    assert first and digest_of(one, 3) is None and digest_of(one, 4) == first
    assert "SENTINEL" not in first
    same = systems_of(cm("cfg", a="1"), sec("pw", password="SENTINEL"), workload(**pod))
    s.annotate_config(same, KEY)
    assert digest_of(same, 2) == first  # stable: a redelivery changes nothing
    secret_changed = systems_of(cm("cfg", a="1"), sec("pw", password="other"), workload(**pod))
    s.annotate_config(secret_changed, KEY)
    assert digest_of(secret_changed, 2) != first  # a changed secret rolls the pods
    string_data = sec("pw")
    string_data.pop("data")
    string_data["stringData"] = {"password": "SENTINEL"}
    folded = systems_of(cm("cfg", a="1"), string_data, workload(**pod))
    s.annotate_config(folded, KEY)
    assert digest_of(folded, 2) == first  # stringData and data are the same config


def test_config_in_another_namespace_does_not_count():
    other = cm("cfg", a="1")
    other["metadata"]["namespace"] = "elsewhere"
    systems = systems_of(other, workload(volumes=[{"name": "a", "configMap": {"name": "cfg"}}]))
    assert s.annotate_config(systems, KEY) == 0
