"""Faults beyond one bad manifest, on the real local stack: a token revoked mid-run (R9), five deliveries at once
(R13), the API server and etcd restarted mid-delivery, the registry down during a build.

Deliveries run through the engine's entry point (``fixtures/deliver/support.py``) or in processes of their own
(``deliver_once.py``); the cluster, the journal and the Lease are checked as admin, independently of what the
engine says about itself. Tests marked ``disruptive`` kill a component every other test shares: run them alone
(``pytest -m disruptive``), never beside other integration runs.
"""

from __future__ import annotations

# pylint: disable=unused-import  # setup and engine are fixtures: pytest finds them by name in this module
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from fixtures.deliver.outage import CuttableForwarder
from fixtures.deliver.support import (
    API_URL,
    KubeClient,
    Options,
    SlipwayError,
    client_for,
    configmap,
    deliver,
    deployment,
    load_connection,
    run,
    system,
    unique,
)
from test_deliver_lock import ONCE, lease_holder
from test_deliver_playbook import playbook as deliver_playbook
from test_deliver_playbook import setup  # noqa: F401  (a fixture)
from test_image_pipeline import RUN as IMAGE_RUN
from test_image_pipeline import (
    docker,
    engine,  # noqa: F401  (a fixture)
    playbook,
    registry_get,
    registry_tags,
    service,
    task_result,
)
from test_rollback_reliability import journal

ROOT = Path(__file__).resolve().parents[2]
DIGEST_ANNOTATION = "slipway.io/digest"


# ----------------------------------------------------------------------------------------------- journal checks

def assert_journal_matches_the_cluster(stack_dir, delivery_context, kubectl):
    """Revisions 1..n with no gap or double, the last one a success, and every object it recorded live as recorded.

    Returns the records. The recorded digest is the keyed digest the engine put on each object it applied, so an
    object left from another (lost or interleaved) delivery shows as a mismatch.
    """
    records = journal(stack_dir, delivery_context)
    assert [r["revision"] for r in records] == list(range(1, len(records) + 1)), records
    assert records and records[-1]["outcome"] == "succeeded", [(r["revision"], r["outcome"]) for r in records]
    for name, entry in records[-1]["systems"].items():
        for obj in entry["objects"]:
            found = kubectl("get", obj["kind"], obj["name"], "-n", obj["namespace"], "-o", "json", check=False)
            assert found.returncode == 0, f"{name}: {obj['kind']} {obj['name']} of the last release is missing"
            annotations = json.loads(found.stdout)["metadata"].get("annotations") or {}
            assert annotations.get(DIGEST_ANNOTATION) == obj["digest"], f"{name}: {obj['kind']} {obj['name']}"
    return records


# ------------------------------------------------------------------------------- R9: a token revoked mid-run

SERVICE_ACCOUNT = "slipway-token-deployer"


@contextlib.contextmanager
def service_account_identity(stack_dir, kubectl, namespace, folder):
    """A ServiceAccount with the deployer's rights in ``namespace``, and a kubeconfig (in ``folder``) that reads its
    bearer token from a file.

    Tokens come from the TokenRequest API bound to a Secret each: deleting the Secret revokes the token, as an
    expired or rotated-away token is revoked on a real cluster.
    """
    binding = unique("slipway-token-deployer")
    subject = [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}]
    admin = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"}
    objects = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace}},
        # the same rights as the deployer user (hack/stack.py): cluster-wide reads, admin where it delivers
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": binding},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "slipway:deployer"},
         "subjects": subject},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": binding, "namespace": namespace}, "roleRef": admin, "subjects": subject},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": binding, "namespace": "slipway-system"}, "roleRef": admin, "subjects": subject},
    ]
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    kubeconfig = folder / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "token",
        "clusters": [{"name": "stack", "cluster": {"server": API_URL,
                                                   "certificate-authority": str(stack_dir / "pki" / "ca.crt")}}],
        "users": [{"name": "sa", "user": {"tokenFile": "token"}}],  # relative to the kubeconfig, as kubectl reads it
        "contexts": [{"name": "token", "context": {"cluster": "stack", "user": "sa"}}]}))
    try:
        yield TokenIdentity(stack_dir, kubectl, namespace, kubeconfig, folder / "token")
    finally:
        kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found", check=False)
        kubectl("delete", "rolebinding", binding, "-n", "slipway-system", "--ignore-not-found", check=False)


@pytest.fixture
def token_identity(stack_dir, kubectl, ns, tmp_path):
    with service_account_identity(stack_dir, kubectl, ns, tmp_path) as identity:
        yield identity


