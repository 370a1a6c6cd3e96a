"""network_policy: kube-router's firewall running with its own read-only identity and hooked into FORWARD."""

from __future__ import annotations


def test_kube_router_runs_now_and_at_boot(host):
    service = host.service("kube-router")
    assert service.is_running and service.is_enabled


def test_its_credentials_are_readable_by_root_only(host):
    for path in ("/etc/kubernetes/network-policy.kubeconfig", "/etc/kubernetes/pki/network-policy.key"):
        file = host.file(path)
        assert (file.user, file.mode) == ("root", 0o600), path


def test_its_identity_may_read_network_policies_and_not_write_anything(host):
    identity = "--kubeconfig=/etc/kubernetes/network-policy.kubeconfig"
    assert host.check_output(f"/usr/local/bin/kubectl {identity} auth can-i list networkpolicies -A") == "yes"
    refused = host.run(f"/usr/local/bin/kubectl {identity} auth can-i create pods -A")
    assert refused.stdout.strip() == "no", refused.stdout


def test_the_pods_traffic_passes_its_chain(host):
    rules = host.check_output("iptables -S FORWARD")
    assert "KUBE-ROUTER-FORWARD" in rules, rules
