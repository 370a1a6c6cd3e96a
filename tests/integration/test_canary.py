"""Canary and A/B against the real API server (issue 6): replica split, promote and abort without leftovers.

Routed canaries (a Gateway API HTTPRoute) run on the stack's Gateway API CRDs with no gateway behind them: those
tests prove the objects (rules, weights, the header rule, the canary Service and its endpoints, what promote and
abort leave), not the traffic a gateway would send.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from fixtures.deliver.support import (
    ROOT,
    Journal,
    SlipwayError,
    client_for,
    deployment,
    grant_namespace,
    live,
    resource_versions,
    roll_back,
    run,
    service,
    system,
    unique,
)

assert ROOT  # fixtures.deliver.support has put the collection on sys.path
from ansible_collections.slipway.platform.plugins.module_utils._release.canary import canary  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._release.canary_route import (  # noqa: E402
    ROUTE_ANNOTATION,
    ROUTE_MANAGER,
)
from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Options  # noqa: E402

STABLE, NEW = "127.0.0.1:5001/web:1", "127.0.0.1:5001/web:2"
HEADER = {"name": "X-Canary", "value": "always"}


def step(stack_dir, context, action, route=None, **kwargs):
    options = {k: kwargs.pop(k) for k in ("check_mode", "diff") if k in kwargs}
    client = client_for(stack_dir)
    try:
        return canary(client, Options(context=context, wait_timeout=180, lock_duration=10, **options), "web",
                      action, route=route, **kwargs)
    finally:
        client.close()


def web(ns, replicas):
    return [system("web", ns, deployment("web", image=STABLE, replicas=replicas), service("web"),
                   images={"web": STABLE})]


def pods_by_image(kubectl, ns, selector="app=web"):
    """Running pods behind the stable Service's selector, counted per image (what the Service balances over)."""
    items = json.loads(kubectl("get", "pods", "-n", ns, "-l", selector, "-o", "json").stdout)["items"]
    counts = {}
    for pod in items:
        if pod["metadata"].get("deletionTimestamp") or pod["status"].get("phase") != "Running":
            continue
        image = pod["spec"]["containers"][0]["image"]
        counts[image] = counts.get(image, 0) + 1
    return counts


