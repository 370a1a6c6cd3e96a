"""cluster_pki: the CAs, the leaf certificates with the names their users are reached by, private keys readable by
their owner only, kubeconfigs that hold credentials readable by root only."""

from __future__ import annotations

from conftest import PKI, certificate_field, certificate_names, private_keys


def test_every_private_key_is_readable_by_root_only(host):
    keys = private_keys(host, PKI)
    assert {f"{PKI}/ca.key", f"{PKI}/etcd/ca.key", f"{PKI}/front-proxy-ca.key", f"{PKI}/sa.key",
            f"{PKI}/apiserver.key"} <= set(keys)
    for key in keys:
        file = host.file(key)
        assert (file.user, file.group, file.mode) == ("root", "root", 0o600), key


def test_certificates_are_public_and_signed_by_their_ca(host):
    for leaf, ca in (("apiserver", "ca"), ("admin", "ca"), ("apiserver-etcd-client", "etcd/ca"),
                     ("front-proxy-client", "front-proxy-ca")):
        assert host.file(f"{PKI}/{leaf}.crt").mode == 0o644, leaf
        verified = host.run(f"openssl verify -CAfile {PKI}/{ca}.crt {PKI}/{leaf}.crt")
        assert verified.rc == 0, (leaf, verified.stdout, verified.stderr)


def test_the_api_servers_certificate_names_every_way_it_is_reached(host, node, node_ip):
    names = certificate_names(host, f"{PKI}/apiserver.crt")
    assert {"DNS:kubernetes", "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local",
            "DNS:localhost", f"DNS:{node}", "IP Address:127.0.0.1", "IP Address:10.96.0.1",
            f"IP Address:{node_ip}"} <= names, names


def test_each_etcd_member_has_a_server_and_a_peer_certificate_with_its_names(host, node, node_ip):
    assert certificate_names(host, f"{PKI}/etcd/server-{node}.crt") >= {
        f"DNS:{node}", f"IP Address:{node_ip}", "DNS:localhost", "IP Address:127.0.0.1"}
    assert certificate_names(host, f"{PKI}/etcd/peer-{node}.crt") >= {f"DNS:{node}", f"IP Address:{node_ip}"}


def test_client_identities_carry_their_user_and_group(host):
    assert certificate_field(host, f"{PKI}/admin.crt", "-subject") == "CN=slipway-admin,O=system:masters"
    assert certificate_field(host, f"{PKI}/controller-manager.crt", "-subject") == "CN=system:kube-controller-manager"
    assert certificate_field(host, f"{PKI}/deployer.crt", "-subject") == "CN=slipway:deployer,O=slipway:deployers"


def test_the_kubeconfigs_name_the_certificate_files_and_only_root_reads_them(host):
    for name in ("admin", "controller-manager", "scheduler"):
        kubeconfig = host.file(f"/etc/kubernetes/{name}.kubeconfig")
        assert (kubeconfig.user, kubeconfig.mode) == ("root", 0o600), name
        assert f"{PKI}/{name}.crt" in kubeconfig.content_string, name
