"""The release report: the model (what runs, history, any two releases compared, failures), its rendering (escaped,
self-contained, Secret values redacted) and the collection from journals and snapshots."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release import report as r
from ansible_collections.slipway.platform.plugins.module_utils._release import report_model as m
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import Journal
from ansible_collections.slipway.platform.plugins.module_utils._release.report_render import render
from ansible_collections.slipway.platform.plugins.module_utils._release.snapshot import SnapshotWriter
from fake_kube import FakeClient

KEY = b"k" * 32
SENTINEL = "SENTINEL-report-9f3a"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def ref(name, digit):
    return f"127.0.0.1:5001/{name}@sha256:{digit * 64}"


def configmap(name, **data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "shop"}, "data": data}


def secret(name, **values):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "shop",
                                                               "annotations": {"slipway.io/digest": "d"}},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}}


def system(name, digit, changed_in=None, result="changed", git_sha="a" * 40, manifest="m1"):
    return {"namespace": "shop", "images": {name: ref(name, digit)}, "git_sha": git_sha, "manifest_digest": manifest,
            "result": result, "changed_in": changed_in, "objects": []}


def record(revision, systems, outcome="succeeded", message="", context="local", **more):
    return dict({"revision": revision, "context": context, "outcome": outcome, "message": message,
                 "started_at": f"2026-01-0{revision}T10:00:00Z", "finished_at": f"2026-01-0{revision}T10:01:00Z",
                 "actor": {"holder": "h", "user": f"dev{revision}", "host": "ci", "ci_job": None},
                 "systems": systems, "summary": {}}, **more)


RECORDS = [
    record(1, {"backend": system("backend", "1", changed_in=1)}),
    record(2, {"backend": system("backend", "2", changed_in=2, manifest="m2"),
               "worker": system("worker", "3", changed_in=2)}),
    record(3, {"backend": system("backend", "2", changed_in=2, result="carried", manifest="m2"),
               "worker": system("worker", "4", result="failed")}, outcome="failed",
           message="worker: CrashLoopBackOff (exit code 3)"),
]


# ----------------------------------------------------------------------------- model


def test_what_runs_names_the_release_that_last_changed_each_system():
    rows = {row["system"]: row for row in m.running(RECORDS)}
    assert rows["backend"]["revision"] == 2 and rows["backend"]["actor"] == "dev2@ci"
    assert rows["backend"]["at"] == "2026-01-02T10:01:00Z" and rows["backend"]["outcome"] == "succeeded"
    assert rows["backend"]["images"] == [("backend", ref("backend", "2"))]
    assert rows["worker"]["revision"] == 3 and rows["worker"]["outcome"] == "failed"  # changed_in unset: this one


def test_history_compares_each_release_with_the_one_before_and_others_with_every_earlier_one():
    model = m.context_model("local", RECORDS)
    assert [h["revision"] for h in model["history"]] == [3, 2, 1]
    assert [(h["change"]["from"], h["change"]["to"]) for h in model["history"]] == [(2, 3), (1, 2), (None, 1)]
    assert model["history"][1]["change"]["diff"]["added"] == ["worker"]
    assert model["history"][1]["change"]["diff"]["updated"] == ["backend"]
    others = {o["to"]: [(p["from"], p["to"]) for p in o["pairs"]] for o in model["others"]}
    assert others == {3: [(1, 3)], 2: [], 1: []}  # every pair once: consecutive ones inline, the rest here
    assert model["last_good"] == 2 and model["latest"]["outcome"] == "failed"


def test_a_history_cut_short_does_not_compare_its_oldest_release_with_nothing():
    model = m.context_model("local", RECORDS[1:], older_not_shown=1)
    assert model["history"][-1]["change"] is None and model["older_not_shown"] == 1


def test_failures_come_from_the_journal_and_from_pipeline_results_that_never_reached_it():
    results = [{"outcome": "lock_not_obtained", "msg": "held by integration 7", "failed_revision": None,
                "playbook": "deliver", "finished_at": "2026-01-04T00:00:00Z", "systems": []},
               {"outcome": "delivery_failed_rolled_back", "msg": "recorded already", "failed_revision": 3,
                "playbook": "deliver", "finished_at": "2026-01-03T10:01:00Z"},
               {"outcome": "succeeded", "msg": "", "failed_revision": None}]
    found = m.failures("local", RECORDS, results)
    assert [(f["revision"], f["source"]) for f in found] == [(None, "pipeline result"), (3, "journal")]
    assert found[0]["reason"] == "lock_not_obtained: held by integration 7"
    assert found[1]["reason"] == "worker: CrashLoopBackOff (exit code 3)" and found[1]["systems"] == ["worker"]


def test_manifest_changes_redact_secret_values_yet_show_that_they_changed():
    older = {"app": [configmap("cfg", greeting="hi"), secret("pw", token=SENTINEL)]}
    newer = {"app": [configmap("cfg", greeting="hello"), secret("pw", token=SENTINEL + "-new")],
             "extra": [configmap("added", a="1")]}
    changes = m.manifest_changes(older, newer, KEY)
    assert [(c["system"], c["object"], c["change"]) for c in changes] == [
        ("app", "ConfigMap shop/cfg", "changed"), ("app", "Secret shop/pw", "changed"),
        ("extra", "ConfigMap shop/added", "added")]
    text = json.dumps(changes)
    assert "SENTINEL" not in text
    for value in (SENTINEL, SENTINEL + "-new"):
        assert base64.b64encode(value.encode()).decode() not in text
    secret_lines = [line["text"] for line in changes[1]["lines"] if line["kind"] in ("add", "del")]
    assert len(secret_lines) == 2 and all("<redacted hmac:" in line for line in secret_lines)
    assert "slipway.io/digest" not in text  # the digest annotation only repeats that something changed
    assert any(line["text"] == '+    "greeting": "hello"' for line in changes[0]["lines"])


def test_an_unchanged_object_is_not_listed_and_unread_objects_are_explained():
    same = {"app": [configmap("cfg", a="1")]}
    assert m.manifest_changes(same, same, KEY) == []
    pair = m.comparison(RECORDS[0], RECORDS[1], {1: same, 2: "release 2 was recorded without its objects"}, KEY)
    assert pair["manifests"] == [] and pair["manifests_note"].endswith("recorded without its objects")


def test_showrooms_are_told_apart_and_listed_after_contexts():
    room = m.context_model("feature-x", [record(1, {}, context="feature-x",
                                                showroom={"branch": "feature/x", "url": "http://x.local"})])
    model = m.report_model([room, m.context_model("local", RECORDS), m.context_model("staging", [])])
    assert [c["name"] for c in model["contexts"]] == ["local", "staging"]
    assert [c["name"] for c in model["showrooms"]] == ["feature-x"]
    assert room["showroom_facts"] == [("branch", "feature/x"), ("url", "http://x.local")]
    assert model["as_of"] == "2026-01-03T10:01:00Z"
    assert [f["revision"] for f in model["failures"]] == [3]


# ----------------------------------------------------------------------------- rendering


class Page(HTMLParser):
    """The elements and text of a page, as a browser's parser sees them."""

    def __init__(self, html):
        super().__init__()
        self.tags, self.attributes, self.text = [], [], []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes.extend(attrs)

    def handle_data(self, data):
        self.text.append(data)


