"""Showrooms, the pure part: names, the delivery's systems moved into the showroom's namespaces, its route, which
images it runs, what its records say, and when one is stale."""

from __future__ import annotations

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release import showroom as s
from ansible_collections.slipway.platform.plugins.module_utils._release.showroom_cluster import (
    _described,
    stale,
    untested,
)
from ansible_collections.slipway.platform.plugins.module_utils._system import DNS_LABEL


def rendered_shop(namespace="shop"):
    def doc(kind, name, index=0, **extra):
        metadata = {"name": name, "namespace": namespace}
        return {"file": f"deploy/{kind.lower()}.yaml.j2", "index": index,
                "content": dict({"apiVersion": "v1", "kind": kind, "metadata": metadata}, **extra)}
    return [
        {"name": "backend", "namespace": namespace, "depends_on": [], "images": {},
         "health": {"path": "/healthz", "port": 8080},
         "documents": [doc("Service", "backend"), doc("ConfigMap", "backend", 1)]},
        {"name": "frontend", "namespace": namespace, "depends_on": ["backend"], "images": {},
         "health": [{"path": "/healthz", "port": 8080, "namespace": namespace}],
         "documents": [doc("Service", "frontend"), {"file": "deploy/x.yaml", "index": 0, "content": None}]},
    ]


def test_a_branch_name_becomes_a_short_label():
    assert s.showroom_name("feature-x") == "feature-x"
    name = s.showroom_name("Feature/Checkout-with-a-very-long-description")
    assert DNS_LABEL.match(name) and len(name) <= s.MAX_NAME
    assert s.showroom_context("feature-x") == "showroom-feature-x"


@pytest.mark.parametrize("bad", ["", "---", "/", "日本"])
def test_a_name_with_nothing_to_make_a_label_of_is_refused(bad):
    with pytest.raises(SlipwayError, match="showroom name refused"):
        s.showroom_name(bad)


@pytest.mark.parametrize("bad", ["Feature-X", "x" * 31, "-x", None])
def test_a_context_needs_a_sanitised_name(bad):
    with pytest.raises(SlipwayError, match="dns_label"):
        s.showroom_context(bad)


def test_every_object_moves_into_the_showrooms_namespace():
    moved = s.confined(rendered_shop(), "feature-x", ["shop"])
    assert {system["namespace"] for system in moved} == {"shop-feature-x"}
    assert {d["content"]["metadata"]["namespace"] for system in moved for d in system["documents"]
            if d["content"]} == {"shop-feature-x"}
    assert moved[1]["health"][0]["namespace"] == "shop-feature-x"
    assert moved[0]["health"] == {"path": "/healthz", "port": 8080}  # no namespace named: the system's applies


def test_confining_does_not_change_what_it_was_given_and_twice_is_once():
    original = rendered_shop()
    once = s.confined(original, "feature-x", ["shop"])
    assert original == rendered_shop()
    assert s.confined(once, "feature-x", ["shop"]) == once  # rendered from a rewritten description: already inside


def test_an_object_in_a_namespace_outside_the_ecosystem_is_refused():
    systems = rendered_shop()
    systems[0]["documents"][1]["content"]["metadata"]["namespace"] = "kube-system"
    with pytest.raises(SlipwayError, match="ConfigMap backend names namespace kube-system, outside the showroom") \
            as caught:
        s.confined(systems, "feature-x", ["shop"])
    assert "nothing was written" in caught.value.msg


def test_namespaces_and_service_account_subjects_move_with_the_ecosystem():
    systems = rendered_shop()
    systems[0]["documents"].append({"file": "deploy/ns.yaml", "index": 0, "content": {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}})
    systems[0]["documents"].append({"file": "deploy/rb.yaml", "index": 0, "content": {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "reader", "namespace": "shop"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "shop"}]}})
    moved = s.confined(systems, "x", ["shop"])
    assert moved[0]["documents"][2]["content"]["metadata"]["name"] == "shop-x"
    assert moved[0]["documents"][3]["content"]["subjects"][0]["namespace"] == "shop-x"


def test_templates_see_the_showrooms_namespace():
    description = {"name": "frontend", "namespace": "shop", "health": {"path": "/", "port": 80, "namespace": "shop"}}
    moved = s.rewritten_description(description, "feature-x")
    assert moved["namespace"] == "shop-feature-x" and moved["health"]["namespace"] == "shop-feature-x"
    assert description["namespace"] == "shop"


def test_a_namespace_someone_else_has_is_refused():
    moved = s.namespace_map("staging", ["shop"])
    with pytest.raises(SlipwayError, match="shop-staging .for shop. belongs to context staging") as caught:
        s.refuse_collisions("staging", moved, {"shop-staging": "context staging"})
    assert caught.value.details["collisions"]
    s.refuse_collisions("feature-x", s.namespace_map("feature-x", ["shop"]), {"shop-staging": "context staging"})


def test_the_ecosystems_own_namespaces_are_taken():
    moved = s.namespace_map("x", ["shop", "shop-x"])
    with pytest.raises(SlipwayError, match="the ecosystem's own systems"):
        s.refuse_collisions("x", moved, {})


def test_the_route_goes_to_the_entry_system_through_the_gateway():
    systems = s.showroom_systems(rendered_shop(), {
        "name": "feature-x", "namespaces": ["shop"],
        "route": {"system": "frontend", "port": "8080", "hostname": "feature-x.showroom.local",
                  "gateway": {"name": "slipway", "namespace": "slipway-gateway"}}})
    route = systems[1]["documents"][-1]["content"]
    assert route["kind"] == "HTTPRoute" and route["metadata"]["namespace"] == "shop-feature-x"
    assert route["spec"]["hostnames"] == ["feature-x.showroom.local"]
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                            "name": "slipway", "namespace": "slipway-gateway"}]
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "frontend", "port": 8080}]
    assert len(systems[0]["documents"]) == 2


