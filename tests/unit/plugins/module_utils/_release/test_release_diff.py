"""Diffs of journal records for people: per system what was added, removed or updated, and in lines."""

from __future__ import annotations

import copy

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release.release_diff import release_diff


def ref(name, digit):
    return f"127.0.0.1:5001/{name}@sha256:{digit * 64}"


def system(name, digit, manifest="m1", objects=None, git_sha="a" * 40, namespace="shop"):
    objects = objects if objects is not None else [("Deployment", name, "d1"), ("Service", name, "s1")]
    return {"namespace": namespace, "images": {name: ref(name, digit)}, "git_sha": git_sha,
            "manifest_digest": manifest, "result": "changed", "changed_in": None,
            "objects": [{"apiVersion": "v1", "kind": kind, "namespace": namespace, "name": obj, "digest": digest}
                        for kind, obj, digest in objects]}


def record(revision, systems, context="local", outcome="succeeded", **more):
    return dict({"revision": revision, "context": context, "outcome": outcome, "message": "",
                 "systems": systems, "summary": {}}, **more)


OLD = record(3, {"backend": system("backend", "1"), "frontend": system("frontend", "2"),
                 "legacy": system("legacy", "3")})


def newer():
    systems = copy.deepcopy(OLD["systems"])
    del systems["legacy"]
    systems["backend"] = system("backend", "4", manifest="m2", git_sha="b" * 40,
                                objects=[("Deployment", "backend", "d2"), ("ConfigMap", "backend-env", "c1")])
    systems["frontend"]["result"] = "carried"
    systems["worker"] = system("worker", "5")
    return record(4, systems, retired=["legacy"])


def test_systems_added_removed_updated_and_unchanged():
    diff = release_diff(OLD, newer())
    assert diff["from"] == {"context": "local", "revision": 3, "outcome": "succeeded"}
    assert diff["to"] == {"context": "local", "revision": 4, "outcome": "succeeded"}
    assert (diff["added"], diff["removed"], diff["updated"], diff["unchanged"]) == (
        ["worker"], ["legacy"], ["backend"], ["frontend"])
    assert diff["changed"] is True
    assert list(diff["systems"]) == ["backend", "legacy", "worker"]


def test_an_updated_system_says_which_images_objects_and_commit_changed():
    backend = release_diff(OLD, newer())["systems"]["backend"]
    assert backend["change"] == "updated" and backend["namespace"] == "shop"
    assert backend["images"] == {"backend": {"from": ref("backend", "1"), "to": ref("backend", "4")}}
    assert backend["manifests_changed"] is True
    assert backend["objects"] == {"added": ["ConfigMap shop/backend-env"], "removed": ["Service shop/backend"],
                                  "changed": ["Deployment shop/backend"]}
    assert backend["git_sha"] == {"from": "a" * 40, "to": "b" * 40}
    assert "namespace_change" not in backend


def test_added_and_removed_systems_show_their_images_from_or_to_nothing():
    systems = release_diff(OLD, newer())["systems"]
    assert systems["worker"]["images"] == {"worker": {"from": None, "to": ref("worker", "5")}}
    assert systems["legacy"]["images"] == {"legacy": {"from": ref("legacy", "3"), "to": None}}
    assert systems["legacy"]["objects"]["removed"] == ["Deployment shop/legacy", "Service shop/legacy"]


def test_the_lines_read_as_a_diff():
    lines = release_diff(OLD, newer())["lines"]
    assert lines == [
        "local 3 -> local 4: 1 added, 1 removed, 1 updated",
        "~ backend (shop): image backend 127.0.0.1:5001/backend@sha256:111111111111 -> "
        "127.0.0.1:5001/backend@sha256:444444444444; manifests changed (Deployment shop/backend changed, "
        "ConfigMap shop/backend-env added, Service shop/backend removed); git aaaaaaa -> bbbbbbb",
        "- legacy (shop): retired; image legacy 127.0.0.1:5001/legacy@sha256:333333333333",
        "+ worker (shop): image worker 127.0.0.1:5001/worker@sha256:555555555555; git aaaaaaa",
        "= unchanged: frontend",
    ]


def test_only_the_manifests_changed():
    changed = copy.deepcopy(OLD)
    changed["revision"] = 4
    changed["systems"]["frontend"]["manifest_digest"] = "m9"
    diff = release_diff(OLD, changed)
    assert diff["updated"] == ["frontend"]
    assert diff["systems"]["frontend"]["images"] == {}
    assert diff["lines"][1] == "~ frontend (shop): manifests changed"


def test_a_system_that_moved_namespace_says_so():
    moved = copy.deepcopy(OLD)
    moved["systems"]["frontend"] = system("frontend", "2", manifest="m2", namespace="web")
    frontend = release_diff(OLD, moved)["systems"]["frontend"]
    assert frontend["namespace"] == "web"
    assert frontend["namespace_change"] == {"from": "shop", "to": "web"}


def test_a_system_gone_without_a_retirement_is_no_longer_recorded():
    assert release_diff(OLD, record(4, {}))["lines"][1].startswith("- backend (shop): no longer recorded")


def test_identical_releases_change_nothing_even_when_bookkeeping_differs():
    same = copy.deepcopy(OLD)
    same["revision"], same["outcome"] = 5, "failed"
    for entry in same["systems"].values():
        entry["result"] = "carried"
    diff = release_diff(OLD, same)
    assert diff["changed"] is False and diff["systems"] == {}
    assert diff["lines"] == ["local 3 -> local 5 (failed): no change", "= unchanged: backend, frontend, legacy"]


@pytest.mark.parametrize("given", [
    lambda: release_diff(OLD),
    lambda: release_diff([OLD]),
    lambda: release_diff(None, OLD),
    lambda: release_diff({}, OLD),
])
def test_one_record_is_compared_with_nothing(given):
    diff = given()
    assert diff["from"] is None and diff["added"] == ["backend", "frontend", "legacy"]
    assert diff["lines"][0] == "nothing -> local 3: 3 added"


def test_a_list_of_two_records_is_oldest_first():
    assert release_diff([OLD, newer()]) == release_diff(OLD, newer())


def test_records_of_two_contexts_compare():
    staging = copy.deepcopy(OLD)
    staging["context"] = "staging"
    lines = release_diff(staging, OLD)["lines"]
    assert lines == ["staging 3 -> local 3: no change", "= unchanged: backend, frontend, legacy"]


def test_old_records_without_objects_still_diff():
    bare = record(1, {"backend": {"namespace": "shop", "images": {"backend": ref("backend", "1")},
                                  "manifest_digest": "m0"}})
    diff = release_diff(bare, OLD)
    assert diff["updated"] == ["backend"]
    assert diff["systems"]["backend"]["objects"]["added"] == ["Deployment shop/backend", "Service shop/backend"]


@pytest.mark.parametrize(("first", "second", "message"), [
    (None, None, "no newer release to compare"),
    ([], None, "no release to compare: the list of records is empty"),
    ([OLD, OLD, OLD], None, "not a list of 3"),
    ([OLD], OLD, "either a list of records or two records"),
    (OLD, "revision 4", "the newer release must be a journal record.*not str"),
    ("revision 3", OLD, "the older release must be a journal record.*not str"),
    (OLD, {"systems": ["backend"]}, "the newer release must be a journal record"),
    (OLD, {"revision": 4, "systems": {"backend": "r@sha256:1"}}, "system 'backend' of the newer release"),
])
def test_what_is_not_a_journal_record_is_refused(first, second, message):
    with pytest.raises(SlipwayError, match=message):
        release_diff(first, second)
