"""Canary and A/B against the real API server (issue 6): replica split, promote and abort without leftovers."""

from __future__ import annotations

import json
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
    run,
    service,
    system,
    unique,
)

assert ROOT  # fixtures.deliver.support has put the collection on sys.path
from ansible_collections.slipway.platform.plugins.module_utils._release.canary import canary  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Options  # noqa: E402

STABLE, NEW = "127.0.0.1:5001/web:1", "127.0.0.1:5001/web:2"


@pytest.fixture
def ns(kubectl):
    namespace = grant_namespace(kubectl, unique("t-canary"))
    yield namespace
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture
def context(kubectl):
    name = unique("t")
    yield name
    # forget the context: journal records, snapshot companions (ConfigMaps and Secrets) and the lock
    for selector in (f"slipway.io/context={name}", f"slipway.io/snapshot-of={name}"):
        kubectl("delete", "configmaps,secrets", "-n", "slipway-system", "-l", selector, check=False)
    kubectl("delete", "lease", f"slipway-lock-{name}", "-n", "slipway-system", "--ignore-not-found", check=False)


def step(stack_dir, context, action, **kwargs):
    options = {k: kwargs.pop(k) for k in ("check_mode", "diff") if k in kwargs}
    client = client_for(stack_dir)
    try:
        return canary(client, Options(context=context, wait_timeout=180, lock_duration=10, **options), "web",
                      action, **kwargs)
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
    found = kubectl("get", "deployments,replicasets,pods", "-n", ns, "-l", "slipway.io/track=canary", "-o",
                    "name").stdout.split()
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
