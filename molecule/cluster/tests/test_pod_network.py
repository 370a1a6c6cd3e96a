"""pod_network: the CNI bridge on the node's podCIDR, the route keeper running, and a pod really started by the
kubelet through containerd with an address from that range."""

from __future__ import annotations

import ipaddress
import json
import uuid

import pytest

SANDBOX = "slipway.local/pause:1"  # imported by container_runtime: runs with nothing pulled
BRIDGE = "cni0"  # slipway_pod_network_bridge


@pytest.fixture(scope="module")
def pod_cidr(node_object) -> str:
    return node_object["spec"]["podCIDR"]


def test_the_cni_configuration_uses_the_nodes_pod_cidr(host, pod_cidr):
    conflist = json.loads(host.file("/etc/cni/net.d/10-slipway.conflist").content_string)
    assert conflist["plugins"][0]["ipam"]["ranges"] == [[{"subnet": pod_cidr}]]


def test_the_route_keeper_runs_now_and_at_boot(host):
    service = host.service("slipway-pod-routes")
    assert service.is_running and service.is_enabled


def test_a_pod_runs_with_an_address_from_the_nodes_pod_cidr(host, kubectl, node, pod_cidr):
    name = f"verify-{uuid.uuid4().hex[:6]}"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
           "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "pause", "image": SANDBOX, "imagePullPolicy": "Never"}]}}
    host.check_output(f"echo '{json.dumps(pod)}' | /usr/local/bin/kubectl "
                      "--kubeconfig=/etc/kubernetes/admin.kubeconfig apply -f -")
    try:
        kubectl("-n", "default", "wait", f"pod/{name}", "--for=condition=Ready", "--timeout=120s")
        address = kubectl("-n", "default", "get", "pod", name, "-o", "jsonpath={.status.podIP}")
        assert ipaddress.ip_address(address) in ipaddress.ip_network(pod_cidr), (address, pod_cidr)
        # The node reaches its own pods over the CNI bridge, not through its default route.
        route = host.check_output(f"ip route get {address}")
        assert f"dev {BRIDGE}" in route, route
    finally:
        kubectl("-n", "default", "delete", "pod", name, "--wait=false")
