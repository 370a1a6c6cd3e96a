"""Provisioning faults (issue 13), on the session's lab cluster (conftest ``lab_cluster``): an unreachable host; a
worker killed in the middle of its provisioning (the re-run completes); the control-plane machine restarted
(workloads keep running and answering, every node returns to Ready). Each fails with a message naming what is
wrong, and leaves nothing half-done.

The tests that kill or restart a lab machine are ``disruptive``: ``make integration`` runs them last, in a session
of their own, and each leaves the 1 + 2 cluster Ready again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid

import pytest
import yaml
from fixtures.provision.support import (
    CONTROL,
    CREDENTIALS,
    FIRST_THREE,
    INVENTORY,
    PLAYBOOK_BIN,
    ROOT,
    WORKER_A,
    WORKER_B,
    PlaybookRun,
    kubectl,
    lab_up,
    on_machine,
    playbook,
    ready_nodes,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow]

# Where the worker is killed: its kubelet binary is installed, the unit not yet written nor the node joined.
KUBELET_UNIT_TASK = "kubelet : Kubelet unit]"


def wait_until(condition, what: str, timeout: float = 300, every: float = 3):
    """The condition's truthy value, polled; a failure says what never happened."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, KeyError, ValueError) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s (last: {last!r})")


def all_ready() -> dict[str, bool]:
    nodes = ready_nodes()
    return nodes if nodes and all(nodes.values()) else {}


def test_an_unreachable_host_fails_naming_it_and_changes_nothing_on_the_others(lab_cluster, lab_vars, tmp_path):
    # A copy of the lab's inventory in which worker B's address answers nobody: an unused address of the lab's own
    # network (traffic stays on the lab network), as when a machine is down or its address is wrong.
    inventory = tmp_path / "inventory"
    shutil.copytree(INVENTORY, inventory, ignore=shutil.ignore_patterns(".credentials"))
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    address = hosts["all"]["hosts"][WORKER_B]["ansible_host"]
    nobody = address.rsplit(".", 1)[0] + ".254"
    hosts["all"]["hosts"][WORKER_B]["ansible_host"] = nobody
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    run = playbook_on(inventory, "provision.yml", *FIRST_THREE, "-e",
                      f"slipway_cluster_credentials_dir={CREDENTIALS}", extra_vars=lab_vars)

    assert run.returncode != 0, run.output[-4000:]
    assert f"fatal: [{WORKER_B}]: UNREACHABLE!" in run.output, run.output[-4000:]
    assert nobody in run.output, run.output[-4000:]
    assert run.recap[WORKER_B]["unreachable"] == 1, run.recap
    for host in (CONTROL, WORKER_A):
        assert run.recap[host]["failed"] == 0 and run.recap[host]["unreachable"] == 0, run.recap
    assert run.changed_hosts() == {}, run.output[-8000:]
    # The machine itself was never touched, and the cluster is as it was.
    assert all_ready() == {WORKER_A: True, WORKER_B: True}


def playbook_on(inventory, name: str, *args: str, extra_vars) -> PlaybookRun:
    """provision.yml on another inventory folder than the lab's (support.playbook runs on the lab's own)."""
    argv = [str(PLAYBOOK_BIN), "-i", str(inventory), str(ROOT / "playbooks" / name), *args, "-e", f"@{extra_vars}"]
    begin = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=1800, cwd=ROOT,
                            env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1"))
    return PlaybookRun(result.returncode, result.stdout + result.stderr, time.monotonic() - begin)