def settle(kubectl, ns, expected, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pods_by_image(kubectl, ns)
        if found == expected:
            return found
        time.sleep(0.5)
    raise AssertionError(f"pods never settled on {expected}: {found}")


def leftovers(kubectl, ns):
    found = kubectl("get", "deployments,replicasets,pods,services", "-n", ns, "-l", "slipway.io/track=canary",
                    "-o", "name").stdout.split()
    return found


def journal(stack_dir, context):
    client = client_for(stack_dir, "admin")
    try:
        return Journal(client, context).records()
    finally:
        client.close()


@pytest.mark.parametrize(("stable", "weight", "canary_replicas", "actual"),
                         [(9, 10, 1, 10.0), (3, 25, 1, 25.0), (2, 50, 2, 50.0)])
def test_canary_weight_gives_the_expected_replica_split(stack_dir, ns, context, kubectl, stable, weight,
                                                        canary_replicas, actual):
    run(stack_dir, web(ns, stable), context)
    result = step(stack_dir, context, "start", images={"web": NEW}, weight=weight)
    split = result["canary"]["split"][0]
    assert (split["stable_replicas"], split["canary_replicas"], split["weight"]) == (stable, canary_replicas, actual)
    assert split["services"] == ["web"]  # the stable Service's selector picks the canary's pods
    assert settle(kubectl, ns, {STABLE: stable, NEW: canary_replicas})
    endpoints = json.loads(kubectl("get", "endpoints", "web", "-n", ns, "-o", "json").stdout)
    # the stable Service selects both tracks (ready or not: readiness is the node's business, routing is ours)
    addresses = [a for s in endpoints.get("subsets") or [] for a in (s.get("addresses") or [])
                 + (s.get("notReadyAddresses") or [])]
    assert len(addresses) == stable + canary_replicas
    assert sum(a["targetRef"]["name"].startswith("web-canary-") for a in addresses) == canary_replicas
    assert live(kubectl, "deployment", ns, "web")["spec"]["replicas"] == stable  # stable untouched
    record = journal(stack_dir, context)[-1]
    assert record["action"]["kind"] == "canary" and record["action"]["weight"] == weight
    assert "web-canary" in record["systems"]
    again = step(stack_dir, context, "start", images={"web": NEW}, weight=weight)
    assert again["changed"] is False and again["writes"] == 0


def test_promote_makes_the_canary_stable_and_leaves_nothing_behind(stack_dir, ns, context, kubectl):
    run(stack_dir, web(ns, 3), context)
    step(stack_dir, context, "start", images={"web": NEW}, weight=25)
    result = step(stack_dir, context, "promote", reason="looks good")
    assert result["pruned"] == [f"Deployment {ns}/web-canary"]
    assert live(kubectl, "deployment", ns, "web")["spec"]["template"]["spec"]["containers"][0]["image"] == NEW
    assert settle(kubectl, ns, {NEW: 3})
    deadline = time.monotonic() + 60
    while leftovers(kubectl, ns):
        assert time.monotonic() < deadline, leftovers(kubectl, ns)
        time.sleep(0.5)
    records = journal(stack_dir, context)
    assert [r["action"]["kind"] for r in records[1:]] == ["canary", "canary-promote"]
    assert records[-1]["message"] == "canary of web promoted: looks good"
    assert sorted(records[-1]["systems"]) == ["web"]
    assert records[-1]["systems"]["web"]["images"] == {"web": NEW}
    redelivered = run(stack_dir, [system("web", ns, deployment("web", image=NEW, replicas=3), service("web"),
                                         images={"web": NEW})], context)[0]
    assert redelivered["changed"] is False  # promote landed exactly where a delivery of the new image does


def test_abort_removes_the_canary_and_changes_nothing_else(stack_dir, ns, context, kubectl):
    run(stack_dir, web(ns, 3), context)
    settle(kubectl, ns, {STABLE: 3})
    stable_before = resource_versions(kubectl, ns, "deployments,services")
    step(stack_dir, context, "start", images={"web": NEW}, weight=25)
    predicted = step(stack_dir, context, "abort", check_mode=True)
    assert predicted["changed"] and predicted["pruned"] == [f"Deployment {ns}/web-canary"]
    assert predicted["writes"] == 0 and live(kubectl, "deployment", ns, "web-canary")
    result = step(stack_dir, context, "abort")
    assert result["pruned"] == [f"Deployment {ns}/web-canary"]
    deadline = time.monotonic() + 60
    while leftovers(kubectl, ns):
        assert time.monotonic() < deadline, leftovers(kubectl, ns)
        time.sleep(0.5)
    assert settle(kubectl, ns, {STABLE: 3})
    after = resource_versions(kubectl, ns, "deployments,services")
    # the stable Deployment's spec and the Service were never written (status may move with the pods)
    assert after["Service/web"] == stable_before["Service/web"]
    assert after["Deployment/web"][1] == stable_before["Deployment/web"][1]
    assert result["objects"] == [] and result["summary"]["pruned"] == 1
    records = journal(stack_dir, context)
    assert [r["action"]["kind"] for r in records[1:]] == ["canary", "canary-abort"]
    assert sorted(records[-1]["systems"]) == ["web"]
    with pytest.raises(SlipwayError, match="has no canary"):
        step(stack_dir, context, "abort")


# ----------------------------------------------------------------------------- routed by an HTTPRoute


def httproute(hostnames=("shop.example",)):
    """The system's own route: everything to the stable Service, plus an API path to another backend."""
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "shop"},
            "spec": {"parentRefs": [{"name": "gateway"}], "hostnames": list(hostnames),
                     "rules": [{"backendRefs": [{"name": "web", "port": 80}]},
                               {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                                "backendRefs": [{"name": "api", "port": 80}]}]}}


