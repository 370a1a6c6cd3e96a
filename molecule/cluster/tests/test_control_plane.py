"""control_plane: the API server, controller-manager and scheduler as systemd units, locked down (anonymous off,
Node+RBAC, NodeRestriction, audit log, Secrets encrypted at rest)."""

from __future__ import annotations

import uuid

from conftest import anonymous_status

# The first bytes of a key's value as etcd stores it, read with the etcd member's client certificate.
ETCD_VALUE = """python3 - <<'PY'
import base64, json, ssl, urllib.request
context = ssl.create_default_context(cafile='/etc/etcd/pki/ca.crt')
context.load_cert_chain('/etc/etcd/pki/server.crt', '/etc/etcd/pki/server.key')
body = json.dumps({{'key': base64.b64encode(b'{key}').decode()}}).encode()
request = urllib.request.Request('https://127.0.0.1:2379/v3/kv/range', body)
print(base64.b64decode(json.loads(urllib.request.urlopen(request, context=context).read())['kvs'][0]['value'])[:60])
PY"""


def test_the_three_units_run_now_and_at_boot(host):
    for unit in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        service = host.service(unit)
        assert service.is_running and service.is_enabled, unit


def test_the_api_server_listens_everywhere_and_the_others_on_loopback_only(host):
    assert host.socket("tcp://0.0.0.0:6443").is_listening or host.socket("tcp://:::6443").is_listening
    for port in (10257, 10259):
        assert host.socket(f"tcp://127.0.0.1:{port}").is_listening, port
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening, port


def test_the_api_server_is_locked_down(host):
    command = host.check_output("systemctl show -p ExecStart --value kube-apiserver")
    for flag in ("--anonymous-auth=false", "--authorization-mode=Node,RBAC",
                 "--enable-admission-plugins=NodeRestriction", "--encryption-provider-config=",
                 "--audit-policy-file=", "--audit-log-path=", "--enable-bootstrap-token-auth=true"):
        assert flag in command, flag
    assert anonymous_status(host, "https://127.0.0.1:6443/api") == "401"


def test_the_encryption_key_is_readable_by_root_only_and_secrets_are_stored_encrypted(host, kubectl):
    config = host.file("/etc/kubernetes/encryption-config.yaml")
    assert (config.user, config.mode) == ("root", 0o600)
    name = f"verify-{uuid.uuid4().hex[:6]}"
    kubectl("-n", "default", "create", "secret", "generic", name, "--from-literal=value=plain-text-marker")
    try:
        stored = host.check_output(ETCD_VALUE.format(key=f"/registry/secrets/default/{name}"))
        assert "k8s:enc:secretbox:v1:" in stored
        assert "plain-text-marker" not in stored
    finally:
        kubectl("-n", "default", "delete", "secret", name)


def test_requests_are_audited(host):
    log = host.file("/var/log/kubernetes/audit.log")
    assert log.exists and log.size > 0
    assert host.file("/var/log/kubernetes").mode == 0o700
