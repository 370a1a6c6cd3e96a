"""Shared by the cluster scenario's verifiers: kubectl as the cluster's admin on the machine, and certificates read
with openssl there."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

PKI = "/etc/kubernetes/pki"
ADMIN = "/etc/kubernetes/admin.kubeconfig"
# Where converge.yml keeps the lab's generated secrets and the credentials cluster_bootstrap fetches.
SCENARIO_STATE = Path(os.environ.get("SLIPWAY_STACK_DIR", ".stack")) / "lab-cluster" / "molecule-secrets"


@pytest.fixture(scope="module")
def node(host) -> str:
    return host.check_output("hostname")


@pytest.fixture(scope="module")
def node_ip(host) -> str:
    return host.check_output("hostname -I").split()[0]


@pytest.fixture(scope="module")
def kubectl(host):
    def run(*args: str) -> str:
        return host.check_output(" ".join(["/usr/local/bin/kubectl", f"--kubeconfig={ADMIN}", *args]))
    return run


@pytest.fixture(scope="module")
def node_object(kubectl, node) -> dict:
    return json.loads(kubectl("get", "node", node, "-o", "json"))


def certificate_names(host, path: str) -> set[str]:
    """The subject alternative names of a certificate, as openssl prints them (DNS:x, IP Address:y)."""
    text = host.check_output(f"openssl x509 -in {path} -noout -ext subjectAltName")
    return {name.strip() for line in text.splitlines()[1:] for name in line.split(",") if name.strip()}


def certificate_field(host, path: str, field: str) -> str:
    """-subject, -issuer, -serial, -enddate: the value after '='."""
    return host.check_output(f"openssl x509 -in {path} -noout {field} -nameopt RFC2253").split("=", 1)[1].strip()


def anonymous_status(host, url: str, host_header: str = "") -> str:
    """The HTTP status a request without credentials gets from an endpoint on the machine (HTTPS unverified)."""
    headers = {"Host": host_header} if host_header else {}
    return host.check_output(f"""python3 - <<'PY'
import ssl, urllib.request, urllib.error
try:
    request = urllib.request.Request('{url}', headers={headers!r})
    print(urllib.request.urlopen(request, context=ssl._create_unverified_context()).status)
except urllib.error.HTTPError as error:
    print(error.code)
PY""")


def private_keys(host, folder: str) -> list[str]:
    return host.check_output(f"find {folder} -name '*.key'").split()


RESET_MARKER = "/var/lib/slipway-molecule-reset"  # written by side_effect.yml after node_reset ran


@pytest.fixture(scope="module", autouse=True)
def _phase(request, host):
    """The first verify checks the cluster, the one after side_effect.yml (node_reset) checks the bare machine: each
    test module runs in its own phase and is skipped, before its fixtures touch the cluster, in the other."""
    after_reset = host.file(RESET_MARKER).exists
    checks_reset = request.module.__name__.endswith("test_node_reset")
    if after_reset != checks_reset:
        pytest.skip("checked in the other verify (before/after node_reset)")