def routed_web(ns, image=STABLE, route=None):
    return [system("web", ns, deployment("web", image=image, replicas=3), service("web"), route or httproute(),
                   images={"web": image})]


def route_of(kubectl, ns):
    return json.loads(kubectl("get", "httproute", "shop", "-n", ns, "-o", "json", "--show-managed-fields").stdout)


def backends(rule):
    return [(ref["name"], ref["weight"]) for ref in rule["backendRefs"]]


def addresses(kubectl, ns, name):
    """Pods behind a Service, ready or not (readiness is the node's business, selection is ours)."""
    endpoints = json.loads(kubectl("get", "endpoints", name, "-n", ns, "-o", "json").stdout)
    found = [a for s in endpoints.get("subsets") or [] for a in (s.get("addresses") or [])
             + (s.get("notReadyAddresses") or [])]
    return sorted(a["targetRef"]["name"].rsplit("-", 2)[0] for a in found)


def eventually(probe, expected, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_routed_canary_weights_the_route_adds_the_header_rule_and_reweights_exactly(stack_dir, ns, context, kubectl):
    run(stack_dir, routed_web(ns), context)
    before = route_of(kubectl, ns)
    result = step(stack_dir, context, "start", route={"name": "shop", "header": HEADER}, images={"web": NEW},
                  weight=10, reason="try v2")
    rules = route_of(kubectl, ns)["spec"]["rules"]
    assert backends(rules[0]) == [("web", 90), ("web-canary", 10)]
    assert backends(rules[1]) == [("web-canary", 1)]
    assert rules[1]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"},
                                    "headers": [{"type": "Exact", "name": "X-Canary", "value": "always"}]}]
    assert rules[2] == before["spec"]["rules"][1]  # the /api rule sends to another Service: untouched
    assert result["canary"]["route"]["services"] == {"web": "web-canary"}
    split = result["canary"]["split"][0]
    assert (split["stable_replicas"], split["canary_replicas"], split["weight"]) == (3, 1, 10.0)
    assert {"kind": "HTTPRoute", "name": "shop", "action": "update"}.items() <= \
        next(o for o in result["objects"] if o["kind"] == "HTTPRoute").items()
    # the canary pods left the stable Service; only the canary Service selects them
    assert eventually(lambda: addresses(kubectl, ns, "web"), ["web"] * 3) == ["web"] * 3
    assert eventually(lambda: addresses(kubectl, ns, "web-canary"), ["web-canary"]) == ["web-canary"]
    assert live(kubectl, "service", ns, "web-canary")["spec"]["selector"] == {"app": "web-canary",
                                                                              "slipway.io/track": "canary"}
    record = journal(stack_dir, context)[-1]
    assert record["action"]["kind"] == "canary" and record["action"]["route"]["weight"] == 10
    assert record["systems"]["web-canary"]["route"] == {"name": "shop", "namespace": ns, "weight": 10,
                                                        "header": HEADER, "services": {"web": "web-canary"}}
    # a re-weight that keeps the canary's replicas is still a step: only the route changes
    again = step(stack_dir, context, "start", route={"name": "shop", "header": HEADER}, images={"web": NEW},
                 weight=30)
    assert again["changed"] and again["recorded"]
    assert [o["kind"] for o in again["objects"]] == ["HTTPRoute"]
    rules = route_of(kubectl, ns)["spec"]["rules"]
    assert backends(rules[0]) == [("web", 70), ("web-canary", 30)] and len(rules) == 3
    same = step(stack_dir, context, "start", route={"name": "shop", "header": HEADER}, images={"web": NEW},
                weight=30)
    assert same["changed"] is False and same["writes"] == 0 and same["recorded"] is False


