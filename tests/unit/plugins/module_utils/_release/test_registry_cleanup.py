"""Registry cleanup: which manifests the journals keep, and what check mode leaves alone."""

from __future__ import annotations

import datetime
import json

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release import journal as j
from ansible_collections.slipway.platform.plugins.module_utils._release import registry_cleanup as rc
from fake_kube import FakeClient

LIVE, OLD_LIVE, STALE, TAGGED = ("sha256:" + c * 64 for c in "abcd")
NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)


class FakeInventory:
    """The registry's listing: ``{repository: {tag: digest}}``; ``created`` per digest."""

    def __init__(self, tags, created=None):
        self.tags_by_repository = tags
        self.created_at = created or {}
        self.deleted = []

    def repositories(self):
        return sorted(self.tags_by_repository)

    def tags(self, repository):
        return sorted(self.tags_by_repository[repository])

    def manifest(self, repository, tag):
        digest = self.tags_by_repository[repository][tag]
        return digest, {"digest": digest}

    def created(self, _repository, manifest):
        return self.created_at.get(manifest["digest"])

    def delete(self, repository, digest):
        self.deleted.append((repository, digest))


class FakeRegistry:
    registry = "reg.example:5000"


@pytest.fixture(autouse=True)
def journals_by_context(monkeypatch):
    """report.journals lists by label existence, which the fake API does not filter: read each context instead."""
    def by_context(client, namespace):
        if namespace != j.NAMESPACE:
            raise rc.NotFound(f"namespaces {namespace} not found")
        return {context: j.Journal(client, context).records() for context in ("local", "ops")}
    monkeypatch.setattr(rc, "journals", by_context)


def journals():
    client = FakeClient()
    local = j.Journal(client, "local")
    old = {"app": {"images": {"app": f"reg.example:5000/shop/app@{OLD_LIVE}"}}}
    local.write({"outcome": j.SUCCEEDED, "systems": old}, after_revision=0)
    local.write({"outcome": j.FAILED, "systems": {"app": {"images": {"app": f"reg.example:5000/shop/app@{LIVE}"}}}},
                after_revision=1)
    j.Journal(client, "ops").write({"outcome": j.SUCCEEDED, "systems": {
        "web": {"images": {"web": "registry.registry.svc:5000/shop/web:stable"}},
        "elsewhere": {"images": {"x": f"other.example/shop/app@{STALE}"}}}}, after_revision=0)
    return client


def test_every_record_of_every_context_counts_failed_and_old_ones_too():
    references, contexts = rc.live_references(journals(), ["slipway-system", "slipway-showrooms"])
    assert contexts == ["local", "ops"]
    assert f"reg.example:5000/shop/app@{OLD_LIVE}" in references
    assert f"reg.example:5000/shop/app@{LIVE}" in references


def test_a_canary_steps_images_count():
    record = {"systems": {}, "action": {"kind": "canary", "images": {"app": f"r:1/app@{LIVE}"}}}
    assert rc.record_images(record) == {f"r:1/app@{LIVE}"}


def test_references_split_into_host_repository_digest_and_tag():
    assert rc.split_reference(f"127.0.0.1:5001/shop/app@{LIVE}") == ("127.0.0.1:5001", "shop/app", LIVE, None)
    assert rc.split_reference("127.0.0.1:5001/shop/app:v1") == ("127.0.0.1:5001", "shop/app", None, "v1")
    assert rc.split_reference("127.0.0.1:5001/shop/app") == ("127.0.0.1:5001", "shop/app", None, None)


def test_only_this_registrys_references_count_under_any_of_its_names():
    references, _contexts = rc.live_references(journals(), ["slipway-system"])
    digests, tags = rc.live_in_registry(references, {"reg.example:5000", "registry.registry.svc:5000"})
    assert digests == {"shop/app": {LIVE, OLD_LIVE}}
    assert tags == {"shop/web": {"stable"}}


def test_the_plan_keeps_referenced_digests_and_tags_and_deletes_the_rest():
    inventory = FakeInventory({"shop/app": {"1": OLD_LIVE, "2": LIVE, "3": STALE, "3-alias": STALE},
                               "shop/web": {"stable": TAGGED}})
    deletions, kept = rc.cleanup_plan(inventory, {"shop/app": {LIVE, OLD_LIVE}}, {"shop/web": {"stable"}}, now=NOW)
    assert deletions == [{"repository": "shop/app", "digest": STALE, "tags": ["3", "3-alias"]}]
    assert {(k["digest"], k["reason"]) for k in kept} == {
        (LIVE, "a release references it by digest"), (OLD_LIVE, "a release references it by digest"),
        (TAGGED, "a release references one of its tags")}


def test_young_images_and_other_repositories_are_left_alone():
    inventory = FakeInventory({"shop/app": {"new": STALE}, "team/x": {"1": TAGGED}},
                              created={STALE: NOW - datetime.timedelta(minutes=5)})
    deletions, kept = rc.cleanup_plan(inventory, {}, {}, prefixes=["shop/"], keep_younger_than=60, now=NOW)
    assert deletions == []
    assert kept == [{"repository": "shop/app", "digest": STALE, "tags": ["new"],
                     "reason": "built less than 60 minutes ago"}]
    assert rc.wanted("shop", ["shop"]) and rc.wanted("shop/app", ["shop"]) and not rc.wanted("shopping", ["shop"])


def run_cleanup(monkeypatch, check_mode):
    inventory = FakeInventory({"shop/app": {"2": LIVE, "3": STALE}})
    monkeypatch.setattr(rc, "RegistryInventory", lambda _registry: inventory)
    result = rc.registry_cleanup(journals(), FakeRegistry(), check_mode, keep_younger_than=0)
    return result, inventory


def test_check_mode_lists_and_deletes_nothing(monkeypatch):
    result, inventory = run_cleanup(monkeypatch, check_mode=True)
    assert result["changed"] and [d["digest"] for d in result["deleted"]] == [STALE]
    assert inventory.deleted == []


def test_a_run_deletes_what_it_listed(monkeypatch):
    result, inventory = run_cleanup(monkeypatch, check_mode=False)
    assert inventory.deleted == [("shop/app", STALE)]
    assert result["contexts"] == ["local", "ops"]


def test_a_journal_namespace_the_identity_may_not_read_stops_the_cleanup(monkeypatch):
    def refuse(_client, namespace):
        raise rc.Forbidden(f"configmaps in {namespace} are forbidden")
    monkeypatch.setattr(rc, "journals", refuse)
    with pytest.raises(SlipwayError, match="cannot read the journals in slipway-system"):
        rc.live_references(FakeClient(), ["slipway-system"])


class FakeBlobRegistry:
    registry = "reg.example:5000"

    def __init__(self, created):
        self.body = json.dumps({"created": created}).encode()

    def request(self, _method, _path, headers=None, scope=""):
        return type("Answer", (), {"status": 200, "body": self.body, "headers": {}})()


@pytest.mark.parametrize(("stamp", "expected"), [
    ("2026-11-30T11:59:00.123456789Z", datetime.datetime(2026, 11, 30, 11, 59, 0, 123456, tzinfo=datetime.UTC)),
    ("2026-11-30T11:59:00", datetime.datetime(2026, 11, 30, 11, 59, tzinfo=datetime.UTC)),
    ("yesterday", None),
])
def test_an_images_build_time_is_read_in_utc_or_not_at_all(stamp, expected):
    inventory = rc.RegistryInventory(FakeBlobRegistry(stamp))
    assert inventory.created("shop/app", {"config": {"digest": LIVE}}) == expected
