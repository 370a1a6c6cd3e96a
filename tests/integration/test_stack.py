"""The local stack is real: each test drives one component the way Slipway will, and checks the effect."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _registry_login(docker, stack_dir: Path, registry: str) -> None:
    password = (stack_dir / "secrets" / "registry-password").read_text().strip()
    docker("login", "--username", "slipway", "--password-stdin", registry, input=password)


def test_second_up_changes_nothing_and_says_so(stack):
    result = subprocess.run([sys.executable, str(ROOT / "hack" / "stack.py"), "up", "--skip-packages"],
                            capture_output=True, text=True, check=True)
    assert "already up; nothing to do" in result.stdout


def test_status_reports_every_component_up(stack):
    result = subprocess.run([sys.executable, str(ROOT / "hack" / "stack.py"), "status"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
    for component in ("docker", "registry", "etcd", "kube-apiserver", "kube-controller-manager",
                      "kube-scheduler", "kwok", "gateway-api"):
        assert f"{component}" in result.stdout
    assert " down " not in result.stdout


def test_docker_builds_and_runs_on_the_offline_base(docker, tmp_path):
    marker = uuid.uuid4().hex
    (tmp_path / "Dockerfile").write_text(f"FROM slipway/busybox:stable\nRUN echo {marker} > /marker\n"
                                         'CMD ["cat", "/marker"]\n')
    tag = f"slipway-test/stack-build:{marker[:12]}"
    docker("build", "-q", "-t", tag, str(tmp_path))
    try:
        assert docker("run", "--rm", tag).stdout.strip() == marker
    finally:
        docker("rmi", "-f", tag, check=False)


def test_debian_base_has_python_for_ansible(docker):
    out = docker("run", "--rm", "slipway/debian:bookworm", "python3", "-c", "import apt; print('ok')").stdout
    assert out.strip() == "ok"


def test_registry_push_delete_and_pull_back(docker, stack, stack_dir, tmp_path):
    registry = stack["SLIPWAY_REGISTRY"]
    marker = uuid.uuid4().hex
    (tmp_path / "Dockerfile").write_text(f"FROM slipway/busybox:stable\nRUN echo {marker} > /marker\n")
    ref = f"{registry}/stack-test/roundtrip:{marker[:12]}"
    docker("build", "-q", "-t", ref, str(tmp_path))
    _registry_login(docker, stack_dir, registry)
    docker("push", ref)
    local_id = docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip()
    docker("rmi", "-f", ref)
    assert docker("image", "inspect", ref, check=False).returncode != 0
    docker("pull", ref)
    assert docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip() == local_id
    assert docker("run", "--rm", ref, "cat", "/marker").stdout.strip() == marker
    docker("rmi", "-f", ref, check=False)


def test_registry_refuses_anonymous_pushes(stack):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://{stack['SLIPWAY_REGISTRY']}/v2/", timeout=5)  # noqa: S310
    assert refused.value.code == 401


def test_api_server_serves_tls_with_its_own_ca(stack_dir):
    import ssl
    import urllib.request

    context = ssl.create_default_context()  # the system trust store does not know the stack's CA
    with pytest.raises(urllib.error.URLError) as refused:
        urllib.request.urlopen("https://127.0.0.1:6443/readyz", context=context, timeout=5)  # noqa: S310
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)


def test_deployment_rolls_out_on_kwok_nodes(kubectl):
    namespace = f"stack-test-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", namespace)
    try:
        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "127.0.0.1:5001/none/web:1"}]},
                },
            },
        }
        kubectl("apply", "--server-side", "-f", "-", input=json.dumps(deployment))
        kubectl("-n", namespace, "rollout", "status", "deployment/web", "--timeout=90s")
        replicasets = json.loads(kubectl("-n", namespace, "get", "replicasets", "-o", "json").stdout)["items"]
        assert len(replicasets) == 1
        assert replicasets[0]["metadata"]["ownerReferences"][0]["name"] == "web"
        pods = json.loads(kubectl("-n", namespace, "get", "pods", "-o", "json").stdout)["items"]
        assert len(pods) == 3
        for pod in pods:
            assert pod["spec"]["nodeName"].startswith("kwok-node-"), "the scheduler placed the pod"
            assert pod["status"]["phase"] == "Running"
            ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
            assert ready["Ready"] == "True"
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_every_kwok_node_renews_its_lease(kubectl):
    """Without Lease heartbeats the node lifecycle controller declares kwok nodes lost one grace period after it
    starts and marks their pods NotReady for good: deliveries then time out at random (CI, 2026-11-26)."""
    def renewals():
        leases = json.loads(kubectl("-n", "kube-node-lease", "get", "leases", "-o", "json").stdout)["items"]
        return {lease["metadata"]["name"]: lease["spec"] for lease in leases
                if lease["metadata"]["name"].startswith("kwok-node-")}

    first = renewals()
    assert sorted(first) == ["kwok-node-0", "kwok-node-1", "kwok-node-2"], "kwok keeps no node Lease"
    deadline = time.monotonic() + max(spec["leaseDurationSeconds"] for spec in first.values())
    while time.monotonic() < deadline:
        latest = renewals()
        if all(latest[name]["renewTime"] != first[name]["renewTime"] for name in first):
            return
        time.sleep(1)
    pytest.fail(f"kwok node Leases were not renewed within their duration: {latest}")


def test_deployer_is_refused_outside_its_namespaces(kubectl):
    allowed = kubectl("auth", "can-i", "create", "deployments", "-n", "shop", identity="deployer", check=False)
    assert allowed.stdout.strip() == "yes"
    refused = kubectl("-n", "kube-system", "get", "secrets", identity="deployer", check=False)
    assert refused.returncode != 0
    assert "Forbidden" in refused.stderr
    cluster_wide = kubectl("create", "clusterrolebinding", "escalate", "--clusterrole=cluster-admin",
                           "--user=slipway:deployer", identity="deployer", check=False)
    assert cluster_wide.returncode != 0
    assert "forbidden" in cluster_wide.stderr.lower()


IDENTITY_CHECK = [{
    "name": "The local context's identities, generated from its systems", "hosts": "localhost",
    "connection": "local", "gather_facts": False,
    "tasks": [{"name": "Compare with what the stack made", "register": "identity", "check_mode": True,
               "slipway.platform.deployer_identity": {
                   "context": "{{ slipway_context }}", "subject": "{{ slipway_deployer_subject }}",
                   "viewer_groups": "{{ slipway_viewer_groups }}", "systems": "{{ slipway_systems }}",
                   "ecosystem_root": "{{ slipway_ecosystem_root }}", "network_policy": "{{ slipway_network_policy }}",
                   "kubeconfig": "{{ slipway_stack_dir }}/kube/admin.kubeconfig"}},
              {"name": "Show", "ansible.builtin.copy": {"content": "{{ identity | to_json }}", "dest": "{{ out }}"}}],
}]


def test_the_stacks_deployer_is_the_one_the_collection_generates_for_the_local_context(stack, tmp_path):
    """hack/stacklib/bootstrap.py and slipway.platform.deployer_identity (inventories/local) agree: nothing to do."""
    book, out = tmp_path / "identity.yml", tmp_path / "identity.json"
    book.write_text(json.dumps(IDENTITY_CHECK))
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(ROOT / "inventories" / "local"),
                           str(book), "-e", f"out={out}"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    identity = json.loads(out.read_text())
    assert identity["applied"] == [] and identity["removed"] == [], identity
    assert identity["namespaces"]["shop"]  # what it compared: the shop's kinds


def test_audit_log_records_requests_without_secret_bodies(kubectl, stack_dir):
    name = f"audit-{uuid.uuid4().hex[:8]}"
    sentinel = f"sentinel-{uuid.uuid4().hex}"
    kubectl("-n", "shop", "create", "configmap", name, "--from-literal=k=v", identity="deployer")
    # as admin: the local context's deployer may not write Secrets in shop (its systems deliver none)
    kubectl("-n", "shop", "create", "secret", "generic", name, f"--from-literal=password={sentinel}")
    try:
        audit = stack_dir / "logs" / "audit.log"
        deadline = time.monotonic() + 15
        found = False
        while time.monotonic() < deadline and not found:
            for line in audit.read_text().splitlines()[-5000:]:
                event = json.loads(line)
                if (event.get("objectRef", {}).get("name") == name and event.get("verb") == "create"
                        and event["objectRef"].get("resource") == "configmaps"):
                    assert event["user"]["username"] == "slipway:deployer"
                    found = True
            time.sleep(0.5)
        assert found, "the audit log recorded the deployer's create"
        assert sentinel not in audit.read_text(), "secret values never reach the audit log"
    finally:
        kubectl("-n", "shop", "delete", "configmap,secret", name, check=False)


def test_gateway_api_crds_are_established_at_the_pinned_version(stack, stack_dir, kubectl):
    pinned = re.search(r"sigs\.k8s\.io/gateway-api (v\S+)", (ROOT / "hack" / "gateway-api" / "go.mod").read_text())[1]
    pins = (ROOT / "hack" / "stacklib" / "config.py").read_text()
    assert re.search(rf'GATEWAY_API_VERSION = "{re.escape(pinned)}"', pins)
    stamped = json.loads((stack_dir / "gateway-api" / "crds.json").read_text())
    assert stamped["version"] == pinned and "httproutes.gateway.networking.k8s.io" in stamped["crds"]
    crds = {c["metadata"]["name"]: c for c in json.loads(kubectl("get", "crd", "-o", "json").stdout)["items"]}
    for name in stamped["crds"]:
        annotations = crds[name]["metadata"]["annotations"]
        assert annotations["gateway.networking.k8s.io/bundle-version"] == pinned, name
        assert annotations["gateway.networking.k8s.io/channel"] == "standard", name
        conditions = {c["type"]: c["status"] for c in crds[name]["status"]["conditions"]}
        assert conditions["Established"] == "True", name
    served = kubectl("api-resources", "--api-group=gateway.networking.k8s.io", "-o", "name").stdout.split()
    assert "httproutes.gateway.networking.k8s.io" in served
    # the canary writes routes as the deployer: allowed where its systems deliver routes, not elsewhere
    can_i = ("auth", "can-i", "update", "httproutes.gateway.networking.k8s.io")
    assert kubectl(*can_i, "-n", "shop", identity="deployer").stdout.strip() == "yes"
    assert kubectl(*can_i, "-n", "default", identity="deployer", check=False).stdout.strip() == "no"