def test_check_mode_predicts_the_route_and_writes_nothing(stack_dir, ns, context, kubectl):
    run(stack_dir, routed_web(ns), context)
    before = resource_versions(kubectl, ns, "deployments,services,httproutes")
    records = len(journal(stack_dir, context))
    predicted = step(stack_dir, context, "start", route={"name": "shop"}, images={"web": NEW}, weight=20,
                     check_mode=True, diff=True)
    assert predicted["changed"] and predicted["writes"] == 0
    route_row = next(o for o in predicted["objects"] if o["kind"] == "HTTPRoute")
    assert ".spec.rules[0].backendRefs" in route_row["fields"]
    route_diff = next(d for d in predicted["diff"] if d["before_header"].startswith("HTTPRoute"))
    assert [r["weight"] for r in route_diff["after"]["spec"]["rules"][0]["backendRefs"]] == [80, 20]
    assert resource_versions(kubectl, ns, "deployments,services,httproutes") == before
    assert len(journal(stack_dir, context)) == records
    step(stack_dir, context, "start", route={"name": "shop"}, images={"web": NEW}, weight=20)
    started = resource_versions(kubectl, ns, "deployments,services,httproutes")
    for action in ("abort", "promote"):
        predicted = step(stack_dir, context, action, check_mode=True)
        assert predicted["changed"] and predicted["writes"] == 0
        assert "HTTPRoute" in [o["kind"] for o in predicted["objects"]]
        assert sorted(predicted["pruned"]) == [f"Deployment {ns}/web-canary", f"Service {ns}/web-canary"]
    assert resource_versions(kubectl, ns, "deployments,services,httproutes") == started


def test_promote_points_the_route_back_at_stable_and_leaves_nothing_behind(stack_dir, ns, context, kubectl):
    run(stack_dir, routed_web(ns), context)
    before = route_of(kubectl, ns)
    step(stack_dir, context, "start", route={"name": "shop", "header": HEADER}, images={"web": NEW}, weight=25)
    result = step(stack_dir, context, "promote", reason="looks good")
    assert sorted(result["pruned"]) == [f"Deployment {ns}/web-canary", f"Service {ns}/web-canary"]
    after = route_of(kubectl, ns)
    assert after["spec"] == before["spec"]  # 100 % to the stable Service, which now runs the canary's image
    assert after["metadata"].get("annotations") == before["metadata"].get("annotations")
    assert ROUTE_MANAGER not in [m["manager"] for m in after["metadata"]["managedFields"]]
    assert live(kubectl, "deployment", ns, "web")["spec"]["template"]["spec"]["containers"][0]["image"] == NEW
    assert eventually(lambda: leftovers(kubectl, ns), []) == []
    assert eventually(lambda: addresses(kubectl, ns, "web"), ["web"] * 3) == ["web"] * 3
    records = journal(stack_dir, context)
    assert [r["action"]["kind"] for r in records[1:]] == ["canary", "canary-promote"]
    assert records[-1]["action"]["route"] == {"name": "shop", "namespace": ns, "restored": True}
    assert sorted(records[-1]["systems"]) == ["web"]
    redelivered = run(stack_dir, routed_web(ns, image=NEW), context)[0]
    assert redelivered["changed"] is False  # promote landed exactly where a delivery of the new image does


