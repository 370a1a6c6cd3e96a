"""node_reset (side_effect.yml, second verify): no cluster unit, binary, file, rule, bridge or route is left."""

from __future__ import annotations

import pytest

UNITS = ["kubelet", "kube-proxy", "kube-router", "slipway-pod-routes", "kube-apiserver", "kube-controller-manager",
         "kube-scheduler", "etcd"]


@pytest.mark.parametrize("unit", UNITS)
def test_no_cluster_unit_is_left(host, unit):
    assert not host.file(f"/etc/systemd/system/{unit}.service").exists
    assert not host.service(unit).is_running


def test_no_binary_certificate_or_state_is_left(host):
    for path in ("/usr/local/bin/kubelet", "/usr/local/bin/etcd", "/usr/local/bin/kube-router",
                 "/etc/kubernetes", "/etc/etcd", "/var/cache/slipway/artifacts", "/etc/cni/net.d/10-slipway.conflist"):
        assert not host.file(path).exists, path
    for folder in ("/var/lib/kubelet", "/var/lib/etcd"):
        if host.file(folder).exists:
            assert host.check_output(f"ls -A {folder}") == "", folder


def test_no_pod_container_rule_bridge_or_route_is_left(host):
    assert host.run("ctr -n k8s.io containers ls -q").stdout.strip() == ""
    rules = host.check_output("iptables-save")
    assert "KUBE-" not in rules and "slipway-pod-network" not in rules, rules
    assert host.run("ip link show cni0").rc != 0
    assert host.check_output("ip route show proto 77") == ""


def test_nothing_listens_on_the_clusters_ports(host):
    for port in (6443, 2379, 10250, 10256):
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening, port
