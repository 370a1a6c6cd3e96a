"""Integration tests run against the real local stack, started once per session by hack/stack.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.deliver.support import grant_namespace, unique
from fixtures.provision import support as provision

ROOT = Path(__file__).resolve().parents[2]


def _read_env(path: Path) -> dict:
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("export ") and "=" in line and "$PATH" not in line:
            key, value = line[len("export "):].split("=", 1)
            env[key] = value.strip().strip('"')
    return env


@pytest.fixture(scope="session")
def stack() -> dict:
    """Start (or confirm) the local stack and return its environment (DOCKER_HOST, KUBECONFIG, ...)."""
    result = subprocess.run([sys.executable, str(ROOT / "hack" / "stack.py"), "up", "--skip-packages"],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"the local stack did not come up:\n{result.stdout}\n{result.stderr}")
    state = Path(os.environ.get("SLIPWAY_STACK_DIR", ROOT / ".stack"))
    env = _read_env(state / "env")
    env["PATH"] = f"{state / 'bin'}:{os.environ['PATH']}"
    os.environ.update(env)
    return env


@pytest.fixture(scope="session")
def stack_dir(stack) -> Path:
    return Path(stack["SLIPWAY_STACK_DIR"])


@pytest.fixture(scope="session")
def kubectl(stack):
    """Run kubectl as the admin identity; returns CompletedProcess (text)."""
    def run(*args, identity="admin", check=True, input=None):
        kubeconfig = Path(stack["SLIPWAY_STACK_DIR"]) / "kube" / f"{identity}.kubeconfig"
        return subprocess.run(["kubectl", f"--kubeconfig={kubeconfig}", *args], capture_output=True, text=True,
                              check=check, input=input)
    return run


@pytest.fixture(scope="session")
def docker(stack):
    """Run the docker CLI against the stack's engine; returns CompletedProcess (text)."""
    def run(*args, check=True, input=None):
        return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, input=input,
                              env=dict(os.environ, DOCKER_HOST=stack["DOCKER_HOST"]))
    return run


@pytest.fixture
def ns(request, kubectl):
    """A namespace of the test's own in which the least-privilege deployer may write, like `shop`."""
    area = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").split("_")[0]
    namespace = grant_namespace(kubectl, unique(f"t-{area}"))
    yield namespace
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture
def context(kubectl):
    """A delivery context of the test's own; its journal, release snapshots and lock are removed afterwards."""
    name = unique("t")
    yield name
    for selector in (f"slipway.io/context={name}", f"slipway.io/snapshot-of={name}"):
        kubectl("delete", "configmaps,secrets", "-n", "slipway-system", "-l", selector, check=False)
    kubectl("delete", "lease", f"slipway-lock-{name}", "-n", "slipway-system", "--ignore-not-found", check=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test on the stack reports what the cluster looked like, so that a failure in CI explains itself."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "kubectl" in item.funcargs:
        report.sections.append(("cluster state at the failure", cluster_state(item.funcargs["kubectl"],
                                                                              item.funcargs.get("ns"))))


def cluster_state(kubectl, namespace=None):
    """Node readiness and heartbeats, and every pod of the test's namespace that is not Ready."""
    lines = []
    try:
        nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
        leases = {lease["metadata"]["name"]: lease["spec"].get("renewTime") for lease in json.loads(
            kubectl("-n", "kube-node-lease", "get", "leases", "-o", "json").stdout)["items"]}
        for node in nodes:
            ready = next((c for c in node["status"].get("conditions", []) if c["type"] == "Ready"), {})
            lines.append(f"node {node['metadata']['name']}: Ready={ready.get('status')} since "
                         f"{ready.get('lastTransitionTime')}, lease renewed {leases.get(node['metadata']['name'])}")
        if namespace:
            for pod in json.loads(kubectl("-n", namespace, "get", "pods", "-o", "json").stdout)["items"]:
                status = pod.get("status", {})
                conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
                if conditions.get("Ready") != "True":
                    lines.append(f"pod {pod['metadata']['name']} on {pod['spec'].get('nodeName')}: "
                                 f"{status.get('phase')} {conditions}")
    except (subprocess.CalledProcessError, KeyError, ValueError) as exc:
        lines.append(f"(could not read the cluster state: {exc})")
    return "\n".join(lines)


@pytest.fixture(scope="session")
def lab_vars(stack) -> Path:
    """The provisioning lab's machines (1 control plane + 2 workers) and the test cluster's secrets."""
    provision.lab_up(3)
    return provision.write_lab_vars(provision.LAB / "test-vars.yml", provision.dns_image())


@pytest.fixture(scope="session")
def lab_cluster(lab_vars) -> provision.PlaybookRun:
    """One cluster provisioned by playbooks/provision.yml for every test that needs one (cold, or a re-run on a lab
    an earlier session provisioned): provisioning is the slowest thing the suite does, so it is done once."""
    run = provision.playbook("provision.yml", *provision.FIRST_THREE, extra_vars=lab_vars)
    assert run.returncode == 0, run.output[-6000:]
    return run