class TokenIdentity:
    def __init__(self, stack_dir, kubectl, namespace, kubeconfig, token_file):
        self.stack_dir, self.kubectl, self.namespace = stack_dir, kubectl, namespace
        self.kubeconfig, self.token_file = kubeconfig, token_file

    def issue(self, bound_to):
        """A fresh token, valid until the Secret ``bound_to`` is deleted."""
        self.kubectl("create", "secret", "generic", bound_to, "-n", self.namespace)
        return self.kubectl("create", "token", SERVICE_ACCOUNT, "-n", self.namespace, "--bound-object-kind",
                            "Secret", "--bound-object-name", bound_to, "--duration", "10m").stdout.strip()

    def write(self, token):
        """Replace the token file in one rename, as token agents do: a reader never sees half a token."""
        partial = self.token_file.with_suffix(".new")
        partial.write_text(token)
        os.replace(partial, self.token_file)

    def revoke(self, bound_to, token):
        """Delete the token's Secret and wait until the API server rejects the token (it caches successes)."""
        self.kubectl("delete", "secret", bound_to, "-n", self.namespace)
        for _attempt in range(600):
            if rejected(self.stack_dir, token):
                return
            time.sleep(0.1)
        pytest.fail(f"the API server still accepts the token bound to the deleted Secret {bound_to}")

    def client(self):
        return KubeClient(load_connection({"kubeconfig": str(self.kubeconfig), "request_timeout": 30}))


def rejected(stack_dir, token):
    """Whether the API server answers 401 to this bearer token."""
    tls = ssl.create_default_context(cafile=str(stack_dir / "pki" / "ca.crt"))
    request = urllib.request.Request(API_URL + "/api", headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, context=tls, timeout=10):  # noqa: S310 - the stack's https URL
            return False
    except urllib.error.HTTPError as err:
        return err.code == 401


def two_waves(namespace, count, value="1"):
    """``first`` then ``second`` (which depends on it), ``count`` ConfigMaps each: a delivery with a middle."""
    first = [configmap(f"first-{i}", value=value) for i in range(count)]
    second = [configmap(f"second-{i}", value=value) for i in range(count)]
    return [system("first", namespace, *first), system("second", namespace, *second, depends_on=["first"])]


def pause_after(system_name, action):
    """A progress callback that runs ``action`` once, when ``system_name`` is ready and before its dependants start.

    The delivery waits on the callback (it runs on the thread that delivered the system), so whatever ``action``
    does happens between the two waves and nothing of the second wave has been sent yet.
    """
    fired = threading.Event()

    def progress(line):
        if line.startswith(f"{system_name}: ready") and not fired.is_set():
            fired.set()
            action()
    progress.fired = fired
    return progress


