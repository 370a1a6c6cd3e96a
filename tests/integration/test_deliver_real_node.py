"""The delivery engine against what a real node really does: pulls that heal or cannot, containers that really exit,
a new image digest rolling a Deployment.

Every workload here runs on the stack's real node (kubelet + containerd) and pulls from the stack's registry; no
status is patched in. Deliveries go through the engine's entry point as the least-privilege deployer; the cluster
and the journal are checked as admin. ``fixtures/broken/README.md`` tells the states a real node shows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from fixtures.deliver.support import Journal, SlipwayError, client_for, registry_pull_secret, run, system
from test_real_node import _wait_for as wait_until

ROOT = Path(__file__).resolve().parents[2]
REAL_NODE = {
    "nodeSelector": {"slipway.io/node-kind": "real"},
    "tolerations": [{"key": "slipway.io/real-node", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
    "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 1,
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_node(stack):
    started = subprocess.run([sys.executable, str(ROOT / "hack" / "stack.py"), "up", "--real-node", "--skip-packages"],
                             capture_output=True, text=True, check=False)
    assert started.returncode == 0, f"hack/stack.py up --real-node failed:\n{started.stdout}\n{started.stderr}"


@pytest.fixture(scope="module")
def registry(stack, docker, stack_dir):
    """The stack's registry, with the docker CLI logged in to push to it."""
    password = (stack_dir / "secrets" / "registry-password").read_text().strip()
    docker("login", "--username", "slipway", "--password-stdin", stack["SLIPWAY_REGISTRY"], input=password)
    return stack["SLIPWAY_REGISTRY"]


@pytest.fixture(scope="module")
def build(docker, registry, tmp_path_factory):
    """Build a busybox image running ``command``, unique to this call (never pulled by the node before), push it;
    return its reference by digest, as the engine delivers images."""
    def build_and_push(command, repository="pull"):
        context = tmp_path_factory.mktemp("image")
        (context / "Dockerfile").write_text(f"FROM slipway/busybox:stable\nLABEL unique={uuid.uuid4().hex}\n"
                                            f"USER 10001:10001\nCMD {json.dumps(command)}\n")
        tag = f"{registry}/slipway-test/{repository}:{uuid.uuid4().hex[:12]}"
        docker("build", "-q", "-t", tag, str(context))
        docker("push", tag)
        digests = json.loads(docker("image", "inspect", "-f", "{{json .RepoDigests}}", tag).stdout)
        return next(d for d in digests if d.startswith(tag.rsplit(":", 1)[0] + "@"))
    return build_and_push


PULL_SECRET = "slipway-registry"  # noqa: S105 - a Secret's name, not a password


def on_real_node(name, image, pull_secret_name=PULL_SECRET):
    labels = {"app": name}
    pod = dict(REAL_NODE, containers=[{"name": "app", "image": image}])
    if pull_secret_name:
        pod["imagePullSecrets"] = [{"name": pull_secret_name}]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "progressDeadlineSeconds": 240, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod}}}


def pod_waiting(kubectl, namespace, app):
    """The waiting reason and message of the app's first pod (``("", "")`` while there is none)."""
    items = json.loads(kubectl("-n", namespace, "get", "pods", "-l", f"app={app}", "-o", "json").stdout)["items"]
    for pod in items:
        for status in pod.get("status", {}).get("containerStatuses") or []:
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason"):
                return waiting["reason"], waiting.get("message", "")
    return "", ""


def deliver_in_background(stack_dir, systems, context, **options):
    outcome, lines = {}, []

    def go():
        try:
            outcome["result"] = run(stack_dir, systems, context, progress=lines.append, **options)[0]
        except SlipwayError as exc:
            outcome["error"] = exc
    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread, outcome, lines


def outcomes(stack_dir, context):
    client = client_for(stack_dir, "admin")
    try:
        return [(r["revision"], r["outcome"]) for r in Journal(client, context).records()]
    finally:
        client.close()


def test_a_pull_refused_until_the_pull_secret_arrives_is_waited_out_and_the_delivery_completes(
        real_node, build, registry, stack_dir, ns, context, kubectl):
    # The pod names a pull secret that does not exist yet: the kubelet pulls without credentials, the registry
    # answers 401 — what a new node sees while the Node authorizer has not yet linked the pod to its secret.
    image = build(["sleep", "3600"])
    thread, outcome, lines = deliver_in_background(
        stack_dir, [system("late", ns, on_real_node("late", image, pull_secret_name="late-registry"))], context,
        wait_timeout=240)
    reason, message = wait_until("the pull refused with 401",
                                 lambda: (r := pod_waiting(kubectl, ns, "late"))[0] and "401" in r[1] and r,
                                 120, kubectl, ns)
    assert reason in ("ErrImagePull", "ImagePullBackOff"), (reason, message)
    assert thread.is_alive(), outcome  # a refusal while the pod has a pull secret does not fail the delivery
    late = registry_pull_secret(stack_dir, registry, ns, "late-registry")
    kubectl("apply", "-f", "-", input=json.dumps(late))
    thread.join(timeout=300)
    assert "result" in outcome, outcome.get("error") and outcome["error"].msg
    assert outcome["result"]["recorded"]
    assert any("waiting out a pull that can heal" in line and "401" in line for line in lines), lines
    assert outcomes(stack_dir, context) == [(1, "succeeded")]


