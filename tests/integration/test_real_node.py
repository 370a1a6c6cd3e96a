"""The real node (kubelet + containerd) runs exactly what the registry holds, and fails the way real nodes fail.

The module starts the stack with ``hack/stack.py up --real-node``; every test builds its image on
``slipway/busybox:stable``, pushes it to the local registry and lets the kubelet pull it with the
registry's image pull secret. The broken workloads come from ``fixtures/broken/`` (shared with the
delivery engine's tests). The last test stops the real node and checks that nothing is left running,
then starts it again.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import jinja2
import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from fixtures.deliver.support import ROOT as _COLLECTION_ON_PATH
from fixtures.deliver.support import registry_pull_secret

assert _COLLECTION_ON_PATH  # fixtures.deliver.support has put the collection on sys.path
from ansible_collections.slipway.platform.plugins.plugin_utils._render import ManifestRenderer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "broken"
NODE = "slipway-real-0"
POD_SUBNET_PREFIX = "10.77.0."
ON_REAL_NODE = {
    "nodeSelector": {"slipway.io/node-kind": "real"},
    "tolerations": [{"key": "slipway.io/real-node", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
    "imagePullSecrets": [{"name": "slipway-registry"}],
}

pytestmark = pytest.mark.slow


def _up_real_node() -> float:
    begin = time.monotonic()
    result = subprocess.run([sys.executable, str(ROOT / "hack" / "stack.py"), "up", "--real-node", "--skip-packages"],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"hack/stack.py up --real-node failed:\n{result.stdout}\n{result.stderr}")
    return time.monotonic() - begin


@pytest.fixture(scope="module")
def real_node(stack) -> str:
    elapsed = _up_real_node()
    print(f"\nhack/stack.py up --real-node: {elapsed:.1f}s")
    return NODE


@pytest.fixture(scope="module")
def registry(stack, docker, stack_dir) -> str:
    password = (stack_dir / "secrets" / "registry-password").read_text().strip()
    docker("login", "--username", "slipway", "--password-stdin", stack["SLIPWAY_REGISTRY"], input=password)
    return stack["SLIPWAY_REGISTRY"]


@pytest.fixture(scope="module")
def namespace(real_node, kubectl, registry, stack_dir):
    """A fresh namespace holding the registry's credentials as the image pull secret ``slipway-registry``."""
    name = f"slipway-real-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    kubectl("apply", "-f", "-", input=json.dumps(registry_pull_secret(stack_dir, registry, name)))
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def push(docker, registry):
    """Build a folder into an image and push it; returns the reference the pod will pull."""
    def build_and_push(context: Path, repository: str) -> str:
        ref = f"{registry}/slipway-test/{repository}:{uuid.uuid4().hex[:12]}"
        docker("build", "-q", "-t", ref, str(context))
        docker("push", ref)
        return ref
    return build_and_push


def _render(system: str, namespace: str, images: dict, **values) -> str:
    template = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False).from_string(  # noqa: S701
        (FIXTURES / system / "deploy" / "deployment.yaml.j2").read_text())
    return template.render(system={"name": system, "namespace": namespace}, images=images, context="test",
                           values=values, slipway_registry=values.pop("registry", "127.0.0.1:5001"))


def _pod(kubectl, namespace: str, app: str) -> dict:
    items = json.loads(kubectl("-n", namespace, "get", "pods", "-l", f"app.kubernetes.io/name={app}",
                               "-o", "json").stdout)["items"]
    return items[0] if items else {}


def _waiting(pod: dict) -> dict:
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    return (statuses[0].get("state") or {}).get("waiting") or {}


