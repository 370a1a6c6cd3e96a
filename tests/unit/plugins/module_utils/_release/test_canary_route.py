"""Canary routing through an HTTPRoute: weights, the header rule, the saved rules and the exact restore."""

from __future__ import annotations

import json

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.discovery import Resource
from ansible_collections.slipway.platform.plugins.module_utils._release import canary_plan as c
from ansible_collections.slipway.platform.plugins.module_utils._release import canary_route as rt
from ansible_collections.slipway.platform.plugins.module_utils._release import routing
from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Options
from fake_kube import FakeClient

ROUTE = {"name": "shop", "namespace": "shop", "header": None}
HEADER = {"name": "X-Canary", "value": "always"}
CANARIES = {"web": "web-canary"}
GATEWAY = {"name": "slipway", "namespace": "slipway-gateway"}


def ref(name, weight=1, port=80, **extra):
    # as the API server returns them: group, kind and weight defaulted
    return dict({"group": "", "kind": "Service", "name": name, "port": port, "weight": weight}, **extra)


def prefix(value="/"):
    return {"path": {"type": "PathPrefix", "value": value}}


def route(*rules, annotations=None):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "shop", "namespace": "shop", "resourceVersion": "7", "annotations": annotations or {},
                         "managedFields": [{"manager": "slipway", "operation": "Apply"}]},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": list(rules)},
            "status": {"parents": []}}


def rule(*refs, matches=None, **extra):
    return dict({"matches": matches or [prefix()], "backendRefs": list(refs)}, **extra)


def weights(body, index=0):
    return [(r["name"], r["weight"]) for r in body["spec"]["rules"][index]["backendRefs"]]


def test_a_single_backend_rule_becomes_stable_100_minus_w_and_canary_w():
    live = route(rule(ref("web")), rule(ref("api"), matches=[prefix("/api")]))
    body = rt.started_route(live, "web", CANARIES, 10, None, ROUTE)
    assert weights(body) == [("web", 90), ("web-canary", 10)]
    assert body["spec"]["rules"][1] == live["spec"]["rules"][1]  # rules of other Services stay as they were
    canary_ref = body["spec"]["rules"][0]["backendRefs"][1]
    assert canary_ref == ref("web-canary", weight=10)  # same port; group and kind explicit, as the server stores them
    assert "status" not in body and "managedFields" not in body["metadata"]
    assert body["metadata"]["resourceVersion"] == "7"  # the write is checked against the route that was read


def test_a_split_rule_keeps_other_backends_share_and_gives_the_canary_w_percent_of_the_stable_one():
    live = route(rule(ref("web", weight=3), ref("legacy", weight=1)))
    body = rt.started_route(live, "web", CANARIES, 20, None, ROUTE)
    assert weights(body) == [("web", 240), ("web-canary", 60), ("legacy", 100)]  # 3:1 kept; 60 / 300 = 20 %


