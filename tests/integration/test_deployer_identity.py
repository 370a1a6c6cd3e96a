"""The context's deployer generated from its systems (issue 16), judged by the API server's real authorizer.

A ServiceAccount of the test's own is made the deployer of a fresh context: before the identity is generated it may
do nothing; after, it delivers the context's systems through the playbook and is refused everything else - Secrets
elsewhere, access rules, kinds its systems do not deliver. People in the viewer group read but never Secrets or the
journal.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from fixtures.deliver.support import API_URL, context_inventory, unique
from test_deliver_playbook import recap_changed
from test_security import TEMPLATE as DEPLOYMENT

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = {
    "app.yaml.j2": DEPLOYMENT,
    "settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {greeting: hello}\n",
}


def ansible_playbook(inventory, book, *args, ok=True):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")
    env.pop("CI", None)
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), str(book), *args],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert (done.returncode == 0) == ok, done.stdout + done.stderr
    return done.stdout


def write_api_system(eco, namespace):
    """System ``api``: a Deployment and a ConfigMap in ``namespace``."""
    (eco / "api" / "deploy").mkdir(parents=True, exist_ok=True)
    (eco / "api" / "slipway.yml").write_text(yaml.safe_dump({
        "name": "api", "namespace": namespace, "depends_on": [], "images": [{"name": "api", "context": "."}],
        "manifests": "deploy"}))
    for name, text in TEMPLATES.items():
        (eco / "api" / "deploy" / name).write_text(text)


def identity_playbook(tmp_path, stack_dir, context, subject, eco):
    """A playbook that generates ``context``'s identities for system ``api`` as admin (extra var viewer_groups)."""
    book = tmp_path / "identity.yml"
    book.write_text(yaml.safe_dump([{
        "name": "Generate the context's identities", "hosts": "localhost", "connection": "local",
        "gather_facts": False,
        "tasks": [{"name": "Deployer and viewers", "register": "identity",
                   "slipway.platform.deployer_identity": {
                       "context": context, "subject": subject, "viewer_groups": "{{ viewer_groups }}",
                       "systems": ["api"], "ecosystem_root": str(eco),
                       "kubeconfig": str(stack_dir / "kube" / "admin.kubeconfig")}},
                  {"name": "Show", "ansible.builtin.debug": {"var": "identity"}}]}]))
    return book


def remove_identities(kubectl, context):
    for kind in ("rolebindings", "roles"):
        kubectl("delete", kind, "-A", "-l", f"slipway.io/identity-of={context}", check=False)
    kubectl("delete", "clusterrolebindings,clusterroles", "-l", f"slipway.io/identity-of={context}", check=False)


@pytest.fixture
def setting(kubectl, stack_dir, tmp_path, context):
    namespace = unique("t-identity")
    kubectl("create", "namespace", namespace)
    kubectl("create", "serviceaccount", "deployer", "-n", namespace)
    token = kubectl("create", "token", "deployer", "-n", namespace, "--duration=30m").stdout.strip()
    eco = tmp_path / "eco"
    write_api_system(eco, namespace)
    group = unique("t-viewers")
    subject = {"kind": "ServiceAccount", "name": "deployer", "namespace": namespace}
    inventory = context_inventory(
        tmp_path / "inventory", stack_dir,
        connection={"slipway_kube_api_url": API_URL, "slipway_kube_ca_cert": str(stack_dir / "pki" / "ca.crt"),
                    "slipway_kube_api_token": token},
        slipway_context=context, slipway_ecosystem_root=str(eco), slipway_systems=["api"],
        slipway_system_tags={"api": "v1"}, slipway_reports_dir=str(tmp_path / "reports"),
        slipway_deliver_wait_timeout=90)
    book = identity_playbook(tmp_path, stack_dir, context, subject, eco)
    yield {"namespace": namespace, "token": token, "inventory": inventory, "book": book, "eco": eco,
           "group": group, "context": context}
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    remove_identities(kubectl, context)


def generate(setting, *groups, ok=True, check=False):
    extra = ["-e", json.dumps({"viewer_groups": list(groups)})] + (["--check", "--diff"] if check else [])
    return ansible_playbook(setting["inventory"], setting["book"], *extra, ok=ok)


