"""Canary planning: replica split, the canary Deployment, routing, image swaps."""

from __future__ import annotations

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release import canary_plan as c

OLD, NEW = "r/web:1", "r/web:2"


def stable(replicas=3, image=OLD, name="web"):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop", "resourceVersion": "9",
                         "labels": {"app": name, "app.kubernetes.io/managed-by": "slipway",
                                    "slipway.io/system": "web", "slipway.io/context": "local"},
                         "annotations": {"slipway.io/digest": "abc", "team": "a"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name},
                                               "annotations": {"slipway.io/config-digest": "cfg"}},
                                  "spec": {"containers": [{"name": "app", "image": image},
                                                          {"name": "side", "image": "r/side:1"}]}}}}


def svc(name="web", selector=None):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector or {"app": "web"}}}


def entry(*objects):
    return {"namespace": "shop", "images": {"web": OLD, "side": "r/side:1"}, "objects": list(objects)}


@pytest.mark.parametrize(("stable_replicas", "weight", "expected"),
                         [(9, 10, (1, 10.0)), (3, 25, (1, 25.0)), (2, 50, (2, 50.0)), (1, 10, (1, 50.0)),
                          (4, 80, (16, 80.0))])
def test_split_is_closest_to_the_weight_with_at_least_one_canary(stable_replicas, weight, expected):
    assert c.split(stable_replicas, weight) == expected


def test_split_refuses_impossible_requests():
    for weight in (0, 100, -5):
        with pytest.raises(SlipwayError, match="between 1 and 99"):
            c.split(3, weight)
    with pytest.raises(SlipwayError, match="no replicas"):
        c.split(0, 10)


def test_the_canary_copies_the_stable_deployment_with_its_own_selector_and_image():
    body = c.canary_deployment(stable(), {OLD: NEW}, 1, "web")
    meta = body["metadata"]
    assert meta["name"] == "web-canary" and "resourceVersion" not in meta
    assert meta["labels"] == {"app": "web", c.TRACK_LABEL: "canary"}  # ownership is set again by the engine
    assert meta["annotations"] == {"team": "a", c.CANARY_OF: "web"}
    assert body["spec"]["selector"]["matchLabels"] == {"app": "web", c.TRACK_LABEL: "canary"}
    assert body["spec"]["template"]["metadata"]["labels"] == {"app": "web", c.TRACK_LABEL: "canary"}
    assert body["spec"]["template"]["metadata"]["annotations"] == {"slipway.io/config-digest": "cfg"}
    assert [x["image"] for x in body["spec"]["template"]["spec"]["containers"]] == [NEW, "r/side:1"]
    assert body["spec"]["replicas"] == 1


def test_plan_uses_live_replicas_and_finds_the_routing_service():
    bodies, report, canaries = c.plan_canary(entry(stable(replicas=3), svc(), svc("other", {"app": "other"})),
                                             {"web": NEW}, 10, "web", {"web": 9})
    assert [b["metadata"]["name"] for b in bodies] == ["web-canary"] and canaries == {}
    assert report == [{"deployment": "web", "canary": "web-canary", "stable_replicas": 9, "canary_replicas": 1,
                       "weight": 10.0, "services": ["web"]}]


def test_only_deployments_running_a_changed_image_get_a_canary():
    bodies = c.plan_canary(entry(stable(), stable(name="cron", image="r/side:1")), {"web": NEW}, 50, "web", {})[0]
    assert [b["metadata"]["name"] for b in bodies] == ["web-canary"]
    with pytest.raises(SlipwayError, match="no Deployment of system web runs"):
        c.plan_canary(entry(svc()), {"web": NEW}, 50, "web", {})


def test_image_requests_are_checked():
    with pytest.raises(SlipwayError, match="has no image"):
        c.new_images(entry(), {"ghost": NEW}, "web")
    with pytest.raises(SlipwayError, match="already runs"):
        c.new_images(entry(), {"web": OLD}, "web")
    swaps, full = c.new_images(entry(), {"web": NEW}, "web")
    assert swaps == {OLD: NEW} and full == {"web": NEW, "side": "r/side:1"}


def test_swap_images_reaches_init_containers():
    body = stable()
    body["spec"]["template"]["spec"]["initContainers"] = [{"name": "init", "image": OLD}]
    assert c.swap_images(body, {OLD: NEW})
    assert body["spec"]["template"]["spec"]["initContainers"][0]["image"] == NEW
    assert not c.swap_images(stable(image="r/other:1"), {OLD: NEW})


def test_routes_need_every_selector_label():
    assert c.routes([svc(), svc("strict", {"app": "web", "tier": "x"})], {"app": "web", c.TRACK_LABEL: "canary"}) \
        == ["web"]