def hostile_model():
    records = [record(1, {HOSTILE: system("backend", "1", changed_in=1)}, message=HOSTILE),
               record(2, {HOSTILE: system("backend", "2", changed_in=2, result="failed")}, outcome="failed",
                      message=f"{HOSTILE} failed")]
    objects = {1: {HOSTILE: [secret("pw", token=SENTINEL)]}, 2: {HOSTILE: [secret("pw", token="other")]}}
    return m.report_model([m.context_model("local", records, objects, KEY)], title=f"releases {HOSTILE}")


def test_hostile_names_and_messages_are_text_never_markup():
    html = render(hostile_model())
    page = Page(html)
    assert "script" not in page.tags and "img" not in page.tags
    assert not any(name.startswith("on") for name, _value in page.attributes)
    assert HOSTILE in "".join(page.text)  # shown, as text
    assert "SENTINEL" not in html and base64.b64encode(SENTINEL.encode()).decode() not in html


def test_the_page_is_self_contained_and_reads_without_javascript():
    html = render(hostile_model())
    page = Page(html)
    assert {"script", "link", "iframe", "object", "embed"}.isdisjoint(page.tags)
    addresses = [value for name, value in page.attributes if name in ("href", "src", "action")]
    assert addresses and all(value.startswith("#") for value in addresses)  # in-page anchors only
    assert "default-src 'none'" in html  # the browser refuses any load the page might still try
    assert page.tags.count("details") >= 1 and "<redacted hmac:" in "".join(page.text)


def test_rendering_is_deterministic():
    assert render(hostile_model()) == render(hostile_model())


# ----------------------------------------------------------------------------- collecting


class JournalClient(FakeClient):
    """The fake API with label-existence selectors (``slipway.io/context``), which the journal listing uses."""

    def request(self, method, path, body=None, query=None, **kwargs):
        selector = (query or {}).get("labelSelector")
        if method != "GET" or not selector:
            return super().request(method, path, body=body, query=query, **kwargs)
        exists = [part for part in selector.split(",") if "=" not in part]
        equal = ",".join(part for part in selector.split(",") if "=" in part)
        found = super().request(method, path, query=dict(query, labelSelector=equal), **kwargs)
        found["items"] = [i for i in found["items"] if all(k in (i["metadata"].get("labels") or {}) for k in exists)]
        return found


