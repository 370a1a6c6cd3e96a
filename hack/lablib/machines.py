"""The lab's network, machines and volumes; its SSH key; waiting until systemd and sshd answer."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

from stacklib.docker import docker
from stacklib.proc import StepFailed, run, step

from lablib.config import (
    BRIDGE,
    GATEWAY,
    KEY,
    LAB,
    LABEL,
    LABEL_VALUE,
    NETWORK,
    PREFIX,
    RUN_FLAGS,
    SUBNET,
    VOLUMES,
    machine_ip,
    machine_name,
)

OURS = f"label={LABEL}={LABEL_VALUE}"  # docker --filter for what this lab created
SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5"]


@step("lab: SSH key")
def ensure_key() -> str:
    if KEY.exists() and KEY.with_suffix(".pub").exists():
        return f"{KEY} (kept)"
    LAB.mkdir(parents=True, exist_ok=True)
    KEY.unlink(missing_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "slipway-lab", "-f", str(KEY)])
    return f"{KEY} generated"


def network_exists() -> bool:
    return docker("network", "inspect", NETWORK, check=False).returncode == 0


# Every machine's systemd, containerd and kubelet take inotify instances from the one host kernel's per-user limit
# (128 by default): with the stack and a few labs up, kubelets exited with "inotify_init: too many open files".
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_INSTANCES_NEEDED = 512


@step("lab: host inotify instances for the machines' kubelets")
def ensure_inotify_instances() -> str:
    current = int(INOTIFY_INSTANCES.read_text())
    if current >= INOTIFY_INSTANCES_NEEDED:
        return f"{current}: enough"
    INOTIFY_INSTANCES.write_text(f"{INOTIFY_INSTANCES_NEEDED}\n")
    return f"raised from {current} to {INOTIFY_INSTANCES_NEEDED}"


@step("lab: network")
def ensure_network() -> str:
    if network_exists():
        return f"{NETWORK} {SUBNET} (exists)"
    docker("network", "create", "--driver", "bridge", "--subnet", SUBNET, "--gateway", GATEWAY,
           "--opt", f"com.docker.network.bridge.name={BRIDGE}", "--label", f"{LABEL}={LABEL_VALUE}", NETWORK)
    return f"{NETWORK} {SUBNET} created (gateway {GATEWAY}, host bridge {BRIDGE})"


def machines() -> dict[int, str]:
    """The lab's machines that exist, running or not: index -> container state."""
    listed = docker("ps", "-a", "--filter", OURS, "--format", "{{.Names}} {{.State}}",
                    check=False).stdout.decode().split("\n")
    found = {}
    for line in filter(None, listed):
        name, state = line.split()
        if name.startswith(f"{PREFIX}-") and name.rsplit("-", 1)[1].isdigit():
            found[int(name.rsplit("-", 1)[1])] = state
    return dict(sorted(found.items()))


def volume_name(index: int, purpose: str) -> str:
    return f"{machine_name(index)}-{purpose}"


def start_machine(index: int, image: str) -> None:
    name = machine_name(index)
    volumes = [arg for purpose, path in VOLUMES.items() for arg in ("-v", f"{volume_name(index, purpose)}:{path}")]
    for purpose in VOLUMES:
        docker("volume", "create", "--label", f"{LABEL}={LABEL_VALUE}", volume_name(index, purpose))
    extra = []
    # The kubelet's OOM watcher reads the kernel log; it refuses to start without it.
    if Path("/dev/kmsg").exists():
        extra += ["--device", "/dev/kmsg:/dev/kmsg"]
    # Kernel modules are loadable inside only when the host has its module tree (node_prep reports either way).
    if Path("/lib/modules").is_dir():
        extra += ["-v", "/lib/modules:/lib/modules:ro"]
    # systemd shuts down cleanly on SIGRTMIN+3 (docker stop); docker import cannot set STOPSIGNAL in the image.
    # An empty /etc/machine-id is filled from container_uuid, or else from the host's DMI UUID: the same on every
    # machine, which the kubelet and journald would share.
    docker("run", "--detach", "--name", name, "--stop-signal", "SIGRTMIN+3", "--hostname", name,
           "--env", f"container_uuid={uuid.uuid4()}",
           "--network", NETWORK, "--ip", machine_ip(index),
           "--label", f"{LABEL}={LABEL_VALUE}", *RUN_FLAGS, *volumes, *extra, image)


