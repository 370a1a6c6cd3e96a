"""Deferred rendering: a system whose keyed inputs the latest release recorded reuses that release's stored objects;
any other (new, changed, unreadable snapshot, no record) is rendered; the record keeps the inputs keyed only."""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release.deferred import (
    DeferredRendering,
    is_deferred,
    recorded_inputs,
)

KEY = b"k" * 32
CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1"}}


class Reader:
    def __init__(self, stored, broken=()):
        self.stored, self.broken, self.reads = stored, set(broken), []

    def revision_objects(self, revision):
        self.reads.append(revision)
        if revision in self.broken:
            raise SlipwayError("part 0 of the snapshot is missing")
        return self.stored[revision]


def raw(name, inputs="d" * 64):
    return {"name": name, "namespace": "shop", "depends_on": [], "images": {}, "documents": None, "inputs": inputs}


def last(**systems):
    return {"revision": 3, "systems": {n: {"inputs": recorded_inputs(KEY, i)} for n, i in systems.items()},
            "snapshot": {"stored": {n: 2 for n in systems}}}


def rendering():
    told = []
    deferred = DeferredRendering(lambda name: [{"file": f"{name}/deploy/a.yaml.j2", "index": 0, "content": CM}],
                                 told.extend)
    return deferred, told


def test_unchanged_inputs_reuse_the_stored_objects_and_their_files():
    deferred, told = rendering()
    reader = Reader({2: {"app": {"objects": [CM], "files": ["app/deploy/a.yaml.j2"]}}})
    out = deferred.resolve([raw("app")], last(app="d" * 64), KEY, reader)
    assert deferred.reused == ["app"] and deferred.rendered == []
    assert out[0]["documents"] == [{"file": "stored objects of release 2", "index": 0, "content": CM}]
    assert out[0]["files"] == ["app/deploy/a.yaml.j2"] and not is_deferred(out[0])
    assert out[0]["documents_owned"]  # parsed for this run: validation need not copy them
    assert told == out


def test_changed_new_or_unreadable_systems_are_rendered_and_ready_ones_pass_through():
    deferred, told = rendering()
    reader = Reader({2: {"same": {"objects": [CM]}}}, broken={2})
    ready = {"name": "ready", "namespace": "shop", "documents": []}
    systems = [raw("changed", "e" * 64), raw("new"), raw("same"), ready]
    out = deferred.resolve(systems, last(changed="d" * 64, same="d" * 64), KEY, reader)
    assert deferred.rendered == ["changed", "new", "same"] and deferred.reused == []
    assert out[3] is ready and [s["name"] for s in told] == ["changed", "new", "same"]
    assert out[0]["documents"][0]["file"] == "changed/deploy/a.yaml.j2"
    assert not any(system.get("documents_owned") for system in out)  # rendered ones may be shared: copied


def test_without_a_latest_release_everything_is_rendered():
    deferred, _told = rendering()
    deferred.resolve([raw("app")], None, KEY, Reader({}))
    assert deferred.rendered == ["app"]


def test_the_record_keeps_inputs_keyed_never_as_given():
    kept = recorded_inputs(KEY, "d" * 64)
    assert kept and len(kept) == 32 and kept not in "d" * 64
    assert recorded_inputs(b"o" * 32, "d" * 64) != kept
    assert recorded_inputs(KEY, None) is None and recorded_inputs(KEY, "") is None