def test_the_header_rule_copies_the_rule_adds_the_header_to_every_match_and_goes_to_the_canary_only():
    filters = [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x", "value": "y"}]}}]
    live = route(rule(ref("web"), matches=[prefix("/"), {"path": {"type": "Exact", "value": "/buy"},
                                                         "headers": [{"type": "Exact", "name": "tier", "value": "a"}]}],
                      filters=filters, name="main"))
    body = rt.started_route(live, "web", CANARIES, 5, HEADER, ROUTE)
    weighted, header = body["spec"]["rules"]
    assert [(r["name"], r["weight"]) for r in weighted["backendRefs"]] == [("web", 95), ("web-canary", 5)]
    wanted = {"type": "Exact", "name": "X-Canary", "value": "always"}
    assert header["matches"] == [dict(prefix(), headers=[wanted]),
                                 {"path": {"type": "Exact", "value": "/buy"},
                                  "headers": [{"type": "Exact", "name": "tier", "value": "a"}, wanted]}]
    assert header["backendRefs"] == [ref("web-canary", weight=1)]
    assert header["filters"] == filters and header["name"] == "main-canary"


def test_weight_zero_with_a_header_only_adds_the_header_rule():
    live = route(rule(ref("web")))
    body = rt.started_route(live, "web", CANARIES, 0, HEADER, ROUTE)
    assert body["spec"]["rules"][0] == live["spec"]["rules"][0]
    assert [r["name"] for r in body["spec"]["rules"][1]["backendRefs"]] == ["web-canary"]
    with pytest.raises(SlipwayError, match="0 only with a header"):
        rt.started_route(live, "web", CANARIES, 0, None, ROUTE)
    with pytest.raises(SlipwayError, match="between 1 and 99"):
        rt.started_route(live, "web", CANARIES, 100, HEADER, ROUTE)


def test_a_reweight_starts_again_from_the_saved_rules_and_restore_gives_them_back_exactly():
    live = route(rule(ref("web")), annotations={"team": "edge"})
    first = rt.started_route(live, "web", CANARIES, 10, HEADER, ROUTE)
    saved = json.loads(first["metadata"]["annotations"][rt.ROUTE_ANNOTATION])
    assert saved == {"system": "web", "rules": live["spec"]["rules"]}
    again = rt.started_route(first, "web", CANARIES, 30, HEADER, ROUTE)
    assert weights(again) == [("web", 70), ("web-canary", 30)] and len(again["spec"]["rules"]) == 2
    assert rt.started_route(first, "web", CANARIES, 10, HEADER, ROUTE) == first  # the same start: nothing to write
    restored = rt.restored_route(again, "web")
    assert restored["spec"] == live["spec"] and restored["metadata"]["annotations"] == {"team": "edge"}
    assert rt.route_fields(live, restored) == []
    assert rt.restored_route(live, "web") is None  # no canary on the route: nothing to restore


def test_a_route_in_a_shared_gateway_namespace_sends_to_the_systems_namespace():
    request = rt.route_request({"name": "shop", "namespace": "gateway"}, "shop")
    live = route(rule(ref("web", namespace="shop")), rule(ref("web")))  # the second is gateway/web: not ours
    body = rt.started_route(live, "web", CANARIES, 10, None, request)
    assert weights(body) == [("web", 90), ("web-canary", 10)]
    assert body["spec"]["rules"][0]["backendRefs"][1]["namespace"] == "shop"  # beside the stable Service
    assert body["spec"]["rules"][1] == live["spec"]["rules"][1]


def test_another_systems_canary_or_a_broken_annotation_is_refused():
    live = route(rule(ref("web")))
    other = rt.started_route(live, "api", {"web": "web-canary"}, 10, None, ROUTE)
    with pytest.raises(SlipwayError, match="already carries the canary of system api"):
        rt.started_route(other, "web", CANARIES, 10, None, ROUTE)
    broken = route(rule(ref("web")), annotations={rt.ROUTE_ANNOTATION: "{not json"})
    with pytest.raises(SlipwayError, match="is not the rules Slipway saved"):
        rt.restored_route(broken, "web")


def test_a_route_that_does_not_send_to_the_stable_service_is_refused_with_its_backends():
    live = route(rule(ref("api")), rule(ref("web", group="example.com", kind="Backend")))
    with pytest.raises(SlipwayError, match=r"sends no traffic to a stable Service of system web \(web\); "
                                           r"its backends: api; nothing was written"):
        rt.started_route(live, "web", CANARIES, 10, None, ROUTE)
    other_namespace = route(rule(ref("web", namespace="elsewhere")))
    with pytest.raises(SlipwayError, match="sends no traffic"):
        rt.started_route(other_namespace, "web", CANARIES, 10, None, ROUTE)


def test_header_clashes_and_weight_overflow_are_refused():
    clash = route(rule(ref("web"), matches=[dict(prefix(), headers=[{"type": "Exact", "name": "x-canary",
                                                                     "value": "a"}])]))
    with pytest.raises(SlipwayError, match="rule 1 already matches header X-Canary"):
        rt.started_route(clash, "web", CANARIES, 10, HEADER, ROUTE)
    heavy = route(rule(ref("web", weight=20000), ref("legacy")))
    with pytest.raises(SlipwayError, match="limit of 1000000"):
        rt.started_route(heavy, "web", CANARIES, 10, None, ROUTE)


def test_route_requests_are_checked():
    assert rt.route_request({"name": "shop"}, "shop") == {"name": "shop", "namespace": "shop", "header": None,
                                                          "services_namespace": "shop", "gateway": None}
    assert rt.route_request({"name": "r", "gateway": GATEWAY}, "shop")["gateway"] == GATEWAY
    assert rt.route_request({"name": "r", "namespace": "gw", "header": HEADER}, "shop")["header"] == HEADER
    for bad, message in (({}, "needs name"), ({"name": "r", "weight": 3}, "unknown key"),
                         ({"name": "r", "header": {"name": "X"}}, "exactly name and value"),
                         ({"name": "r", "header": {"name": "bad header", "value": "1"}}, "not a valid HTTP header"),
                         ({"name": "r", "header": {"name": "X", "value": ""}}, "1 to 4096"), ("shop", "mapping"),
                         ({"name": "r", "gateway": {"name": "gw"}}, "name and namespace")):
        with pytest.raises(SlipwayError, match=message):
            rt.route_request(bad, "shop")


def test_a_route_attached_to_the_contexts_gateway_is_weighted():
    live = route(rule(ref("web")))
    live["spec"]["parentRefs"] = [{"name": "gw"}, dict(GATEWAY, group="gateway.networking.k8s.io", kind="Gateway")]
    request = rt.route_request({"name": "shop", "gateway": GATEWAY}, "shop")
    assert weights(rt.started_route(live, "web", CANARIES, 10, None, request)) == [("web", 90), ("web-canary", 10)]


def test_a_route_not_attached_to_the_contexts_gateway_is_refused_naming_its_parents():
    request = rt.route_request({"name": "shop", "gateway": GATEWAY}, "shop")
    with pytest.raises(SlipwayError, match=r"HTTPRoute shop/shop is not attached to the context's Gateway "
                                           r"slipway-gateway/slipway \(its parentRefs: shop/gw\)"):
        rt.started_route(route(rule(ref("web"))), "web", CANARIES, 10, None, request)


def test_hand_back_drops_only_the_canary_field_manager():
    managed = [{"manager": "slipway"}, {"manager": rt.ROUTE_MANAGER}]
    assert rt.without_manager(managed) == [{"manager": "slipway"}]
    assert rt.without_manager([{"manager": "slipway"}]) is None  # nothing to hand back: no write


def deployment(labels=None, selector=None):
    labels = labels or {"app": "web", "tier": "front"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web", "slipway.io/system": "web"}},
            "spec": {"replicas": 3, "selector": selector or {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": "r/web:1"}]}}}}


def service(name, selector, **spec):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "slipway", "team": "a"},
                         "annotations": {"slipway.io/digest": "x"}},
            "spec": dict({"selector": selector, "clusterIP": "10.96.0.9", "type": "NodePort",
                          "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}]}, **spec)}


def test_routed_plan_moves_the_canary_pods_out_of_every_stable_service_and_gives_the_routed_one_a_twin():
    entry = {"namespace": "shop", "images": {"web": "r/web:1"},
             "objects": [deployment(), service("web", {"app": "web"}), service("web-metrics", {"tier": "front"}),
                         service("api", {"app": "api"})]}
    bodies, report, canaries = c.plan_canary(entry, {"web": "r/web:2"}, 25, "web", {"web": 3}, routed={"web"})
    canary, twin = bodies
    assert canaries == {"web": "web-canary"}
    labels = canary["spec"]["template"]["metadata"]["labels"]
    # both stable Services select by a label whose value the canary pods no longer carry
    assert labels == {"app": "web-canary", "tier": "front-canary", c.TRACK_LABEL: "canary"}
    assert canary["spec"]["selector"]["matchLabels"] == {"app": "web-canary", c.TRACK_LABEL: "canary"}
    assert c.routes([service("web", {"app": "web"}), service("web-metrics", {"tier": "front"})], labels) == []
    assert twin["metadata"] == {"name": "web-canary", "labels": {"team": "a", c.TRACK_LABEL: "canary"},
                                "annotations": {c.CANARY_OF: "web"}}
    assert twin["spec"] == {"type": "ClusterIP", "selector": {"app": "web-canary", c.TRACK_LABEL: "canary"},
                            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    assert c.routes([twin], labels) == ["web-canary"]
    # replicas still follow the weight (capacity); the route carries the exact weight
    assert report == [{"deployment": "web", "canary": "web-canary", "stable_replicas": 3, "canary_replicas": 1,
                       "weight": 25.0, "services": ["web-canary"]}]


def test_routed_plan_refuses_selectors_it_cannot_move():
    expressions = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]}
    entry = {"namespace": "shop", "images": {"web": "r/web:1"},
             "objects": [deployment(selector=expressions), service("web", {"tier": "front"})]}
    with pytest.raises(SlipwayError, match="matchExpressions"):
        c.plan_canary(entry, {"web": "r/web:2"}, 25, "web", {}, routed={"web"})
    long_value = "w" * 60
    entry = {"namespace": "shop", "images": {"web": "r/web:1"},
             "objects": [deployment(labels={"app": long_value}, selector={"matchLabels": {"app": long_value}}),
                         service("web", {"app": long_value})]}
    with pytest.raises(SlipwayError, match="too long"):
        c.plan_canary(entry, {"web": "r/web:2"}, 25, "web", {}, routed={"web"})


def test_the_replica_split_mode_is_unchanged_without_a_route():
    entry = {"namespace": "shop", "images": {"web": "r/web:1"},
             "objects": [deployment(), service("web", {"app": "web"})]}
    bodies, _report, canaries = c.plan_canary(entry, {"web": "r/web:2"}, 25, "web", {}, routed=None)
    assert canaries == {} and [b["kind"] for b in bodies] == ["Deployment"]
    assert bodies[0]["spec"]["template"]["metadata"]["labels"]["app"] == "web"  # still behind the stable Service


# ----------------------------------------------------------------------------- the route write (in-memory API)

RESOURCE = Resource("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes", True)
PATH = "/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/shop"


class RouteServer(FakeClient):
    """Like the API server, a write without managedFields keeps the ones the object has."""

    def _save(self, path, body):
        kept = (self.store.get(path) or {}).get("metadata", {}).get("managedFields")
        if kept and "managedFields" not in body["metadata"]:
            body = dict(body, metadata=dict(body["metadata"], managedFields=kept))
        return super()._save(path, body)


class EditedOnce(FakeClient):
    """Someone edits the route (outside its rules) between our read and our first write."""

    edited = False

    def request(self, method, path, body=None, query=None, content_type="application/json", ok_missing=False):
        if method == "PUT" and not (query or {}).get("dryRun") and not self.edited:
            self.edited = True
            self._save(path, dict(self.store[path], spec=dict(self.store[path]["spec"], hostnames=["new.example"])))
        return super().request(method, path, body=body, query=query, content_type=content_type,
                               ok_missing=ok_missing)


def test_a_context_without_the_gateway_api_is_told_what_to_install():
    client = FakeClient()
    with pytest.raises(SlipwayError, match="does not serve gateway.networking.k8s.io/v1 HTTPRoute") as failure:
        routing.route_resource(client, Options(context="local"))
    assert "install the Gateway API standard CRDs" in failure.value.details["hint"]
    assert client.writes == 0


def test_the_route_write_reads_a_concurrent_edit_again_instead_of_overwriting_it():
    client = EditedOnce()
    client._save(PATH, route(rule(ref("web"))))
    step = routing.RouteStep(client, Options(context="local"), RESOURCE, ROUTE,
                             desired=lambda live: rt.started_route(live, "web", CANARIES, 10, None, ROUTE))
    assert step.assess().changed and client.writes == 0
    assert step.write() is True
    written = client.store[PATH]
    assert written["spec"]["hostnames"] == ["new.example"]  # the other writer's edit survived
    assert weights(written) == [("web", 90), ("web-canary", 10)]
    assert [m for m, _p, q in client.calls if m == "PUT" and not (q or {}).get("dryRun")] == ["PUT", "PUT"]
    assert step.write() is False  # already there: no write


def test_the_restore_hands_the_fields_back_and_a_missing_saved_state_is_refused():
    client = RouteServer()
    started = rt.started_route(route(rule(ref("web"))), "web", CANARIES, 10, None, ROUTE)
    started["metadata"]["managedFields"] = [{"manager": "slipway"}, {"manager": rt.ROUTE_MANAGER}]
    client._save(PATH, started)
    patches = []
    client.patch = lambda path, body, query: patches.append(body) or {}
    step = routing.RouteStep(client, Options(context="local"), RESOURCE, ROUTE, desired=lambda live: rt.restored_route(
        live, "web"), restore=True, canary_services={"web-canary"})
    assert step.write() is True
    assert client.store[PATH]["spec"]["rules"] == [rule(ref("web"))]
    assert patches == [{"metadata": {"resourceVersion": client.store[PATH]["metadata"]["resourceVersion"],
                                     "managedFields": [{"manager": "slipway"}]}}]
    lost = rt.started_route(route(rule(ref("web"))), "web", CANARIES, 10, None, ROUTE)
    lost["metadata"]["annotations"].pop(rt.ROUTE_ANNOTATION)
    client._save(PATH, lost)
    with pytest.raises(SlipwayError, match="still sends traffic to web-canary but carries no saved rules"):
        step.assess()
    del client.store[PATH]
    assert step.assess().changed is False  # the route is gone: nothing sends traffic to the canary


def test_a_refused_dry_run_names_the_route_and_writes_nothing():
    class Forbidden(FakeClient):
        def request(self, method, path, body=None, query=None, content_type="application/json", ok_missing=False):
            if method == "PUT":
                self._fail(method, path, 403, "Forbidden", 'httproutes "shop" is forbidden')
            return super().request(method, path, body=body, query=query, content_type=content_type,
                                   ok_missing=ok_missing)

    client = Forbidden()
    client._save(PATH, route(rule(ref("web"))))
    step = routing.RouteStep(client, Options(context="local"), RESOURCE, ROUTE,
                             desired=lambda live: rt.started_route(live, "web", CANARIES, 10, None, ROUTE))
    with pytest.raises(SlipwayError, match=r"HTTPRoute shop/shop: the API server refused the canary's change to it "
                                           r"in a server-side dry-run; nothing was written: .*forbidden") as refused:
        step.assess().predict()
    assert refused.value.details["status"] == 403 and "RBAC" in refused.value.details["hint"]
    assert client.writes == 0