@pytest.mark.disruptive
def test_a_worker_killed_mid_run_is_provisioned_by_the_rerun(lab_cluster, lab_vars, docker):
    """Worker B is removed (drained, deleted, wiped) and provisioned again; its machine dies (docker kill: power off)
    while the kubelet role runs on it; it boots again, and the same playbook run again completes with the node
    Ready and a third run changing nothing. Worker B, not a fourth machine: the 1 + 2 cluster is whole afterwards
    either way, and a lab of three machines is all this test needs."""
    removed = playbook("remove_node.yml", "-e", json.dumps({"slipway_remove_nodes": [WORKER_B]}),
                       extra_vars=lab_vars)
    assert removed.returncode == 0, removed.output[-4000:]
    argv = [str(PLAYBOOK_BIN), "-i", str(INVENTORY), str(ROOT / "playbooks" / "provision.yml"), "--limit", WORKER_B,
            "-e", f"@{lab_vars}"]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", PYTHONUNBUFFERED="1")
    interrupted = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env)
    seen = []
    try:
        for line in interrupted.stdout:
            seen.append(line)
            if KUBELET_UNIT_TASK in line:
                docker("kill", WORKER_B)
                break
        rest = interrupted.communicate(timeout=900)[0]
    finally:
        if interrupted.poll() is None:
            interrupted.kill()
        lab_up(3)  # starts the killed machine and waits for systemd and sshd: a reboot
    output = "".join(seen) + (rest or "")
    assert any(KUBELET_UNIT_TASK in line for line in seen), output[-4000:]
    assert interrupted.returncode != 0, output[-4000:]
    assert f"fatal: [{WORKER_B}]: UNREACHABLE!" in output or f"fatal: [{WORKER_B}]: FAILED!" in output, output[-4000:]

    again = playbook("provision.yml", "--limit", WORKER_B, extra_vars=lab_vars)
    assert again.returncode == 0, again.output[-6000:]
    assert set(again.changed_hosts()) <= {WORKER_B}, again.recap
    ready = wait_until(all_ready, "every node Ready after the re-run", timeout=120)
    assert ready == {WORKER_A: True, WORKER_B: True}
    third = playbook("provision.yml", "--limit", WORKER_B, extra_vars=lab_vars)
    assert third.returncode == 0 and third.changed_hosts() == {}, third.output[-6000:]


@pytest.fixture
def web_on_worker(lab_cluster, docker, stack):
    """A small web server on worker A, its pod address and the namespace (removed afterwards)."""
    image = f"{stack['SLIPWAY_REGISTRY']}/slipway-lab/busybox:stable"
    docker("tag", "slipway/busybox:stable", image)
    docker("push", "-q", image)
    namespace = f"provision-faults-{uuid.uuid4().hex[:6]}"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": namespace},
           "spec": {"nodeSelector": {"kubernetes.io/hostname": WORKER_A}, "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "web", "image": image, "ports": [{"containerPort": 8080}],
                                    # /tmp: the image's root is not writable by the unprivileged user.
                                    "command": ["sh", "-c", "mkdir -p /tmp/www && echo up > /tmp/www/index.html"
                                                " && exec httpd -f -p 8080 -h /tmp/www"],
                                    "securityContext": {"runAsUser": 10001, "runAsGroup": 10001},
                                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}
    kubectl("create", "namespace", namespace)
    try:
        kubectl("apply", "-f", "-", stdin=json.dumps(pod))
        kubectl("-n", namespace, "wait", "pod/web", "--for=condition=Ready", "--timeout=180s")
        yield namespace, json.loads(kubectl("-n", namespace, "get", "pod", "web", "-o", "json").stdout)
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def answers(host: str, address: str) -> str:
    """The body a pod address serves, fetched from a lab machine (so the API plays no part)."""
    fetch = f"urllib.request.urlopen('http://{address}:8080/', timeout=5).read().decode()"
    return on_machine(host, "python3", "-c", f"\"import urllib.request; print({fetch})\"").stdout.strip()


@pytest.mark.disruptive
def test_a_control_plane_restart_keeps_workloads_running_and_nodes_return_to_ready(web_on_worker, docker):
    namespace, before = web_on_worker
    address = before["status"]["podIP"]
    assert answers(WORKER_B, address) == "up"

    docker("restart", "--time", "10", CONTROL)  # the machine reboots: etcd, the API server and the rest come back
    # While the API is (or may still be) away, the pod keeps serving, from the other worker too.
    assert answers(WORKER_B, address) == "up"
    lab_up(3)  # waits for systemd and sshd on the rebooted machine

    assert wait_until(all_ready, "every node Ready after the control-plane restart") == {WORKER_A: True,
                                                                                         WORKER_B: True}
    after = json.loads(kubectl("-n", namespace, "get", "pod", "web", "-o", "json").stdout)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["status"]["containerStatuses"][0]["restartCount"] == 0
    assert after["status"]["containerStatuses"][0]["containerID"] == before["status"]["containerStatuses"][0][
        "containerID"]
    assert answers(WORKER_B, address) == "up"
    # The rebooted control plane reaches pods again (API server to webhooks): slipway-pod-routes made its routes.
    assert wait_until(lambda: answers(CONTROL, address) == "up", "the control plane reaching the pod", timeout=60)