def deliver(client, context, revision, objects, images):
    entries = {"app": {"namespace": "shop", "depends_on": [], "images": images, "git_sha": "c" * 40, "files": [],
                       "objects": objects}}
    previous = Journal(client, context).latest()
    writer = SnapshotWriter(client, context, "slipway-system", entries, previous)
    rec = record(revision, {"app": dict(system("app", "1", changed_in=revision), images=images)}, context=context)
    return Journal(client, context).write(rec, after_revision=revision - 1, attach=writer)


@pytest.fixture
def cluster():
    client = JournalClient()
    client.store["/api/v1/namespaces/slipway-system/secrets/slipway-digest-key"] = {
        "metadata": {"name": "slipway-digest-key"}, "data": {"key": base64.b64encode(KEY).decode()}}
    deliver(client, "local", 1, [configmap("cfg", a="1"), secret("pw", token=SENTINEL)], {"app": ref("app", "1")})
    deliver(client, "local", 2, [configmap("cfg", a="2"), secret("pw", token=SENTINEL + "2")],
            {"app": ref("app", "2")})
    deliver(client, "showroom-feature-x", 1, [configmap("cfg", a="1")], {"app": ref("app", "3")})
    return client


def test_collect_reads_every_journal_and_the_stored_objects(cluster):
    model = r.collect(cluster, ["slipway-system"], contexts=["staging"])
    assert [c["name"] for c in model["contexts"]] == ["local", "staging"]
    assert [c["name"] for c in model["showrooms"]] == ["showroom-feature-x"]
    local = model["contexts"][0]
    change = local["history"][0]["change"]
    expected = [("ConfigMap shop/cfg", "changed"), ("Secret shop/pw", "changed")]
    assert [(c["object"], c["change"]) for c in change["manifests"]] == expected
    assert "SENTINEL" not in json.dumps(model)
    assert model["contexts"][1]["latest"] is None  # asked for by name, nothing recorded yet


def test_collect_keeps_the_newest_history_and_may_show_only_the_contexts_named(cluster):
    model = r.collect(cluster, ["slipway-system"], contexts=["local"], all_contexts=False, history=1)
    assert [c["name"] for c in model["contexts"] + model["showrooms"]] == ["local"]
    assert [h["revision"] for h in model["contexts"][0]["history"]] == [2]
    assert model["contexts"][0]["older_not_shown"] == 1
    with pytest.raises(SlipwayError, match="history must be 0"):
        r.collect(cluster, ["slipway-system"], history=-1)


def test_a_journal_namespace_that_cannot_be_read_is_named_on_the_page(cluster):
    def refuse(method, path, body=None, query=None, **kwargs):
        if path.startswith("/api/v1/namespaces/slipway-showrooms/"):
            cluster._fail(method, path, 403, "Forbidden", "configmaps is forbidden: User cannot list resource")
        return JournalClient.request(cluster, method, path, body=body, query=query, **kwargs)
    cluster.request = refuse
    model = r.collect(cluster)  # the default: the contexts' journals and the showrooms'
    assert [u["namespace"] for u in model["unread"]] == ["slipway-showrooms"]
    assert "forbidden" in model["unread"][0]["reason"]
    assert "slipway-showrooms" in render(model)
    assert [c["journal"] for c in model["contexts"]] == ["slipway-system"]


def test_a_release_whose_objects_are_gone_is_compared_by_its_record(cluster):
    del cluster.store["/api/v1/namespaces/slipway-system/secrets/slipway-release-local-000001"]
    change = r.collect(cluster, ["slipway-system"])["contexts"][0]["history"][0]["change"]
    assert change["manifests"] == [] and "Secrets of release 1" in change["manifests_note"]
    assert change["diff"]["updated"] == ["app"]


def test_check_mode_renders_without_writing_and_a_second_write_changes_nothing(cluster, tmp_path):
    dest = tmp_path / "out" / "releases.html"
    checked = r.report(cluster, str(dest), check_mode=True, namespaces=["slipway-system"])
    assert checked["changed"] is True and not dest.exists() and checked["diff"]["before"] == ""
    written = r.report(cluster, str(dest), namespaces=["slipway-system"])
    assert written["changed"] is True and dest.read_text() == written["diff"]["after"]
    again = r.report(cluster, str(dest), namespaces=["slipway-system"])
    assert again["changed"] is False
    assert {c["name"]: c["revision"] for c in again["contexts"]} == {"local": 2, "showroom-feature-x": 1}


def test_pipeline_results_of_a_folder_are_read_and_junk_is_skipped(tmp_path):
    (tmp_path / "result-local.json").write_text(json.dumps({"context": "local", "outcome": "tests_failed"}))
    (tmp_path / "result-broken.json").write_text("{not json")
    assert r.pipeline_results(str(tmp_path)) == {
        "local": [{"context": "local", "outcome": "tests_failed", "file": "result-local.json"}]}
