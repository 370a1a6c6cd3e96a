"""The security baseline on a provisioned cluster (issues 13 and 16): NetworkPolicies enforced between real pods on
the lab's two workers by kube-router (roles/network_policy), and people logging in with the stack's dex to the lab
cluster's API server (roles/control_plane slipway_control_plane_oidc), allowed and refused by the roles the
context generates for their groups. The audit policy and encryption at rest are test_provision.py's.

Runs on the session's provisioned cluster (``lab_cluster``); every test removes what it created.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
import yaml
from fixtures.deliver.support import ROOT
from fixtures.provision.support import CONTROL, CREDENTIALS, INVENTORY, KUBECTL, WORKER_A, WORKER_B, kubectl, on_machine
from test_deployer_identity import remove_identities
from test_sso import bind_sso_groups, login

assert ROOT  # fixtures.deliver.support has put the collection on sys.path
from ansible_collections.slipway.platform.plugins.module_utils._security.network import (  # noqa: E402
    POD_LABEL,
    peers_config,
    plan_network,
    system_flows,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow]

SERVE = "mkdir -p /tmp/www && echo served > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"
# One verdict a second; busybox's wget crashes when given -T, so busybox's timeout bounds it instead.
CALL = ("while true; do if timeout 3 wget -q -O /dev/null http://{address}:8080/; then echo CONNECTED; "
        "else echo REFUSED; fi; sleep 1; done")


@pytest.fixture(scope="module")
def probe_image(stack, tmp_path_factory, docker) -> str:
    context = tmp_path_factory.mktemp("probe")
    (context / "Dockerfile").write_text("FROM slipway/busybox:stable\nUSER 10001:10001\n")
    image = f"{stack['SLIPWAY_REGISTRY']}/slipway-lab/netpol-probe:1"
    docker("build", "-q", "-t", image, str(context))
    docker("push", "-q", image)
    return image


def pod(namespace: str, name: str, node: str, image: str, command: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {POD_LABEL: name}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "automountServiceAccountToken": False,
                     "containers": [{"name": "probe", "image": image, "command": ["sh", "-c", command],
                                     "ports": [{"name": "http", "containerPort": 8080}]}]}}


def generated_policies(namespace: str) -> list[dict]:
    """The NetworkPolicies Slipway's delivery generates with enforce for these four systems' declarations."""
    declared = {
        "server": {"network": {"ingress": [{"from": "client", "ports": [8080]}, {"from": "loner", "ports": [8080]}]}},
        "client": {"depends_on": ["server"]},  # a dependency is egress, on the ports the server admits it on
        "stranger": {"network": {"egress": [{"to": "server", "ports": [8080]}]}},  # not admitted by the server
        "loner": {},  # admitted by the server, but declares no way out
    }
    parsed = {name: system_flows(name, dict({"namespace": namespace, "depends_on": []}, **description))
              for name, description in declared.items()}
    assert not [problem for _flows, problems in parsed.values() for problem in problems]
    flows = {name: found for name, (found, _problems) in parsed.items()}
    plan = plan_network("enforce", list(flows.values()), flows, peers_config(None))
    return [policy for policies in plan.policies.values() for policy in policies]


def verdicts(namespace: str, callers: tuple[str, ...]) -> tuple:
    def last_word(name):
        logs = kubectl("-n", namespace, "logs", name, "--tail=1", check=False).stdout.split()
        return logs[-1] if logs else None
    return tuple(map(last_word, callers))


def wait_for_verdicts(namespace: str, callers: tuple[str, ...], wanted: tuple, seconds: float = 90) -> tuple:
    deadline = time.monotonic() + seconds
    seen = verdicts(namespace, callers)
    while time.monotonic() < deadline and seen != wanted:
        time.sleep(1)
        seen = verdicts(namespace, callers)
    return seen


def test_every_worker_runs_the_enforcer_with_a_read_only_identity(lab_cluster):
    for worker in (WORKER_A, WORKER_B):
        assert on_machine(worker, "systemctl", "is-active", "kube-router").stdout.strip() == "active"
        assert "-j KUBE-ROUTER-FORWARD" in on_machine(worker, "iptables", "-S", "FORWARD").stdout
    who = "--as=slipway:network-policy"
    assert kubectl("auth", "can-i", "watch", "networkpolicies", "-A", who, check=False).stdout.strip() == "yes"
    for verb, resource in (("create", "networkpolicies"), ("get", "secrets"), ("patch", "nodes"),
                           ("delete", "pods")):
        assert kubectl("auth", "can-i", verb, resource, "-A", who, check=False).stdout.strip() == "no", resource


def test_a_declared_flow_connects_and_undeclared_ones_are_refused_across_workers(lab_cluster, probe_image):
    namespace = f"netpol-{uuid.uuid4().hex[:6]}"
    callers = ("client", "stranger", "loner")
    kubectl("create", "namespace", namespace)
    try:
        kubectl("apply", "-f", "-", stdin=json.dumps(pod(namespace, "server", WORKER_A, probe_image, SERVE)))
        kubectl("-n", namespace, "wait", "pod/server", "--for=condition=Ready", "--timeout=180s")
        address = kubectl("-n", namespace, "get", "pod", "server", "-o", "jsonpath={.status.podIP}").stdout
        kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
            pod(namespace, name, WORKER_B, probe_image, CALL.format(address=address)) for name in callers]}))
        # Before any policy every caller connects: a refusal afterwards is the policies' doing, not the network's.
        open_network = wait_for_verdicts(namespace, callers, ("CONNECTED",) * 3, seconds=180)
        assert open_network == ("CONNECTED",) * 3, open_network

        policies = generated_policies(namespace)
        assert {p["metadata"]["name"] for p in policies} >= {"slipway-default-deny-server"}
        kubectl("-n", namespace, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                       "items": policies}))
        enforced = wait_for_verdicts(namespace, callers, ("CONNECTED", "REFUSED", "REFUSED"))
        assert enforced[0] == "CONNECTED", enforced  # declared: the server admits client, client depends on it
        assert enforced[1] == "REFUSED", enforced  # ingress: stranger may go out, the server does not admit it
        assert enforced[2] == "REFUSED", enforced  # egress: the server admits loner, loner declares no way out
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def api_server() -> str:
    hosts = yaml.safe_load((INVENTORY / "hosts.yml").read_text())["all"]["hosts"]
    return f"https://{hosts[CONTROL]['ansible_host']}:6443"


def as_token(token: str, *args: str) -> subprocess.CompletedProcess:
    """kubectl on the lab cluster with nothing but a bearer token (no client certificate to fall back on)."""
    return subprocess.run([str(KUBECTL), "--kubeconfig=/dev/null", f"--server={api_server()}",
                           f"--certificate-authority={CREDENTIALS / 'ca.crt'}", f"--token={token}", *args],
                          capture_output=True, text=True, check=False, timeout=60)


def can(token: str, verb: str, resource: str, namespace: str) -> bool:
    return as_token(token, "auth", "can-i", verb, resource, "-n", namespace).stdout.strip() == "yes"


@pytest.fixture
def sso_on_the_lab(lab_cluster, stack_dir, tmp_path):
    """The lab cluster trusts the stack's dex (the lab's inventory, hack/lablib/sso.py); a context's generated roles
    bind its groups there, as admin."""
    assert "--authentication-config=" in on_machine(CONTROL, "systemctl", "show", "-p", "ExecStart",
                                                    "kube-apiserver").stdout
    namespace, context = f"sso-{uuid.uuid4().hex[:6]}", f"lab-sso-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    # bind_sso_groups applies as <stack folder>/kube/admin.kubeconfig: here, the lab cluster's admin.
    lab_admin = tmp_path / "lab-admin"
    (lab_admin / "kube").mkdir(parents=True)
    (lab_admin / "kube" / "admin.kubeconfig").symlink_to(CREDENTIALS / "admin.kubeconfig")
    bind_sso_groups(tmp_path, lab_admin, context, namespace)
    yield namespace
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    remove_identities(lambda *args, check=False: kubectl(*args, check=check), context)


def test_sso_users_of_each_group_are_allowed_and_refused_on_the_lab_cluster(stack_dir, sso_on_the_lab):
    ns = sso_on_the_lab
    deployer, viewer = login(stack_dir, "deployer"), login(stack_dir, "viewer")

    who = json.loads(as_token(viewer, "auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    assert who["username"] == "oidc:viewer@slipway.local"
    assert "oidc:slipway:viewers" in who["groups"]

    assert can(deployer, "create", "deployments.apps", ns)
    assert can(deployer, "delete", "configmaps", ns)
    assert not can(deployer, "create", "rolebindings", ns)
    assert not can(deployer, "get", "secrets", "kube-system")

    assert can(viewer, "get", "deployments.apps", ns)
    assert not can(viewer, "create", "deployments.apps", ns)
    assert not can(viewer, "get", "secrets", ns)

    refused = as_token(viewer + "x", "auth", "whoami")  # a token whose signature does not verify
    assert refused.returncode != 0 and "Unauthorized" in refused.stderr