def test_abort_restores_the_route_exactly_and_hands_its_fields_back(stack_dir, ns, context, kubectl):
    run(stack_dir, routed_web(ns), context)
    before = route_of(kubectl, ns)
    stable_before = resource_versions(kubectl, ns, "deployments,services")
    step(stack_dir, context, "start", route={"name": "shop", "header": HEADER}, images={"web": NEW}, weight=50)
    assert ROUTE_ANNOTATION in route_of(kubectl, ns)["metadata"]["annotations"]
    result = step(stack_dir, context, "abort", reason="errors")
    assert sorted(result["pruned"]) == [f"Deployment {ns}/web-canary", f"Service {ns}/web-canary"]
    assert [o["kind"] for o in result["objects"]] == ["HTTPRoute"]
    after = route_of(kubectl, ns)
    assert after["spec"] == before["spec"]
    assert after["metadata"].get("annotations") == before["metadata"].get("annotations")
    assert ROUTE_MANAGER not in [m["manager"] for m in after["metadata"]["managedFields"]]
    assert eventually(lambda: leftovers(kubectl, ns), []) == []
    stable_after = resource_versions(kubectl, ns, "deployments,services")
    assert stable_after["Service/web"] == stable_before["Service/web"]  # the stable objects were never written
    assert stable_after["Deployment/web"][1] == stable_before["Deployment/web"][1]
    assert [r["action"]["kind"] for r in journal(stack_dir, context)[1:]] == ["canary", "canary-abort"]
    # the restored rules belong to the system's delivery again: a changed route applies with no conflict
    changed = httproute(hostnames=("shop.example", "www.shop.example"))
    changed["spec"]["rules"][1]["backendRefs"][0]["port"] = 8080
    redelivered = run(stack_dir, routed_web(ns, route=changed), context)[0]
    assert redelivered["conflicts_respected"] == []
    assert route_of(kubectl, ns)["spec"]["rules"][1]["backendRefs"][0]["port"] == 8080
    with pytest.raises(SlipwayError, match="has no canary"):
        step(stack_dir, context, "abort")


def test_a_rollback_past_a_routed_canary_restores_the_route_and_retiring_it_is_refused(
        stack_dir, ns, context, kubectl):
    run(stack_dir, routed_web(ns), context)
    before = route_of(kubectl, ns)
    step(stack_dir, context, "start", route={"name": "shop", "header": HEADER}, images={"web": NEW}, weight=40)
    started = resource_versions(kubectl, ns, "deployments,services,httproutes")
    # a delivery that would retire the canary refuses before any write: its route would send traffic nowhere
    with pytest.raises(SlipwayError, match="cannot retire web-canary: a canary routed through an HTTPRoute"):
        run(stack_dir, routed_web(ns), context, retire_absent=True)
    assert resource_versions(kubectl, ns, "deployments,services,httproutes") == started
    # a whole-context rollback to the release before the canary puts the route back, then prunes the canary
    result = roll_back(stack_dir, context, revision=1, reason="back to before the canary")
    assert sorted(result["pruned"]) == [f"Deployment {ns}/web-canary", f"Service {ns}/web-canary"]
    after = route_of(kubectl, ns)
    assert after["spec"] == before["spec"]
    assert after["metadata"].get("annotations") == before["metadata"].get("annotations")
    assert ROUTE_MANAGER not in [m["manager"] for m in after["metadata"]["managedFields"]]
    assert eventually(lambda: leftovers(kubectl, ns), []) == []
    record = journal(stack_dir, context)[-1]
    assert record["action"]["kind"] == "rollback" and record["action"]["routes_restored"] == [f"{ns}/shop"]
    assert sorted(record["systems"]) == ["web"]
    assert run(stack_dir, routed_web(ns), context)[0]["changed"] is False  # exactly release 1 again