def test_an_image_that_is_not_in_the_registry_fails_the_delivery_at_once_naming_it(
        real_node, registry, stack_dir, ns, context, kubectl):
    kubectl("apply", "-f", "-", input=json.dumps(registry_pull_secret(stack_dir, registry, ns)))
    missing = f"{registry}/slipway-test/never-pushed:{uuid.uuid4().hex[:8]}"
    with pytest.raises(SlipwayError) as err:
        run(stack_dir, [system("app", ns, on_real_node("missing", missing))], context, wait_timeout=240)
    assert f"Deployment {ns}/missing failed: container app " in err.value.msg
    assert "the registry has no such image or tag: build and push it, or fix the reference" in err.value.msg
    assert outcomes(stack_dir, context) == [(1, "failed")]


def test_a_pull_the_registry_refuses_from_a_pod_without_a_pull_secret_fails_at_once_saying_so(
        real_node, build, stack_dir, ns, context):
    image = build(["sleep", "3600"])
    with pytest.raises(SlipwayError) as err:
        run(stack_dir, [system("app", ns, on_real_node("anonymous", image, pull_secret_name=None))], context,
            wait_timeout=240)
    assert "401" in err.value.msg and "the pod has no image pull secret" in err.value.msg


def test_a_container_that_really_exits_fails_the_delivery_with_crashloopbackoff_and_its_restarts(
        real_node, build, registry, stack_dir, ns, context, kubectl):
    kubectl("apply", "-f", "-", input=json.dumps(registry_pull_secret(stack_dir, registry, ns)))
    image = build(["sh", "-c", "echo failing on purpose; exit 3"])
    crasher = on_real_node("crasher", image)
    # Without a readiness probe a container counts as available the moment it starts, before it exits, for the
    # Deployment controller as for kubectl rollout status; minReadySeconds is how a workload asks to be watched.
    crasher["spec"]["minReadySeconds"] = 10
    with pytest.raises(SlipwayError) as err:
        run(stack_dir, [system("app", ns, crasher)], context, wait_timeout=240)
    assert f"Deployment {ns}/crasher failed: container app CrashLoopBackOff" in err.value.msg
    details = json.dumps(err.value.details)
    assert "crasher-" in details and "restarts=" in details
    assert outcomes(stack_dir, context) == [(1, "failed")]


def test_a_new_digest_rolls_the_deployment_and_the_same_digest_does_not(
        real_node, build, registry, stack_dir, ns, context, kubectl):
    kubectl("apply", "-f", "-", input=json.dumps(registry_pull_secret(stack_dir, registry, ns)))
    first, second = build(["sleep", "3600"]), build(["sleep", "3601"])

    def running_image():
        items = json.loads(kubectl("-n", ns, "get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
        ready = [p for p in items if p["metadata"].get("deletionTimestamp") is None
                 and any(c.get("ready") for c in p["status"].get("containerStatuses") or [])]
        return [c["imageID"] for p in ready for c in p["status"]["containerStatuses"]]

    def generation():
        return json.loads(kubectl("-n", ns, "get", "deployment", "web", "-o", "json").stdout)["metadata"]["generation"]

    assert run(stack_dir, [system("web", ns, on_real_node("web", first))], context)[0]["changed"]
    assert running_image() == [first]
    before = generation()
    again = run(stack_dir, [system("web", ns, on_real_node("web", first))], context)[0]
    assert not again["changed"] and again["writes"] == 0 and generation() == before
    rolled = run(stack_dir, [system("web", ns, on_real_node("web", second))], context)[0]
    assert rolled["changed"] and generation() == before + 1
    wait_until("only the new digest running", lambda: running_image() == [second], 120, kubectl, ns)
    assert outcomes(stack_dir, context) == [(1, "succeeded"), (2, "succeeded")]


@pytest.mark.disruptive
def test_a_registry_stopped_during_a_rollout_is_waited_out_and_the_delivery_completes(
        real_node, build, registry, stack_dir, ns, context, kubectl):
    from test_faults import kill, stack_up  # noqa: PLC0415 - the disruptive helpers live with the other faults

    kubectl("apply", "-f", "-", input=json.dumps(registry_pull_secret(stack_dir, registry, ns)))
    image = build(["sleep", "3600"])  # pushed, never pulled by the node: its pull must reach the registry
    kill(stack_dir, "registry")
    try:
        thread, outcome, lines = deliver_in_background(
            stack_dir, [system("app", ns, on_real_node("web", image))], context, wait_timeout=240)
        wait_until("a pull failing on the stopped registry",
                   lambda: (r := pod_waiting(kubectl, ns, "web"))[0] and "refused" in r[1] and r, 120, kubectl, ns)
        assert thread.is_alive(), outcome  # a registry that refuses connections does not fail the delivery
    finally:
        stack_up()
    thread.join(timeout=300)
    assert "result" in outcome, outcome.get("error") and outcome["error"].msg
    assert any("waiting out a pull that can heal" in line and "refused" in line for line in lines), lines
    assert outcomes(stack_dir, context) == [(1, "succeeded")]