def test_an_entry_system_that_routes_the_host_itself_keeps_its_own_route():
    systems = rendered_shop()
    own = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
           "metadata": {"name": "frontend", "namespace": "shop"}, "spec": {"hostnames": ["x.showroom.local"]}}
    systems[1]["documents"].append({"file": "deploy/route.yaml.j2", "index": 0, "content": own})
    routed = s.with_route(systems, "x", {"system": "frontend", "port": 8080, "hostname": "x.showroom.local",
                                         "gateway": {"name": "slipway"}})
    assert [d["content"]["metadata"]["name"] for d in routed[1]["documents"]
            if d["content"] and d["content"]["kind"] == "HTTPRoute"] == ["frontend"]


def test_a_route_to_a_system_not_delivered_or_without_gateway_is_refused():
    with pytest.raises(SlipwayError, match="entry system 'web' is not delivered"):
        s.with_route(rendered_shop(), "x", {"system": "web", "port": 80, "hostname": "x.local",
                                            "gateway": {"name": "g"}})
    with pytest.raises(SlipwayError, match="slipway_showroom_gateway"):
        s.with_route(rendered_shop(), "x", {"system": "frontend", "port": 80, "hostname": "x.local", "gateway": None})


def test_hostname_is_the_name_under_the_domain():
    assert s.hostname("feature-x", "showroom.local.") == "feature-x.showroom.local"
    with pytest.raises(SlipwayError, match="slipway_showroom_domain"):
        s.hostname("feature-x", "show_room.local")


BASE = {"backend": {"images": {"backend": "r/backend@sha256:b0"}},
        "frontend": {"images": {"frontend": "r/frontend@sha256:f0"}}}
IMAGES = {"backend": ["backend"], "frontend": ["frontend"], "worker": ["worker"]}


def test_the_branch_runs_what_it_changed_and_the_base_the_rest():
    built = {"backend": "r/backend@sha256:b0", "frontend": "r/frontend@sha256:f1", "worker": "r/worker@sha256:w1"}
    images, branch = s.delivery_images(IMAGES, built, BASE)
    assert branch == ["frontend", "worker"]  # worker: the base does not run it
    assert images == {"backend": "r/backend@sha256:b0", "frontend": "r/frontend@sha256:f1",
                      "worker": "r/worker@sha256:w1"}


def test_named_branch_systems_win_over_what_changed():
    built = {"backend": "r/backend@sha256:b1", "frontend": "r/frontend@sha256:f1", "worker": "r/worker@sha256:w1"}
    images, branch = s.delivery_images(IMAGES, built, BASE, branch=["frontend"])
    assert branch == ["frontend", "worker"]
    assert images["backend"] == "r/backend@sha256:b0"


def test_a_branch_system_missing_from_the_build_is_refused():
    with pytest.raises(SlipwayError, match="lacks its images .'worker'."):
        s.delivery_images(IMAGES, {"frontend": "r/frontend@sha256:f1"}, BASE)


def test_records_keep_what_describes_the_showroom_not_its_working_parts():
    recorded = s.showroom_record({"name": "feature-x", "branch": "feature/x", "namespaces": ["shop"], "url": "u",
                                  "base": "local", "route": {"hostname": "feature-x.showroom.local"}})
    assert recorded == {"name": "feature-x", "branch": "feature/x", "url": "u", "base": "local",
                        "hostname": "feature-x.showroom.local"}


def record(revision, finished, outcome="succeeded", **extra):
    return dict({"revision": revision, "context": "showroom-x", "outcome": outcome, "started_at": finished,
                 "finished_at": finished, "actor": {"user": "ci"},
                 "systems": {"frontend": {"images": {"frontend": f"r/frontend:{revision}"}}}}, **extra)


def test_a_listing_tells_who_what_where_and_how_old():
    records = [record(1, "2026-11-01T00:00:00Z", showroom={"branch": "feature/x", "url": "http://x/",
                                                           "requested_by": "alice", "base": "staging"}),
               record(2, "2026-11-02T00:00:00Z", outcome="failed")]
    now = 1764633600.0  # 2025-12-02T00:00:00Z
    entry = {"namespaces": ["shop-x"], "created": None}
    listed = _described("x", entry, records, now)
    assert listed["branch"] == "feature/x" and listed["who"] == "alice" and listed["url"] == "http://x/"
    assert listed["systems"] == {"frontend": {"frontend": "r/frontend:1"}}  # what the last good release runs
    assert listed["revision"] == 2 and listed["outcome"] == "failed"
    assert listed["last_delivery"] == "2026-11-02T00:00:00Z" and listed["created"] == "2026-11-01T00:00:00Z"
    assert listed["idle_seconds"] == round(now - 1793577600)


def test_only_the_showrooms_idle_past_the_ttl_are_stale():
    listed = [{"name": "old", "idle_seconds": 90000}, {"name": "new", "idle_seconds": 60},
              {"name": "unknown", "idle_seconds": None}]
    assert [x["name"] for x in stale(listed, 86400)] == ["old"]
    with pytest.raises(SlipwayError, match="positive"):
        stale(listed, 0)


def test_only_images_the_showroom_does_not_run_yet_are_tested_again():
    images = {"frontend": "r/frontend@sha256:f2", "worker": "r/worker@sha256:w1"}
    running = {"frontend": {"images": {"frontend": "r/frontend@sha256:f1"}},
               "worker": {"images": {"worker": "r/worker@sha256:w1"}}}
    assert untested(["frontend", "worker"], IMAGES, images, running) == ["frontend"]
    assert untested(["frontend", "worker"], IMAGES, images, {}) == ["frontend", "worker"]  # a new showroom