def test_a_missing_route_or_one_without_the_stable_service_fails_before_any_write(stack_dir, ns, context, kubectl):
    run(stack_dir, routed_web(ns), context)
    before = resource_versions(kubectl, ns, "deployments,services,httproutes")
    records = len(journal(stack_dir, context))
    lock = ("get", "lease", f"slipway-lock-{context}", "-n", "slipway-system", "-o",
            "jsonpath={.metadata.resourceVersion}")
    lock_before = kubectl(*lock).stdout
    with pytest.raises(SlipwayError, match=rf"HTTPRoute {ns}/ghost does not exist in context {context}; "
                                           "nothing was written") as missing:
        step(stack_dir, context, "start", route={"name": "ghost"}, images={"web": NEW}, weight=10)
    assert "create the route" in missing.value.details["hint"]
    other = httproute()
    other["metadata"]["name"] = "elsewhere"
    other["spec"]["rules"] = [{"backendRefs": [{"name": "api", "port": 80}]}]
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(other))
    before["HTTPRoute/elsewhere"] = resource_versions(kubectl, ns, "httproutes")["HTTPRoute/elsewhere"]
    with pytest.raises(SlipwayError, match="sends no traffic to a stable Service of system web"):
        step(stack_dir, context, "start", route={"name": "elsewhere"}, images={"web": NEW}, weight=10)
    assert resource_versions(kubectl, ns, "deployments,services,httproutes") == before
    assert len(journal(stack_dir, context)) == records
    assert kubectl(*lock).stdout == lock_before  # not even the lock was taken
    # a replica-split canary cannot be turned into a routed one in place
    step(stack_dir, context, "start", images={"web": NEW}, weight=25)
    with pytest.raises(SlipwayError, match="splits the traffic by replicas; .* abort it first"):
        step(stack_dir, context, "start", route={"name": "shop"}, images={"web": NEW}, weight=25)


def canary_playbook(context, *extra):
    """playbooks/canary.yml on the local inventory, pointed at the test context (deployer identity)."""
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "inventories/local",
                             "playbooks/canary.yml", "-e", f"slipway_context={context}",
                             "-e", "slipway_canary_system=web", *extra],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return result.stdout


def test_the_playbook_takes_the_route_the_context_declares_and_promote_restores_it(stack_dir, ns, context, kubectl):
    run(stack_dir, routed_web(ns), context)
    before = route_of(kubectl, ns)
    declared = json.dumps({"slipway_canary_routes": {"web": {"name": "shop", "header": HEADER}}})
    canary_playbook(context, "-e", json.dumps({"slipway_canary_images": {"web": NEW}}),
                    "-e", "slipway_canary_weight=15", "-e", declared)
    rules = route_of(kubectl, ns)["spec"]["rules"]
    assert backends(rules[0]) == [("web", 85), ("web-canary", 15)] and backends(rules[1]) == [("web-canary", 1)]
    # the declared route stays in the context's variables; promote does not take it, it uses the recorded one
    canary_playbook(context, "-e", "slipway_canary_action=promote", "-e", declared)
    assert route_of(kubectl, ns)["spec"] == before["spec"]
    assert [r["action"]["kind"] for r in journal(stack_dir, context)[1:]] == ["canary", "canary-promote"]


def test_a_route_in_a_shared_gateway_namespace_is_weighted_and_restored(stack_dir, ns, context, kubectl):
    gateway_ns = grant_namespace(kubectl, unique("t-gateway"))
    try:
        run(stack_dir, web(ns, 3), context)
        shared = httproute()
        shared["metadata"]["namespace"] = gateway_ns
        shared["spec"]["rules"] = [{"backendRefs": [{"name": "web", "namespace": ns, "port": 80}]}]
        kubectl("apply", "-f", "-", input=json.dumps(shared))
        before = json.loads(kubectl("get", "httproute", "shop", "-n", gateway_ns, "-o", "json").stdout)
        step(stack_dir, context, "start", route={"name": "shop", "namespace": gateway_ns}, images={"web": NEW},
             weight=10)
        refs = json.loads(kubectl("get", "httproute", "shop", "-n", gateway_ns, "-o", "json").stdout)[
            "spec"]["rules"][0]["backendRefs"]
        assert [(r["name"], r["namespace"], r["weight"]) for r in refs] == [("web", ns, 90), ("web-canary", ns, 10)]
        assert live(kubectl, "service", ns, "web-canary")  # the canary Service lives beside the stable one
        step(stack_dir, context, "abort")
        after = json.loads(kubectl("get", "httproute", "shop", "-n", gateway_ns, "-o", "json").stdout)
        assert after["spec"] == before["spec"] and after["metadata"].get("annotations") == \
            before["metadata"].get("annotations")
    finally:
        kubectl("delete", "namespace", gateway_ns, "--wait=false", check=False)
