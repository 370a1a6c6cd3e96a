"""cluster_gateway: the Gateway API CRDs, Traefik on the node's own address and a Gateway that is Programmed."""

from __future__ import annotations

import json

from conftest import anonymous_status

PORT = 18090  # slipway_cluster_gateway_port


def test_the_gateway_api_crds_are_established(kubectl):
    for kind in ("gatewayclasses", "gateways", "httproutes"):
        crd = json.loads(kubectl("get", "crd", f"{kind}.gateway.networking.k8s.io", "-o", "json"))
        established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}.get("Established")
        assert established == "True", kind


def test_traefik_runs_on_the_node_and_the_gateway_is_programmed(kubectl):
    daemonset = json.loads(kubectl("-n", "slipway-gateway", "get", "daemonset", "slipway", "-o", "json"))
    assert daemonset["status"]["numberReady"] == daemonset["status"]["desiredNumberScheduled"] == 1
    gateway = json.loads(kubectl("-n", "slipway-gateway", "get", "gateway", "slipway", "-o", "json"))
    conditions = {c["type"]: c["status"] for c in gateway["status"]["conditions"]}
    assert conditions.get("Programmed") == "True", conditions


def test_it_answers_on_the_nodes_address_and_routes_nothing_it_was_not_given(host, node_ip):
    # No HTTPRoute exists here: Traefik itself answers 404 for a host name nobody routed.
    status = anonymous_status(host, f"http://{node_ip}:{PORT}/", host_header="nobody.local")
    assert status == "404", status
