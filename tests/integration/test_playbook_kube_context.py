"""The playbooks reach the cluster the inventory names, whatever the kubeconfig's current-context says.

Rollback and canary once left ``kube_context`` out, so a rollback (the one integrate.yml runs after a failed merge
too) silently went to the kubeconfig's current-context. Every play now gives the kube connection once, to the
``slipway.platform.kube`` action group (playbooks/vars/kube.yml). Here the inventory gives only a kubeconfig and a
context name; the kubeconfig's current-context points at an address nothing answers on.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml
from fixtures.deliver.support import (
    API_URL,
    ROOT,
    configmap,
    context_inventory,
    deployment,
    live,
    run,
    service,
    system,
)

NOWHERE = "https://127.0.0.1:1"  # nothing listens on port 1: the current-context cannot be reached
STABLE, NEW = "127.0.0.1:5001/web:1", "127.0.0.1:5001/web:2"


def two_context_kubeconfig(path, stack_dir):
    """A kubeconfig whose current-context is unreachable and whose context `stack` is the stack as the deployer."""
    pki = stack_dir / "pki"
    ca = str(pki / "ca.crt")
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "elsewhere",
        "clusters": [{"name": "elsewhere", "cluster": {"server": NOWHERE, "certificate-authority": ca}},
                     {"name": "stack", "cluster": {"server": API_URL, "certificate-authority": ca}}],
        "users": [{"name": "deployer", "user": {"client-certificate": str(pki / "deployer.crt"),
                                                "client-key": str(pki / "deployer.key")}}],
        "contexts": [{"name": "elsewhere", "context": {"cluster": "elsewhere", "user": "deployer"}},
                     {"name": "stack", "context": {"cluster": "stack", "user": "deployer"}}]}))
    return path


@pytest.fixture
def inventory(stack_dir, context, tmp_path):
    kubeconfig = two_context_kubeconfig(tmp_path / "kubeconfig", stack_dir)
    return context_inventory(tmp_path / "inventory", stack_dir, connection={
        "slipway_kube_kubeconfig": str(kubeconfig), "slipway_kube_context": "stack"},
        slipway_context=context, slipway_deliver_wait_timeout=120)


def playbook(inventory, book, *args):
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    env.pop("KUBECONFIG", None)  # the stack's admin kubeconfig must not be what makes the play work
    return subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory),
                           str(ROOT / "playbooks" / book), *args],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=300, check=False)


def test_rollback_goes_to_the_kubeconfig_context_the_inventory_names(stack_dir, ns, context, kubectl, inventory):
    for word in ("one", "two"):
        run(stack_dir, [system("greeter", ns, configmap("greeting", word=word))], context)

    current = playbook(inventory, "rollback.yml", "-e", "slipway_kube_context=")
    assert current.returncode != 0  # without the name, the current-context is used, and it leads nowhere
    assert f"cannot reach the Kubernetes API at {NOWHERE}" in current.stdout
    assert live(kubectl, "configmap", ns, "greeting")["data"] == {"word": "two"}

    back = playbook(inventory, "rollback.yml", "-e", "slipway_rollback_revision=1")
    assert back.returncode == 0, back.stdout[-3000:] + back.stderr[-2000:]
    assert "rolled back from release 2 to 1 (recorded as revision 3)" in back.stdout
    assert live(kubectl, "configmap", ns, "greeting")["data"] == {"word": "one"}


def test_canary_goes_to_the_kubeconfig_context_the_inventory_names(stack_dir, ns, context, kubectl, inventory):
    run(stack_dir, [system("web", ns, deployment("web", image=STABLE, replicas=2), service("web"),
                           images={"web": STABLE})], context)
    canary = ("-e", "slipway_canary_system=web")

    started = playbook(inventory, "canary.yml", *canary, "-e", json.dumps({"slipway_canary_images": {"web": NEW}}),
                       "-e", "slipway_canary_weight=50")
    assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-2000:]
    containers = live(kubectl, "deployment", ns, "web-canary")["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == [NEW]

    aborted = playbook(inventory, "canary.yml", *canary, "-e", "slipway_canary_action=abort")
    assert aborted.returncode == 0, aborted.stdout[-3000:] + aborted.stderr[-2000:]
    assert kubectl("get", "deployment", "web-canary", "-n", ns, check=False).returncode != 0
    assert live(kubectl, "deployment", ns, "web")["spec"]["template"]["spec"]["containers"][0]["image"] == STABLE
