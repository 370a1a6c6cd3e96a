# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Network flows in slipway.yml: validation, the NetworkPolicies enforce delivers, and what audit lists."""

from __future__ import annotations

import re

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._security.network import (
    network_baseline,
    network_mode,
    peers_config,
    stamp_pods,
    system_flows,
    with_network_policies,
)

BACKEND = {"namespace": "shop", "depends_on": [], "health": {"path": "/healthz", "port": 8080},
           "network": {"ingress": [{"from": "frontend", "ports": ["http"]}, {"from": "kube-api", "ports": [8080]}]}}
FRONTEND = {"namespace": "shop", "depends_on": ["backend"],
            "network": {"ingress": [{"from": "cidr:10.0.0.0/8", "ports": [8080]}]}}
WORKER = {"namespace": "jobs", "depends_on": ["backend"]}
PEERS = {"kube_api_cidrs": ["192.0.2.10/32"]}


def plan_for(mode, descriptions, others=None, peers=None):
    everything = dict(descriptions, **(others or {}))

    def read(name):
        if name not in everything:
            raise SlipwayError(f"no system {name}")
        return everything[name]

    return network_baseline(mode, PEERS if peers is None else peers, descriptions, read)


def by_name(policies):
    return {p["metadata"]["name"]: p for p in policies}


@pytest.mark.parametrize("value, mode", [(None, "off"), (False, "off"), ("off", "off"), ("Audit", "audit"),
                                         ("enforce", "enforce")])
def test_mode_reads_yaml_off_as_off(value, mode):
    assert network_mode(value) == mode


def test_unknown_mode_names_the_choices():
    with pytest.raises(SlipwayError, match="off, audit, enforce"):
        network_mode("strict")


@pytest.mark.parametrize("network, message", [
    ("open", "must be a mapping"),
    ({"ingres": []}, "unknown keys \\['ingres'\\]"),
    ({"ingress": [{"to": "backend"}]}, "use from and ports \\('from' in ingress\\)"),
    ({"ingress": [{"from": "dns"}]}, "'from: dns' means nothing"),
    ({"ingress": [{"from": "Front_End"}]}, "none of: a system name"),
    ({"egress": [{"to": "cidr:10.0.0.1/8"}]}, "did you mean 10.0.0.0/8"),
    ({"egress": [{"to": "cidr:nowhere"}]}, "address/prefix"),
    ({"egress": [{"to": "namespace:Bad_NS"}]}, "not a namespace name"),
    ({"egress": [{"to": "backend", "ports": [0]}]}, "port 0 must be 1-65535"),
    ({"egress": [{"to": "backend", "ports": [{"port": 53, "protocol": "ICMP"}]}]}, "protocol 'ICMP'"),
    ({"egress": [{"to": "backend", "ports": []}]}, "non-empty list"),
    ({"egress": [{}]}, "'to' is required"),
])
def test_invalid_declarations_say_how_to_fix(network, message):
    _flows, problems = system_flows("backend", {"namespace": "shop", "network": network})
    assert problems
    assert any(re.search(message, p) for p in problems), problems


def test_every_problem_is_reported_at_once_before_any_write():
    descriptions = {"a": {"namespace": "x", "network": {"ingress": [{"from": "dns"}], "egress": [{"to": "cidr:1"}]}}}
    with pytest.raises(SlipwayError) as caught:
        plan_for("off", descriptions)  # validated even when off
    assert "2 problem(s)" in caught.value.msg
    assert "nothing was written" in caught.value.msg


def test_named_system_without_slipway_yml_is_an_error():
    with pytest.raises(SlipwayError, match="names 'ghost', which has no slipway.yml"):
        plan_for("enforce", {"a": {"namespace": "x", "network": {"egress": [{"to": "ghost"}]}}})


def test_kube_api_needs_the_contexts_addresses():
    with pytest.raises(SlipwayError, match="kube_api_cidrs"):
        plan_for("audit", {"backend": BACKEND, "frontend": FRONTEND}, peers={})


def test_peers_config_rejects_unknown_keys_and_host_bits():
    with pytest.raises(SlipwayError, match="unknown keys"):
        peers_config({"dns": "x"})
    with pytest.raises(SlipwayError, match="did you mean"):
        peers_config({"kube_api_cidrs": ["10.1.2.3/8"]})


def test_off_generates_nothing_and_leaves_documents_alone():
    rendered = [{"name": "backend", "documents": [{"file": "d.yaml", "index": 0, "content": deployment()}]}]
    plan = plan_for("off", {"backend": BACKEND, "frontend": FRONTEND})
    assert plan.policies == {}
    assert plan.would_block == []
    assert with_network_policies(rendered, plan) is rendered


def test_enforce_default_denies_the_namespace_and_allows_exactly_the_declared_ingress():
    plan = plan_for("enforce", {"backend": BACKEND, "frontend": FRONTEND})
    backend = by_name(plan.policies["backend"])
    assert set(backend) == {"slipway-default-deny-backend", "slipway-backend-ingress"}  # it reaches nothing
    deny = backend["slipway-default-deny-backend"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []}
    ingress = backend["slipway-backend-ingress"]["spec"]
    assert ingress["podSelector"] == {"matchLabels": {"slipway.io/system": "backend"}}
    assert ingress["policyTypes"] == ["Ingress"]
    assert ingress["ingress"] == [
        {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}},
                   "podSelector": {"matchLabels": {"slipway.io/system": "frontend"}}}],
         "ports": [{"port": "http", "protocol": "TCP"}]},
        {"from": [{"ipBlock": {"cidr": "192.0.2.10/32"}}], "ports": [{"port": 8080, "protocol": "TCP"}]},
    ]


