"""kube_proxy: iptables mode with its own identity, the Services programmed (the API's ClusterIP)."""

from __future__ import annotations

LIVEZ = "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:10256/livez').status)\""


def test_kube_proxy_runs_now_and_at_boot_and_is_live(host):
    service = host.service("kube-proxy")
    assert service.is_running and service.is_enabled
    assert host.socket("tcp://127.0.0.1:10256").is_listening
    assert host.check_output(LIVEZ) == "200"


def test_its_credentials_are_readable_by_root_only(host):
    for path in ("/etc/kubernetes/kube-proxy.kubeconfig", "/etc/kubernetes/pki/kube-proxy.key"):
        file = host.file(path)
        assert (file.user, file.mode) == ("root", 0o600), path


def test_the_kubernetes_service_is_programmed_in_iptables(host):
    rules = host.check_output("iptables -t nat -S KUBE-SERVICES")
    assert "10.96.0.1/32" in rules and "default/kubernetes:https" in rules, rules