def live_values(kubectl, namespace, system_name):
    items = json.loads(kubectl("get", "configmaps", "-n", namespace, "-l", f"slipway.io/system={system_name}",
                               "-o", "json").stdout)["items"]
    return {i["metadata"]["name"]: i["data"]["value"] for i in items}


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_token_revoked_mid_run_is_refreshed_from_the_token_file_and_the_delivery_completes(
        stack_dir, ns, context, kubectl, token_identity):
    identity = token_identity
    token_a = identity.issue("token-a")
    token_b = identity.issue("token-b")
    identity.write(token_a)
    client = identity.client()

    def rotate_when_rejected():
        # The token agent is late: the file still holds the revoked token when the engine is turned away, and
        # the new one arrives only after that (a rotation written before the 401 would prove nothing).
        for _attempt in range(1200):
            if client.unauthorized:
                identity.write(token_b)
                return
            time.sleep(0.05)
    agent = threading.Thread(target=rotate_when_rejected, daemon=True)

    def revoke_a():
        identity.revoke("token-a", token_a)
        agent.start()

    progress = pause_after("first", revoke_a)
    try:
        options = Options(context=context, lock_duration=10, wait_timeout=90, holder="rotating run")
        result = deliver(client, two_waves(ns, 20), options, progress=progress)
    finally:
        client.close()
    assert progress.fired.is_set()
    assert client.token_refreshes >= 1, "the engine never met the revoked token: the test proved nothing"
    assert result["changed"] and result["recorded"] and result["revision"] == 1
    assert result["summary"]["created"] == 40
    assert live_values(kubectl, ns, "first") == {f"first-{i}": "1" for i in range(20)}
    assert live_values(kubectl, ns, "second") == {f"second-{i}": "1" for i in range(20)}
    records = assert_journal_matches_the_cluster(stack_dir, context, kubectl)
    assert [(r["revision"], r["actor"]["holder"]) for r in records] == [(1, "rotating run")]  # recorded once
    assert lease_holder(kubectl, context) is None


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_token_revoked_for_good_fails_cleanly_and_the_next_delivery_repairs_it(
        stack_dir, ns, context, kubectl, token_identity):
    identity = token_identity
    token_a = identity.issue("token-a")
    identity.write(token_a)
    client = identity.client()
    progress = pause_after("first", lambda: identity.revoke("token-a", token_a))
    try:
        with pytest.raises(SlipwayError) as err:
            deliver(client, two_waves(ns, 20), Options(context=context, lock_duration=10, wait_timeout=90,
                                                       holder="revoked run"), progress=progress)
    finally:
        client.close()
    assert progress.fired.is_set()
    assert "401 Unauthorized" in err.value.msg
    assert f"rejected the token in the token file {identity.token_file}" in err.value.msg
    assert "write a valid one to that file" in err.value.msg
    output = json.dumps(err.value.to_result(), default=str)
    assert token_a not in output and token_a.split(".")[1] not in output  # nor the token's claims
    assert "Traceback" not in output
    assert client.token_refreshes == 0  # nothing new to retry with: it failed instead of looping
    # The second wave never started: what was applied is the whole first system, not half of anything.
    assert len(live_values(kubectl, ns, "first")) == 20 and live_values(kubectl, ns, "second") == {}

    identity.write(identity.issue("token-b"))
    repaired, _client = run(stack_dir, two_waves(ns, 20), context, connection={
        "kubeconfig": str(identity.kubeconfig), "client_cert": None, "client_key": None}, holder="repairing run",
        lock_timeout=60)
    # The revoked run could not release its Lease either: the repair waited it out and took it over.
    assert repaired["lock_taken_over_from"] == "revoked run"
    assert live_values(kubectl, ns, "second") == {f"second-{i}": "1" for i in range(20)}
    records = assert_journal_matches_the_cluster(stack_dir, context, kubectl)
    assert [(r["revision"], r["actor"]["holder"]) for r in records] == [(1, "repairing run")]
    assert lease_holder(kubectl, context) is None


def test_a_revoked_token_fails_the_playbook_with_a_clean_unauthorized_and_never_shows_it(
        stack_dir, setup, kubectl):  # noqa: F811 - setup is the imported fixture
    with service_account_identity(stack_dir, kubectl, setup["namespace"], setup["tmp"]) as identity:
        token = identity.issue("token-a")
        identity.write(token)
        identity.revoke("token-a", token)
        # the kubeconfig's token file instead of the inventory's client certificate
        failed = deliver_playbook(setup, "-vvv", "-e", f"slipway_kube_kubeconfig={identity.kubeconfig}",
                                  "-e", "slipway_kube_client_cert=", "-e", "slipway_kube_client_key=",
                                  token="SENTINEL-unused")
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "401 Unauthorized" in output and f"rejected the token in the token file {identity.token_file}" in output
    assert "Traceback" not in output
    assert token not in output and token.split(".")[1] not in output
    assert kubectl("get", "configmap", "alpha-config", "-n", setup["namespace"], check=False).returncode != 0
    assert journal(stack_dir, setup["context"]) == []


# ----------------------------------------------------------------------------- R13: five deliveries at once

def uses_config(name, config):
    """A Deployment whose pods read ``config``: a new config value rolls it out (config-digest annotation)."""
    return deployment(name, pod={"containers": [{"name": "app", "image": "127.0.0.1:5001/app:1",
                                                 "envFrom": [{"configMapRef": {"name": config}}]}]})


