"""kubelet: joined by TLS bootstrap (its client certificate from the controller-manager, its serving certificate
from the cluster CA), anonymous requests refused, the node Ready."""

from __future__ import annotations

from conftest import anonymous_status, certificate_field, certificate_names

KUBELET_PKI = "/var/lib/kubelet/pki"
HEALTHZ = "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:10248/healthz').read().decode())\""


def test_the_kubelet_runs_now_and_at_boot(host, node_ip):
    service = host.service("kubelet")
    assert service.is_running and service.is_enabled
    # The API on the node's address only (the API server reaches it there), health on loopback only.
    assert host.socket(f"tcp://{node_ip}:10250").is_listening
    assert host.socket("tcp://127.0.0.1:10248").is_listening
    assert host.check_output(HEALTHZ) == "ok"


def test_the_node_is_ready(node_object):
    ready = next(c for c in node_object["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ready


def test_the_bootstrap_credentials_and_the_client_key_are_readable_by_root_only(host):
    for path in ("/etc/kubernetes/bootstrap-kubelet.kubeconfig", f"{KUBELET_PKI}/kubelet-client-current.pem",
                 f"{KUBELET_PKI}/kubelet-server-current.pem"):
        file = host.file(path)
        assert (file.user, file.mode) == ("root", 0o600), path


def test_the_client_certificate_is_the_nodes_own_identity(host, node):
    subject = certificate_field(host, f"{KUBELET_PKI}/kubelet-client-current.pem", "-subject")
    assert subject == f"CN=system:node:{node},O=system:nodes"


def test_the_serving_certificate_comes_from_the_cluster_ca_with_the_nodes_names(host, node, node_ip):
    serving = f"{KUBELET_PKI}/kubelet-server-current.pem"
    assert host.run(f"openssl verify -CAfile /etc/kubernetes/pki/ca.crt {serving}").rc == 0
    assert {f"DNS:{node}", f"IP Address:{node_ip}"} <= certificate_names(host, serving)


def test_anonymous_requests_are_refused(host, node_ip):
    assert anonymous_status(host, f"https://{node_ip}:10250/pods") == "401"
