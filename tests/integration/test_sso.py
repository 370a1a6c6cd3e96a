"""People log in with SSO (issue 16): dex, a real OIDC identity service, issues ID tokens; the API server trusts them
and maps their groups to the roles a context generates. Each user's rights are the API server's own verdict for
their token.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request

import pytest
from fixtures.deliver.support import unique
from test_deployer_identity import (
    ansible_playbook,
    identity_playbook,
    remove_identities,
    token_can,
    write_api_system,
)

ISSUER = "https://127.0.0.1:5556/dex"


def login(stack_dir, user, password=None):
    """An ID token from dex for ``user`` (the resource-owner password grant, as a CLI login helper does)."""
    secrets = stack_dir / "secrets"
    password = password if password is not None else (secrets / f"sso-{user}-password").read_text().strip()
    client = base64.b64encode(f"slipway:{(secrets / 'sso-client-secret').read_text().strip()}".encode()).decode()
    body = urllib.parse.urlencode({"grant_type": "password", "username": f"{user}@slipway.local",
                                   "password": password, "scope": "openid email groups"}).encode()
    request = urllib.request.Request(f"{ISSUER}/token", data=body,  # noqa: S310 - https, fixed address
                                     headers={"Authorization": f"Basic {client}"})
    context = ssl.create_default_context(cafile=str(stack_dir / "pki" / "ca.crt"))
    with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310 - https, fixed
        return json.load(response)["id_token"]


def bind_sso_groups(tmp_path, stack_dir, context, namespace):
    """``context``'s generated roles for a system in ``namespace``: the deployer bound to dex's group
    ``slipway:deployers``, read-only access to ``slipway:viewers``; applied as ``<stack_dir>/kube/admin.kubeconfig``."""
    eco = tmp_path / "eco"
    write_api_system(eco, namespace)
    book = identity_playbook(tmp_path, stack_dir, context, {"kind": "Group", "name": "oidc:slipway:deployers"}, eco)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all: {hosts: {localhost: {ansible_connection: local, "
                         "ansible_python_interpreter: '{{ ansible_playbook_python }}'}}}\n")
    ansible_playbook(inventory, book, "-e", json.dumps({"viewer_groups": ["oidc:slipway:viewers"]}))


@pytest.fixture
def sso_context(kubectl, stack_dir, tmp_path, context):
    namespace = unique("t-sso")
    kubectl("create", "namespace", namespace)
    bind_sso_groups(tmp_path, stack_dir, context, namespace)
    yield namespace
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    remove_identities(kubectl, context)


def test_an_sso_user_of_each_group_is_allowed_and_refused_by_the_context_roles(kubectl, stack_dir, sso_context):
    ns = sso_context
    deployer, viewer = login(stack_dir, "deployer"), login(stack_dir, "viewer")

    assert token_can(kubectl, deployer, "create", "deployments.apps", ns)
    assert token_can(kubectl, deployer, "delete", "configmaps", ns)
    assert not token_can(kubectl, deployer, "create", "rolebindings", ns)
    assert not token_can(kubectl, deployer, "get", "secrets", "shop")

    assert token_can(kubectl, viewer, "get", "deployments.apps", ns)
    assert not token_can(kubectl, viewer, "create", "deployments.apps", ns)
    assert not token_can(kubectl, viewer, "get", "secrets", ns)
    assert not token_can(kubectl, viewer, "list", "configmaps", "slipway-system")


def test_the_api_server_maps_the_id_token_to_a_prefixed_user_and_groups(kubectl, stack_dir):
    done = kubectl("auth", "whoami", "-o", "json", f"--token={login(stack_dir, 'viewer')}",
                   "--kubeconfig=/dev/null", "--server=https://127.0.0.1:6443",
                   f"--certificate-authority={stack_dir / 'pki' / 'ca.crt'}")
    user = json.loads(done.stdout)["status"]["userInfo"]
    assert user["username"] == "oidc:viewer@slipway.local"
    assert "oidc:slipway:viewers" in user["groups"]


def test_a_wrong_password_gets_no_token_and_a_tampered_token_is_refused(kubectl, stack_dir):
    with pytest.raises(urllib.error.HTTPError) as refused:
        login(stack_dir, "viewer", password="not-the-password")
    assert refused.value.code in (400, 401)

    header, claims, signature = login(stack_dir, "viewer").split(".")
    forged = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    forged["groups"] = ["slipway:deployers"]
    tampered = ".".join([header, base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("="),
                         signature])
    done = kubectl("auth", "whoami", f"--token={tampered}", "--kubeconfig=/dev/null",
                   "--server=https://127.0.0.1:6443", f"--certificate-authority={stack_dir / 'pki' / 'ca.crt'}",
                   check=False)
    assert done.returncode != 0 and "Unauthorized" in done.stderr