def _wait_for(what: str, probe, timeout: float, kubectl=None, namespace: str | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(1)
    details = kubectl("-n", namespace, "describe", "pods", check=False).stdout if kubectl else ""
    pytest.fail(f"{what}: not seen within {timeout:.0f}s\n{details}")


def _port_forward_get(stack, namespace: str, target: str, port: int, paths: list[str]) -> list[str]:
    """GET each path through ``kubectl port-forward`` on 127.0.0.1 (API server -> kubelet -> pod)."""
    forward = subprocess.Popen(["kubectl", f"--kubeconfig={stack['KUBECONFIG']}", "-n", namespace,
                                "port-forward", "--address=127.0.0.1", target, f":{port}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = forward.stdout.readline()
        match = re.search(rf"127\.0\.0\.1:(\d+) -> {port}", line)
        assert match, f"no port-forward line: {line!r} {forward.stderr.read() if forward.poll() is not None else ''}"
        bodies = []
        for path in paths:
            with urllib.request.urlopen(f"http://127.0.0.1:{match.group(1)}{path}", timeout=10) as resp:  # noqa: S310
                bodies.append(resp.read().decode())
        return bodies
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def test_node_joins_with_its_own_credentials_label_and_taint(real_node, kubectl, stack_dir):
    node = json.loads(kubectl("get", "node", real_node, "-o", "json").stdout)
    assert node["metadata"]["labels"]["slipway.io/node-kind"] == "real"
    assert {"key": "slipway.io/real-node", "value": "true", "effect": "NoSchedule"} in node["spec"]["taints"]
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions["Ready"] == "True", conditions
    assert {"type": "InternalIP", "address": f"{POD_SUBNET_PREFIX}1"} in node["status"]["addresses"]
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    # Simulated nodes stay next to it, labelled apart.
    assert kubectl("get", "nodes", "-l", "slipway.io/node-kind=simulated", "-o", "name").stdout.strip()

    subject = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in",
                              str(stack_dir / "pki" / "realnode-kubelet.crt")],
                             capture_output=True, text=True, check=True).stdout
    assert "O = system:nodes" in subject and f"CN = system:node:{real_node}" in subject
    # The Node authorizer, not RBAC, governs that identity: it may not read secrets at large.
    can_list = kubectl("auth", "can-i", "list", "secrets", "--all-namespaces", identity="realnode-kubelet", check=False)
    assert can_list.stdout.strip().startswith("no"), can_list.stdout
    assert kubectl("auth", "can-i", "get", f"nodes/{real_node}", identity="realnode-kubelet").stdout.strip() == "yes"
    other = kubectl("auth", "can-i", "get", "nodes/kwok-node-0", identity="realnode-kubelet", check=False)
    assert other.stdout.strip().startswith("no"), other.stdout


@pytest.fixture(scope="module")
def hello(namespace, push, kubectl, tmp_path_factory) -> dict:
    """A pushed busybox httpd image delivered as Deployment + Service ``hello``; waits until it is Ready."""
    context = tmp_path_factory.mktemp("hello")
    marker = uuid.uuid4().hex
    (context / "Dockerfile").write_text(
        "FROM slipway/busybox:stable\n"
        f"RUN mkdir -p /www && echo {marker} > /www/index.html && echo ok > /www/healthz\n"
        "USER 10001:10001\nEXPOSE 8080\n"
        'CMD ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]\n')
    image = push(context, "hello")
    labels = {"app.kubernetes.io/name": "hello"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hello", "namespace": namespace},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {**ON_REAL_NODE, "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "hello", "image": image, "ports": [{"containerPort": 8080}],
                                     "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                                                        "periodSeconds": 1}}]}}},
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello", "namespace": namespace},
               "spec": {"selector": labels, "ports": [{"port": 8080, "targetPort": 8080}]}}
    begin = time.monotonic()
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [deployment, service]}))
    kubectl("-n", namespace, "rollout", "status", "deployment/hello", "--timeout=120s")
    return {"image": image, "marker": marker, "begin": begin, "ready_after": time.monotonic() - begin}


def test_pushed_image_runs_ready_and_answers_on_127_0_0_1(hello, namespace, kubectl, docker, stack):
    pod = _pod(kubectl, namespace, "hello")
    assert pod["spec"]["nodeName"] == NODE
    assert pod["status"]["podIP"].startswith(POD_SUBNET_PREFIX)
    # What runs is exactly what was pushed: the kubelet reports the registry's manifest digest.
    repository = hello["image"].rsplit(":", 1)[0]
    digests = docker("image", "inspect", "-f", "{{json .RepoDigests}}", hello["image"]).stdout
    pushed = [d for d in json.loads(digests) if d.startswith(f"{repository}@")]
    assert pod["status"]["containerStatuses"][0]["imageID"] in pushed, (pushed, pod["status"]["containerStatuses"])

    # Reachable from the host on 127.0.0.1 through the API server (-> kubelet -> containerd -> pod netns).
    assert _port_forward_get(stack, namespace, "deployment/hello", 8080, ["/"])[0].strip() == hello["marker"]
    answered_after = time.monotonic() - hello["begin"]
    print(f"\ndelivery -> Ready {hello['ready_after']:.1f}s, -> answering on 127.0.0.1 {answered_after:.1f}s")