def install_key(index: int) -> None:
    public = KEY.with_suffix(".pub").read_bytes()
    docker("exec", "-i", machine_name(index), "sh", "-c",
           "umask 077 && mkdir -p /root/.ssh && cat > /root/.ssh/authorized_keys", stdin=public)


def system_state(index: int) -> str:
    """systemctl is-system-running inside the machine (running, degraded, starting, ... or offline)."""
    result = docker("exec", machine_name(index), "systemctl", "is-system-running", check=False)
    return result.stdout.decode().strip() or "offline"


def failed_units(index: int) -> str:
    result = docker("exec", machine_name(index), "systemctl", "--failed", "--no-legend", "--plain", check=False)
    return " ".join(line.split()[0] for line in result.stdout.decode().splitlines() if line.strip())


def ssh(index: int, *command: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh", "-i", str(KEY), *SSH_OPTIONS, f"root@{machine_ip(index)}", *command],
                          capture_output=True, text=True, timeout=timeout, check=False)


def ssh_answers(index: int) -> bool:
    try:
        return ssh(index, "true", timeout=15).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def wait_ready(index: int, timeout: float = 120) -> str:
    """Wait for systemd to finish booting and sshd to accept the key; a failed unit fails the machine."""
    deadline = time.monotonic() + timeout
    state = "offline"
    while time.monotonic() < deadline:
        state = system_state(index)
        if state in ("running", "degraded"):
            break
        time.sleep(0.5)
    if state != "running":
        units = failed_units(index) if state == "degraded" else ""
        raise StepFailed(f"{machine_name(index)}: systemd is {state!r} after {timeout:.0f}s"
                         + (f" (failed units: {units}; see `docker exec {machine_name(index)} systemctl status`)"
                            if units else ""))
    while time.monotonic() < deadline:
        if ssh_answers(index):
            return state
        time.sleep(0.5)
    raise StepFailed(f"{machine_name(index)}: sshd does not accept the lab key at root@{machine_ip(index)}; "
                     f"see `docker exec {machine_name(index)} journalctl -u ssh`")


@step("lab: machines")
def ensure_machines(count: int, image: str) -> str:
    existing = machines()
    started, created = [], []
    for index in range(1, count + 1):
        if index not in existing:
            start_machine(index, image)
            created.append(machine_name(index))
        elif existing[index] != "running":
            docker("start", machine_name(index))
            started.append(machine_name(index))
    ready = sorted(set(range(1, count + 1)) | set(existing))
    for index in ready:
        install_key(index)
        wait_ready(index)
    said = [f"{len(ready)} running, systemd `running`, SSH as root with {KEY.name}"]
    if created:
        said.append(f"created {', '.join(created)}")
    if started:
        said.append(f"started {', '.join(started)}")
    return "; ".join(said)


def remove_everything() -> list[str]:
    """Every container, volume and network carrying the lab's label (and the network by name)."""
    removed = []
    containers = docker("ps", "-aq", "--filter", OURS, check=False).stdout.decode().split()
    if containers:
        docker("rm", "--force", "--volumes", *containers)
        removed.append(f"{len(containers)} machine(s)")
    volumes = docker("volume", "ls", "-q", "--filter", OURS, check=False).stdout.decode().split()
    if volumes:
        docker("volume", "rm", "--force", *volumes)
        removed.append(f"{len(volumes)} volume(s)")
    if network_exists():
        docker("network", "rm", NETWORK)
        removed.append(f"network {NETWORK}")
    return removed
