"""cluster_pki alone, after a renewal of every leaf certificate (side effect): keys readable by root only, every
leaf re-issued with a new serial from the same key, the CAs and their keys kept, and valid for the configured
time again."""

from __future__ import annotations

import datetime

import pytest

PKI = "/etc/kubernetes/pki"
CAS = ("./ca.crt", "./etcd/ca.crt", "./front-proxy-ca.crt")


@pytest.fixture(scope="module")
def before(host) -> dict[str, str]:
    """path -> serial (certificates) or sha256 (keys), as the side effect recorded them before the renewal."""
    recorded = {}
    for line in host.file("/root/pki-before.txt").content_string.splitlines():
        first, second = line.split(maxsplit=1)
        recorded.update({first: second} if first.startswith("./") else {second: first})
    return recorded


def now(host, path: str) -> str:
    return host.check_output(f"cd {PKI} && openssl x509 -in {path} -noout -serial")


def test_every_key_is_readable_by_root_only(host):
    keys = host.check_output(f"find {PKI} -name '*.key'").split()
    assert len(keys) >= 15, keys
    for key in keys:
        file = host.file(key)
        assert (file.user, file.mode) == ("root", 0o600), key
    assert host.file(PKI).mode == 0o700


def test_every_leaf_certificate_was_issued_again_with_its_key(host, before):
    leaves = [path for path in before if path.endswith(".crt") and path not in CAS]
    assert {"./apiserver.crt", "./admin.crt", "./kube-proxy.crt", "./apiserver-etcd-client.crt",
            "./front-proxy-client.crt"} <= set(leaves), leaves
    for leaf in leaves:
        assert now(host, leaf) != before[leaf], f"{leaf} was not renewed"
    for key, digest in ((p, d) for p, d in before.items() if p.endswith(".key")):
        assert host.check_output(f"cd {PKI} && sha256sum {key}").split()[0] == digest, f"{key} was replaced"


def test_the_cas_are_kept(host, before):
    for ca in CAS:
        assert now(host, ca) == before[ca], f"{ca} was issued again"


def test_renewed_certificates_are_valid_for_a_year_and_signed_by_their_ca(host):
    end = host.check_output(f"openssl x509 -in {PKI}/apiserver.crt -noout -enddate").split("=", 1)[1]
    expires = datetime.datetime.strptime(end, "%b %d %H:%M:%S %Y %Z")
    assert expires - datetime.datetime.now() > datetime.timedelta(days=360), end
    signed_by = {"apiserver": "ca", "apiserver-etcd-client": "etcd/ca", "front-proxy-client": "front-proxy-ca"}
    for leaf, ca in signed_by.items():
        assert host.run(f"openssl verify -CAfile {PKI}/{ca}.crt {PKI}/{leaf}.crt").rc == 0, leaf