def test_service_name_resolves_to_the_ready_pod(hello, namespace, kubectl):
    """The node's cluster DNS: <service>.<namespace>.svc.cluster.local -> the ready pods (no kube-proxy)."""
    pod = _pod(kubectl, namespace, "hello")
    url = f"http://hello.{namespace}.svc.cluster.local:8080/"

    def fetch():
        result = kubectl("-n", namespace, "exec", pod["metadata"]["name"], "--", "wget", "-q", "-O-", url,
                         check=False)
        return result.stdout.strip() == hello["marker"]

    _wait_for(f"{url} answering from inside the pod", fetch, 30, kubectl, namespace)
    outside = kubectl("-n", namespace, "exec", pod["metadata"]["name"], "--", "nslookup", "example.org",
                      check=False)
    assert outside.returncode != 0 and "REFUSED" in outside.stdout, outside.stdout  # nothing outside the zone


def test_example_shop_runs_ready_on_the_real_node_and_answers(namespace, push, kubectl, stack):
    """examples/shop on the real node: every pod Running and Ready, the frontend (and, through it, the
    backend) answers on 127.0.0.1. The templates are rendered as the delivery engine renders them; the
    placement on the real node is added here, since the shop's templates do not choose a node kind."""
    shop = ROOT / "examples" / "shop"
    images = {name: push(shop / name, f"shop-{name}") for name in ("backend", "worker", "frontend")}
    objects = []
    for name in images:
        folder = shop / name / "deploy"
        # the engine's own renderer, with the variables ActionModule.render gives templates
        renderer = ManifestRenderer(Templar(loader=DataLoader()))
        renderer.use([str(folder)], {
            "system": {"name": name, "namespace": namespace}, "images": images, "context": "test", "values": {},
            "namespaces": dict.fromkeys(images, namespace)})
        for template in sorted(folder.glob("*.j2")):
            objects += [d["content"] for d in renderer.render_file(name, str(template), str(shop)) if d["content"]]
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        deployment["spec"]["template"]["spec"].update(ON_REAL_NODE)
    begin = time.monotonic()
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    for name in images:
        kubectl("-n", namespace, "rollout", "status", f"deployment/{name}", "--timeout=180s")
    ready_after = time.monotonic() - begin
    pods = json.loads(kubectl("-n", namespace, "get", "pods", "-l", "app.kubernetes.io/part-of=shop",
                              "-o", "json").stdout)["items"]
    assert {p["metadata"]["labels"]["app.kubernetes.io/name"] for p in pods} == set(images)
    for pod in pods:
        assert pod["spec"]["nodeName"] == NODE and pod["status"]["phase"] == "Running"
        assert all(c["ready"] for c in pod["status"]["containerStatuses"]), pod["status"]

    page, health, products = _port_forward_get(stack, namespace, "service/frontend", 8080,
                                               ["/", "/healthz", "/cgi-bin/api/products"])
    assert "<html" in page.lower() and health.strip() == "ok"
    assert json.loads(products)["products"], products  # frontend -> backend by its service name
    print(f"\nshop delivery -> all Ready {ready_after:.1f}s, -> frontend answering {time.monotonic() - begin:.1f}s")


def test_crashing_image_goes_to_crashloopbackoff(namespace, push, kubectl):
    image = push(FIXTURES / "crashloop", "crashloop")
    kubectl("apply", "-f", "-", input=_render("crashloop", namespace, {"crashloop": image}))
    pod = _wait_for("CrashLoopBackOff",
                    lambda: (p := _pod(kubectl, namespace, "crashloop")) and
                    _waiting(p).get("reason") == "CrashLoopBackOff" and p,
                    120, kubectl, namespace)
    status = pod["status"]["containerStatuses"][0]
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert status["restartCount"] >= 1
    logs = kubectl("-n", namespace, "logs", "--previous", pod["metadata"]["name"]).stdout
    assert "exiting with status 3" in logs


