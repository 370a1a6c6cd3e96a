"""The provisioning lab (hack/lab.py) on the stack's engine: up gives machines with systemd as PID 1 that Ansible
reaches over SSH, an artifact source whose manifest matches what it serves, and the registry on the lab network;
down leaves nothing. The test runs its own lab (SLIPWAY_LAB=itest), so a lab someone works with is not touched."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LAB_NAME = "itest"
PREFIX = f"slipway-lab-{LAB_NAME}"
BRIDGE = f"slab-{LAB_NAME}"
SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5"]


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "hack" / "lab.py"), *args], capture_output=True, text=True,
                          env=dict(os.environ, SLIPWAY_LAB=LAB_NAME), check=False, timeout=900)


def leftovers(docker, gateway: str) -> dict[str, list[str]]:
    """Everything of the test's lab that could outlive down: containers, volumes, network, bridge, rules, processes
    (the artifact server and the registry forwarder both name the gateway address on their command line)."""
    label = f"label=io.slipway.lab={LAB_NAME}"
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False).stdout
    return {
        "containers": docker("ps", "-aq", "--filter", label).stdout.split(),
        "volumes": docker("volume", "ls", "-q", "--filter", label).stdout.split(),
        "networks": docker("network", "ls", "-q", "--filter", f"name=^{PREFIX}$").stdout.split(),
        "bridge": [BRIDGE] if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True,
                                             check=False).returncode == 0 else [],
        "iptables": [line for line in rules.splitlines() if BRIDGE in line],
        "processes": subprocess.run(["pgrep", "-a", "-f", f"{gateway}[: ]"], capture_output=True,
                                    text=True, check=False).stdout.splitlines(),
    }


@pytest.fixture(scope="module")
def lab_up(stack, docker):
    up = lab("up", "--machines", "2")
    if up.returncode != 0:
        lab("down")
        pytest.fail(f"hack/lab.py up failed:\n{up.stdout}\n{up.stderr}")
    folder = Path(stack["SLIPWAY_STACK_DIR"]) / f"lab-{LAB_NAME}"
    yield folder
    down = lab("down")
    assert down.returncode == 0, down.stdout + down.stderr


def inventory(folder: Path) -> dict:
    return yaml.safe_load((folder / "inventory" / "hosts.yml").read_text())


def ssh(folder: Path, host: str, *command: str) -> subprocess.CompletedProcess:
    address = inventory(folder)["all"]["hosts"][host]["ansible_host"]
    return subprocess.run(["ssh", "-i", str(folder / "id_ed25519"), *SSH_OPTIONS, f"root@{address}", *command],
                          capture_output=True, text=True, check=False, timeout=60)


def test_inventory_groups_the_machines_as_kubespray_does(lab_up):
    hosts = inventory(lab_up)["all"]
    assert set(hosts["hosts"]) == {f"{PREFIX}-1", f"{PREFIX}-2"}
    assert set(hosts["children"]["kube_control_plane"]["hosts"]) == {f"{PREFIX}-1"}
    assert set(hosts["children"]["etcd"]["hosts"]) == {f"{PREFIX}-1"}
    assert set(hosts["children"]["kube_node"]["hosts"]) == {f"{PREFIX}-2"}
    assert hosts["vars"]["ansible_user"] == "root"
    assert oct((lab_up / "inventory" / "group_vars" / "all" / "registry.yml").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("machine", [1, 2])
def test_a_machine_runs_systemd_as_pid_1_and_answers_ssh_with_the_lab_key(lab_up, machine):
    answer = ssh(lab_up, f"{PREFIX}-{machine}", "cat /proc/1/comm; systemctl is-system-running; hostname; "
                                                "systemctl is-active ssh; findmnt -no FSTYPE /var/lib/containerd")
    assert answer.returncode == 0, answer.stderr
    pid_1, system, hostname, sshd, containerd_fs = answer.stdout.split()
    assert (pid_1, system, hostname, sshd) == ("systemd", "running", f"{PREFIX}-{machine}", "active")
    assert containerd_fs != "overlay"  # containerd's snapshots fail on a nested overlayfs: a volume is mounted


def test_machines_have_their_own_host_keys_and_machine_ids(lab_up):
    first, second = (ssh(lab_up, f"{PREFIX}-{n}", "cat /etc/machine-id /etc/ssh/ssh_host_ed25519_key.pub")
                     .stdout.splitlines() for n in (1, 2))
    assert len(first) == len(second) == 2
    assert first[0] != second[0]  # machine-id
    assert first[1].split()[1] != second[1].split()[1]  # host key


def test_ansible_reaches_every_machine_through_the_inventory(lab_up):
    result = subprocess.run(["ansible", "-i", str(lab_up / "inventory"), "all", "-m", "ansible.builtin.ping",
                             "-o"], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == 2


def test_every_artifact_a_machine_downloads_has_the_manifest_checksum(lab_up):
    artifacts = yaml.safe_load((lab_up / "inventory" / "group_vars" / "all" / "artifacts.yml").read_text())
    wanted = artifacts["slipway_artifacts"]
    assert set(wanted) == {"kubelet", "kube-proxy", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                           "kubectl", "etcd", "pause", "kube-router", "gateway-api"}
    script = ("import hashlib, json, sys, urllib.request\n"
              "wanted = json.loads(sys.argv[1])\n"
              "got = {name: hashlib.sha256(urllib.request.urlopen(entry['url']).read()).hexdigest()\n"
              "       for name, entry in wanted.items()}\n"
              "print(json.dumps(got))\n")
    answer = ssh(lab_up, f"{PREFIX}-2", "python3", "-c", _quote(script), _quote(json.dumps(wanted)))
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout) == {name: entry["sha256"] for name, entry in wanted.items()}
    local = hashlib.sha256((Path(os.environ["SLIPWAY_STACK_DIR"]) / "bin" / "kube-proxy").read_bytes()).hexdigest()
    assert wanted["kube-proxy"]["sha256"] == local


def test_a_machine_reaches_the_stack_registry_which_asks_for_credentials(lab_up):
    registry = yaml.safe_load((lab_up / "inventory" / "group_vars" / "all" / "registry.yml").read_text())
    entry = registry["slipway_container_runtime_registries"][0]
    assert entry["name"] == os.environ["SLIPWAY_REGISTRY"]
    script = ("import base64, sys, urllib.request, urllib.error\n"
              "url = sys.argv[1] + '/v2/'\n"
              "try:\n    urllib.request.urlopen(url)\nexcept urllib.error.HTTPError as e:\n    print(e.code)\n"
              "token = base64.b64encode(f'{sys.argv[2]}:{sys.argv[3]}'.encode()).decode()\n"
              "print(urllib.request.urlopen(urllib.request.Request(url, headers={'Authorization': 'Basic ' + token}))"
              ".status)\n")
    answer = ssh(lab_up, f"{PREFIX}-1", "python3", "-c", _quote(script), entry["endpoints"][0], entry["username"],
                 _quote(entry["password"]))
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.split() == ["401", "200"]


def test_a_second_up_changes_nothing_and_adds_a_machine_when_asked(lab_up, docker):
    before = docker("ps", "-q", "--filter", "label=io.slipway.lab=itest", "--no-trunc").stdout.split()
    again = lab("up", "--machines", "2")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "created" not in again.stdout
    assert docker("ps", "-q", "--filter", "label=io.slipway.lab=itest", "--no-trunc").stdout.split() == before


def test_down_leaves_nothing(lab_up, docker):
    """Last in the module: the fixture's own down then finds nothing to do."""
    registry = yaml.safe_load((lab_up / "inventory" / "group_vars" / "all" / "registry.yml").read_text())
    gateway = registry["slipway_container_runtime_registries"][0]["endpoints"][0].split("//")[1].split(":")[0]
    assert leftovers(docker, gateway)["processes"]  # the pattern finds the lab's processes while it is up
    down = lab("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert leftovers(docker, gateway) == {"containers": [], "volumes": [], "networks": [], "bridge": [],
                                          "iptables": [], "processes": []}
    assert not (lab_up / "inventory" / "hosts.yml").exists()
    assert lab("status").returncode == 3


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"