def deliver_in_processes(stack_dir, delivery_context, runs, tmp_path, **options):
    """Start one ``deliver_once.py`` per ``(holder, systems)`` at once; return {holder: (result, stderr)}."""
    started = {}
    for holder, systems in runs:
        args = tmp_path / f"{holder}.json"
        args.write_text(json.dumps({"stack_dir": str(stack_dir), "context": delivery_context, "systems": systems,
                                    "options": dict(options, holder=holder)}))
        started[holder] = subprocess.Popen([sys.executable, str(ONCE), str(args)], stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
    finished = {}
    for holder, process in started.items():
        out, err = process.communicate(timeout=600)
        finished[holder] = (json.loads(out.strip().splitlines()[-1]) if out.strip() else None, err)
    return finished


def test_five_deliveries_at_once_all_finish_and_the_journal_keeps_every_one_in_order(
        stack_dir, ns, context, kubectl, tmp_path):
    # A Deployment beside the config keeps every run's wait phase under the lock; it does not read the config, so
    # a loaded cluster's rollouts do not decide the outcome.
    runs = [(f"run-{i}", [system("app", ns, configmap("shared", value=str(i)), deployment("web"))]) for i in range(5)]
    outcomes = deliver_in_processes(stack_dir, context, runs, tmp_path, lock_timeout=600, lock_duration=10,
                                    wait_timeout=300)
    for holder, (result, stderr) in outcomes.items():
        assert result is not None and "Traceback" not in stderr, (holder, stderr)
        # each waits its turn for the lock (lock_timeout is far beyond five short deliveries) and delivers
        assert not result.get("failed"), (holder, result["msg"])
    delivered = {holder: outcome[0] for holder, outcome in outcomes.items()}
    assert sorted(delivered) == [f"run-{i}" for i in range(5)]
    records = assert_journal_matches_the_cluster(stack_dir, context, kubectl)
    # one release per successful run, under the revision it reported, none lost, none twice
    assert sorted((r["revision"], r["actor"]["holder"]) for r in records) == sorted(
        (result["revision"], holder) for holder, result in delivered.items())
    assert all(r["outcome"] == "succeeded" for r in records)
    last = records[-1]["actor"]["holder"]
    assert json.loads(kubectl("get", "configmap", "shared", "-n", ns, "-o", "json").stdout)["data"] == {
        "value": last.split("-")[1]}
    web = json.loads(kubectl("get", "deployment", "web", "-n", ns, "-o", "json").stdout)
    assert web["status"].get("updatedReplicas") == 1 and web["status"].get("availableReplicas") == 1
    assert lease_holder(kubectl, context) is None


def test_an_api_server_out_of_reach_for_a_moment_does_not_let_another_delivery_in(
        stack_dir, ns, context, kubectl):
    """A real connection fault (refused, open connections dropped) between the first delivery and the API server,
    long enough to fail a Lease renewal and shorter than the Lease: the first delivery waits for the server to come
    back and completes; the second, which reaches the server all along, waits for the first."""
    slow = uses_config("web", "settings")
    slow["spec"]["minReadySeconds"] = 20  # the first delivery outlives its Lease duration several times over
    forwarder = CuttableForwarder()
    client = client_for(stack_dir, api_url=forwarder.url)
    outcome = {}

    def first():
        try:
            outcome["first"] = deliver(client, [system("app", ns, configmap("settings", value="first"), slow)],
                                       Options(context=context, lock_duration=8, holder="interrupted run"))
        except SlipwayError as exc:
            outcome["first"] = exc
    running = threading.Thread(target=first, daemon=True)
    running.start()
    try:
        wait_for(lambda: lease_holder(kubectl, context) == "interrupted run"
                 and kubectl("get", "deployment", "web", "-n", ns, check=False).returncode == 0,
                 "the first delivery holding its lock and waiting for the rollout")
        forwarder.cut(3.0)  # longer than a renewal interval (8/3 s), shorter than the Lease
        second = run(stack_dir, [system("app", ns, configmap("settings", value="second"),
                                        uses_config("web", "settings"))], context, holder="second run",
                     lock_timeout=300, wait_timeout=300)[0]
    finally:
        running.join(timeout=300)
        client.close()
        forwarder.close()
    assert isinstance(outcome["first"], dict), outcome["first"]
    assert client.outages >= 1  # the fault was met, and outlasted
    assert "lock_taken_over_from" not in second  # it waited for the first delivery instead of running beside it
    records = assert_journal_matches_the_cluster(stack_dir, context, kubectl)
    assert [(r["revision"], r["actor"]["holder"], r["outcome"]) for r in records] == [
        (1, "interrupted run", "succeeded"), (2, "second run", "succeeded")]


# --------------------------------------------------------------- disruptive: restart a shared component mid-run

def stack_up():
    """``hack/stack.py up`` (restarts whatever is down); the stack must come back for the next test and team."""
    started = subprocess.run([sys.executable, str(ROOT / "hack" / "stack.py"), "up", "--skip-packages"],
                             capture_output=True, text=True, check=False)
    assert started.returncode == 0, f"the stack did not come back:\n{started.stdout}\n{started.stderr}"


def kill(stack_dir, component):
    """SIGKILL a stack daemon by its pid file: no graceful shutdown, as a crash or an OOM kill would leave it."""
    pid = int((stack_dir / "run" / f"{component}.pid").read_text().strip())
    os.kill(pid, signal.SIGKILL)


def wait_for(predicate, what, victim=None):
    for _attempt in range(1200):
        if predicate():
            return
        if victim is not None and victim.poll() is not None:
            pytest.fail(f"the delivery ended before {what}: {victim.stdout.read()} {victim.stderr.read()}")
        time.sleep(0.1)
    pytest.fail(f"never saw {what}")


@pytest.mark.disruptive
@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_a_component_restarted_mid_delivery_leaves_a_consistent_journal(
        stack_dir, ns, context, kubectl, tmp_path, component):
    # minReadySeconds keeps the delivery in its wait for the rollout long enough to kill the component under it
    slow = uses_config("web", "settings")
    slow["spec"]["minReadySeconds"] = 20
    args = tmp_path / "victim.json"
    # the Lease outlives the restart: the API server comes back within the lock's lifetime
    args.write_text(json.dumps({"stack_dir": str(stack_dir), "context": context,
                                "systems": [system("app", ns, configmap("settings", value="before"), slow)],
                                "options": {"holder": "interrupted run", "lock_duration": 90, "wait_timeout": 300}}))
    victim = subprocess.Popen([sys.executable, str(ONCE), str(args)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: lease_holder(kubectl, context) == "interrupted run"
                 and kubectl("get", "deployment", "web", "-n", ns, check=False).returncode == 0,
                 "the delivery holding its lock and waiting for the rollout", victim)
        kill(stack_dir, component)
    finally:
        stack_up()
    # The next delivery starts as soon as the stack is back: it waits for the interrupted one's Lease.
    after = run(stack_dir, [system("app", ns, configmap("settings", value="after"), uses_config("web", "settings"))],
                context, holder="run after the restart", lock_timeout=600, wait_timeout=300)[0]
    out, err = victim.communicate(timeout=600)
    assert "Traceback" not in err, err
    interrupted = json.loads(out.strip().splitlines()[-1])
    # It waited for the API server and completed: recorded, and the run after it came second.
    assert not interrupted.get("failed"), interrupted["msg"]
    assert interrupted["recorded"] and "lock_taken_over_from" not in after
    assert after["changed"] and after["recorded"]
    records = assert_journal_matches_the_cluster(stack_dir, context, kubectl)
    assert [(r["revision"], r["actor"]["holder"], r["outcome"]) for r in records] == [
        (interrupted["revision"], "interrupted run", "succeeded"),
        (after["revision"], "run after the restart", "succeeded")]
    assert json.loads(kubectl("get", "configmap", "settings", "-n", ns, "-o", "json").stdout)["data"] == {
        "value": "after"}
    assert lease_holder(kubectl, context) is None


# ----------------------------------------------------------------- disruptive: the registry down mid-build

@pytest.mark.disruptive
def test_a_registry_that_goes_down_mid_build_fails_the_push_naming_it_and_records_nothing(
        stack_dir, engine, tmp_path):  # noqa: F811 - engine is the imported fixture
    root = tmp_path / "eco"
    name = f"it-{IMAGE_RUN}-regdown"
    marker = uuid.uuid4().hex
    folder = service(root, name)
    # A build step that runs long enough to stop the registry under it: its lookup (registry up) is over, its
    # push has not started. The marker finds the step's container.
    (folder / "Dockerfile").write_text(f"FROM slipway/busybox:stable\nRUN sleep 5 # {marker}\n"
                                       "COPY app.sh /app/app.sh\nUSER 10001\nCMD [\"sh\", \"/app/app.sh\"]\n")
    building = {}

    def build():
        building["run"] = playbook(engine, "build", tmp_path, [name], root)
    builder = threading.Thread(target=build, daemon=True)
    builder.start()
    try:
        wait_for(lambda: marker in docker(engine, "ps", "--no-trunc", "--format", "{{.Command}}").stdout
                 or not builder.is_alive(), "the build step running")
        assert builder.is_alive(), building["run"].stdout[-3000:]
        kill(stack_dir, "registry")
        builder.join(timeout=900)
    finally:
        stack_up()
    down = building["run"]
    assert down.returncode != 0
    failure = task_result(down, name_part="Build and push")
    assert f"docker push of 127.0.0.1:5001/{name}:" in failure["msg"], failure["msg"]
    assert "Traceback" not in down.stdout + down.stderr
    assert not (tmp_path / "reports" / "images-local.json").exists()  # nothing recorded for delivery
    assert registry_tags(engine, name) == []  # nor half-pushed: the registry, back, has no tag for it

    again = playbook(engine, "build", tmp_path, [name], root)
    assert again.returncode == 0, again.stdout[-3000:]
    references = json.loads((tmp_path / "reports" / "images-local.json").read_text())
    tags = registry_tags(engine, name)
    assert len(tags) == 1
    _status, headers, _body = registry_get(engine, f"/v2/{name}/manifests/{tags[0]}", "HEAD")
    assert references[name] == f"127.0.0.1:5001/{name}@{headers['Docker-Content-Digest']}"