def test_missing_image_reports_errimagepull_or_imagepullbackoff(namespace, kubectl, registry):
    kubectl("apply", "-f", "-", input=_render("missing-image", namespace, {}, registry=registry))
    seen = _wait_for("ErrImagePull/ImagePullBackOff",
                     lambda: _waiting(_pod(kubectl, namespace, "missing-image")).get("reason")
                     in ("ErrImagePull", "ImagePullBackOff") and _pod(kubectl, namespace, "missing-image"),
                     90, kubectl, namespace)
    assert seen["spec"]["nodeName"] == NODE
    # The registry was reached with the pull secret and answered "not found" (not "unauthorized").
    events = kubectl("-n", namespace, "get", "events", "--field-selector",
                     f"involvedObject.name={seen['metadata']['name']}", "-o", "json").stdout
    messages = " ".join(e.get("message", "") for e in json.loads(events)["items"])
    assert "not found" in messages, messages
    assert "401" not in messages and "nauthorized" not in messages, messages


def test_never_ready_probe_exceeds_the_progress_deadline(namespace, push, kubectl):
    image = push(FIXTURES / "never-ready", "never-ready")
    kubectl("apply", "-f", "-",
            input=_render("never-ready", namespace, {"never-ready": image}, progress_deadline_seconds=15))

    def deadline_exceeded():
        deployment = json.loads(kubectl("-n", namespace, "get", "deployment", "never-ready", "-o", "json").stdout)
        conditions = {c["type"]: c for c in deployment.get("status", {}).get("conditions", [])}
        progressing = conditions.get("Progressing", {})
        return progressing.get("reason") == "ProgressDeadlineExceeded" and progressing.get("status") == "False"

    _wait_for("ProgressDeadlineExceeded", deadline_exceeded, 120, kubectl, namespace)
    pod = _pod(kubectl, namespace, "never-ready")
    assert pod["status"]["phase"] == "Running"
    status = pod["status"]["containerStatuses"][0]
    assert status["started"] is True and status["ready"] is False and status["restartCount"] == 0


def _leftovers(stack_dir: Path) -> dict:
    """What of the real node still exists on this machine."""
    base = stack_dir / "realnode"
    socket = str(base / "containerd.sock")
    processes = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if socket in argv or any(a.startswith(str(stack_dir / "bin" / "kubelet")) for a in argv[:1]) or \
                    any(str(base / "containerd.toml") == a for a in argv):
                processes.append(" ".join(argv))
    in_cgroup = set()
    for procs in Path("/sys/fs/cgroup").glob("*/slipway-realnode/**/cgroup.procs"):
        in_cgroup.update(procs.read_text().split())
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if line.split()[4].startswith(str(base))]
    netns_dir = base / "containerd-state" / "io.containerd.grpc.v1.cri" / "netns"
    netns = sorted(p.name for p in netns_dir.glob("*")) if netns_dir.exists() else []
    bridge = subprocess.run(["ip", "link", "show", "slipway0"], capture_output=True, check=False).returncode == 0
    found = {"processes": processes, "cgroup pids": sorted(in_cgroup), "mounts": mounts, "netns": netns,
             "bridge slipway0": bridge}
    return {key: value for key, value in found.items() if value}


def test_down_leaves_nothing_running_then_up_again(namespace, kubectl, stack_dir):
    running = _leftovers(stack_dir)
    assert running.get("processes") and running.get("netns"), f"pods should be running before down: {running}"
    result = subprocess.run([sys.executable, str(ROOT / "hack" / "realnode.py"), "down"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _leftovers(stack_dir) == {}
    assert kubectl("get", "node", NODE, check=False).returncode != 0

    elapsed = _up_real_node()
    print(f"\nhack/stack.py up --real-node after down: node Ready in {elapsed:.1f}s")
    node = json.loads(kubectl("get", "node", NODE, "-o", "json").stdout)
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
