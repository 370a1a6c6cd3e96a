"""etcd: one member running as its own user, TLS on the client and peer ports, clients without a certificate of
the etcd CA refused."""

from __future__ import annotations

import json

from conftest import private_keys

# A client with the member's certificate asks for its health; one without a certificate is refused in the handshake.
PROBE = """python3 - <<'PY'
import json, ssl, urllib.request
context = ssl.create_default_context(cafile='/etc/etcd/pki/ca.crt')
if {with_certificate}:
    context.load_cert_chain('/etc/etcd/pki/server.crt', '/etc/etcd/pki/server.key')
try:
    body = urllib.request.urlopen('https://127.0.0.1:2379/health', context=context).read().decode()
    print(json.dumps({{'body': body}}))
except Exception as error:
    print(json.dumps({{'error': type(error).__name__ + ': ' + str(error)}}))
PY"""


def test_etcd_runs_now_and_at_boot_as_its_own_user(host):
    service = host.service("etcd")
    assert service.is_running and service.is_enabled
    assert host.check_output("systemctl show -p User --value etcd") == "etcd"
    data = host.file("/var/lib/etcd")
    assert (data.user, data.mode) == ("etcd", 0o700)


def test_client_and_peer_ports_listen(host, node_ip):
    for address in ("tcp://127.0.0.1:2379", f"tcp://{node_ip}:2379", f"tcp://{node_ip}:2380"):
        assert host.socket(address).is_listening, address


def test_the_members_keys_are_readable_by_etcd_only(host):
    keys = private_keys(host, "/etc/etcd/pki")
    assert set(keys) == {"/etc/etcd/pki/server.key", "/etc/etcd/pki/peer.key"}
    for key in keys:
        file = host.file(key)
        assert (file.user, file.mode) == ("etcd", 0o600), key


def test_a_client_needs_a_certificate_of_the_etcd_ca(host):
    healthy = json.loads(host.check_output(PROBE.format(with_certificate=True)))
    assert json.loads(healthy["body"])["health"] == "true", healthy
    anonymous = json.loads(host.check_output(PROBE.format(with_certificate=False)))
    assert "error" in anonymous, anonymous