def test_a_dependency_is_reached_on_the_ports_it_admits_plus_dns():
    plan = plan_for("enforce", {"backend": BACKEND, "frontend": FRONTEND})
    egress = by_name(plan.policies["frontend"])["slipway-frontend-egress"]["spec"]
    assert egress["policyTypes"] == ["Egress"]
    assert egress["egress"] == [
        {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}},
                 "podSelector": {"matchLabels": {"slipway.io/system": "backend"}}}],
         "ports": [{"port": "http", "protocol": "TCP"}]},
        {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                 "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
         "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
    ]


def test_policies_do_not_depend_on_which_systems_are_delivered_together():
    together = plan_for("enforce", {"backend": BACKEND, "frontend": FRONTEND})
    alone = plan_for("enforce", {"frontend": FRONTEND}, others={"backend": BACKEND})
    assert alone.policies["frontend"] == together.policies["frontend"]


def test_explicit_egress_ports_win_and_named_peers_translate():
    description = {"namespace": "jobs", "network": {"egress": [
        {"to": "backend", "ports": [9000]}, {"to": "namespace:monitoring"},
        {"to": "cidr:203.0.113.0/24", "ports": [443]}, {"to": "kube-api"}]}}
    plan = plan_for("enforce", {"worker": description}, others={"backend": BACKEND})
    rules = by_name(plan.policies["worker"])["slipway-worker-egress"]["spec"]["egress"]
    assert rules[0]["ports"] == [{"port": 9000, "protocol": "TCP"}]
    assert rules[1] == {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]}
    assert rules[2] == {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
    assert rules[3] == {"to": [{"ipBlock": {"cidr": "192.0.2.10/32"}}]}
    assert rules[4]["ports"][0] == {"port": 53, "protocol": "UDP"}  # a system reached: DNS comes with it


def test_a_dependency_that_does_not_admit_gets_no_egress_and_is_listed():
    plan = plan_for("audit", {"backend": BACKEND, "worker": WORKER}, others={"frontend": FRONTEND})
    assert plan.policies == {}  # audit writes nothing
    assert any(line.startswith("worker -> backend: worker depends on it, but backend does not admit it")
               and "add '- from: worker'" in line for line in plan.would_block), plan.would_block
    enforced = plan_for("enforce", {"backend": BACKEND, "worker": WORKER}, others={"frontend": FRONTEND})
    egress = by_name(enforced.policies["worker"])["slipway-worker-egress"]["spec"]["egress"]
    assert [rule["to"][0].get("podSelector") for rule in egress] == [{"matchLabels": {"k8s-app": "kube-dns"}}]


def test_audit_lists_undeclared_systems_health_gates_and_one_sided_flows():
    silent = {"namespace": "shop", "health": {"path": "/healthz", "port": 80}}
    one_sided = {"namespace": "shop", "network": {"ingress": [{"from": "silent"}]}}
    plan = plan_for("audit", {"silent": silent, "target": one_sided})
    assert any(line.startswith("silent: declares no network") for line in plan.would_block)
    assert any(line.startswith("kube-api -> silent: its HTTP health gate") for line in plan.would_block)
    assert any(line.startswith("silent -> target: target admits silent, which neither depends on it")
               for line in plan.would_block)
    assert plan.report()["mode"] == "audit"


def test_a_fully_declared_pair_blocks_nothing():
    plan = plan_for("audit", {"backend": BACKEND, "frontend": FRONTEND})
    assert plan.would_block == []


def deployment(labels=None):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "backend"},
            "spec": {"template": {"metadata": {"labels": dict(labels or {"app": "backend"})}, "spec": {}}}}


def test_enforce_stamps_every_pod_template_and_adds_the_policies_as_documents():
    cronjob = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
               "spec": {"jobTemplate": {"spec": {"template": {"spec": {}}}}}}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    listed = {"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Pod",
                                                             "metadata": {"name": "p"}}]}
    rendered = [{"name": "backend", "documents": [
        {"file": "d.yaml", "index": i, "content": c} for i, c in enumerate([deployment(), cronjob, config, listed])]}]
    plan = plan_for("enforce", {"backend": BACKEND}, others={"frontend": FRONTEND})
    out = with_network_policies(rendered, plan)
    documents = out[0]["documents"]
    assert documents[0]["content"]["spec"]["template"]["metadata"]["labels"] == {
        "app": "backend", "slipway.io/system": "backend"}
    assert documents[1]["content"]["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"] == {
        "slipway.io/system": "backend"}
    assert "labels" not in documents[2]["content"]["metadata"]
    assert documents[3]["content"]["items"][0]["metadata"]["labels"] == {"slipway.io/system": "backend"}
    generated = [d["content"]["metadata"]["name"] for d in documents[4:]]
    assert generated == ["slipway-default-deny-backend", "slipway-backend-ingress"]
    assert "slipway.io/system" not in rendered[0]["documents"][0]["content"]["spec"]["template"]["metadata"]["labels"]


def test_a_pod_label_that_disagrees_is_refused():
    problems = stamp_pods("backend", [{"file": "d.yaml", "content": deployment({"slipway.io/system": "other"})}])
    assert problems == ["system backend, d.yaml: the pod label slipway.io/system is Slipway's under network_policy; "
                        "remove it from the manifest"]