def can(kubectl, setting, verb, resource, namespace):
    """The API server's own verdict for the deployer's token (no impersonation)."""
    return token_can(kubectl, setting["token"], verb, resource, namespace)


def token_can(kubectl, token, verb, resource, namespace):
    resource, _slash, subresource = resource.partition("/")
    more = [f"--subresource={subresource}"] if subresource else []
    done = kubectl("auth", "can-i", verb, resource, *more, "-n", namespace, f"--token={token}",
                   "--kubeconfig=/dev/null", f"--server={API_URL}",
                   f"--certificate-authority={Path(os.environ['SLIPWAY_STACK_DIR']) / 'pki' / 'ca.crt'}",
                   check=False)
    return done.stdout.strip() == "yes"


def viewer_can(kubectl, setting, verb, resource, namespace):
    done = kubectl("auth", "can-i", verb, resource, "-n", namespace, "--as=alice", f"--as-group={setting['group']}",
                   check=False)
    return done.stdout.strip() == "yes"


def test_the_generated_deployer_delivers_its_systems_and_nothing_else(kubectl, setting):
    ns = setting["namespace"]
    assert not can(kubectl, setting, "create", "deployments.apps", ns)
    ansible_playbook(setting["inventory"], ROOT / "playbooks" / "deliver.yml", ok=False)  # refused: no rights yet

    predicted = generate(setting, setting["group"], check=True)
    assert f"Role {ns}/slipway:deployer:{setting['context']}" in predicted
    assert not can(kubectl, setting, "create", "deployments.apps", ns), "check mode wrote the rules"

    generate(setting, setting["group"])
    ansible_playbook(setting["inventory"], ROOT / "playbooks" / "deliver.yml")
    assert kubectl("get", "deployment", "api", "-n", ns, "-o", "name").stdout.strip() == "deployment.apps/api"

    for verb, resource in [("create", "deployments.apps"), ("delete", "configmaps"), ("list", "pods"),
                           ("get", "services/proxy")]:
        assert can(kubectl, setting, verb, resource, ns), f"{verb} {resource} in {ns} must be allowed"
    assert can(kubectl, setting, "get", "configmaps", "slipway-system")  # its journal
    refused = [("create", "jobs.batch", ns), ("create", "secrets", ns), ("create", "rolebindings", ns),
               ("create", "roles", ns), ("get", "secrets", "shop"), ("create", "deployments.apps", "shop"),
               ("create", "clusterrolebindings", ns), ("create", "validatingadmissionpolicies", ns)]
    for verb, resource, namespace in refused:
        assert not can(kubectl, setting, verb, resource, namespace), f"{verb} {resource} in {namespace} allowed"

    assert viewer_can(kubectl, setting, "get", "deployments.apps", ns)
    assert not viewer_can(kubectl, setting, "get", "secrets", ns)
    assert not viewer_can(kubectl, setting, "get", "configmaps", "slipway-system")

    again = generate(setting, setting["group"])
    assert recap_changed(again) == 0


def test_rules_follow_the_systems_and_stale_grants_are_removed(kubectl, setting):
    ns = setting["namespace"]
    generate(setting, setting["group"])
    assert can(kubectl, setting, "create", "configmaps", ns)
    (setting["eco"] / "api" / "deploy" / "settings.yaml").unlink()  # the system no longer delivers a ConfigMap
    generate(setting)  # and no viewer group any more
    assert not can(kubectl, setting, "create", "configmaps", ns)
    assert can(kubectl, setting, "create", "deployments.apps", ns)
    assert not viewer_can(kubectl, setting, "get", "deployments.apps", ns)


def test_a_system_that_delivers_access_rules_is_refused_before_any_write(kubectl, setting):
    ns = setting["namespace"]
    (setting["eco"] / "api" / "deploy" / "grant.yaml").write_text(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: grant}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}\nsubjects: []\n")
    out = generate(setting, ok=False)
    assert "a deployer may not write access rules (RBAC)" in out
    assert kubectl("get", "roles", "-n", ns, "-l", f"slipway.io/identity-of={setting['context']}",
                   "-o", "name").stdout.strip() == ""
