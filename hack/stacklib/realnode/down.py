"""``down`` for the real node: everything it started or changed on the host, stopped and removed again."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from stacklib.config import BIN, PKI
from stacklib.kubeapi import apiserver_ready, kubectl
from stacklib.proc import running_pid, say, stop_daemon
from stacklib.realnode.layout import (
    BASE,
    BRIDGE,
    CGROUP_PARENT,
    FORWARD_RULE,
    LEGACY_LOGS,
    MARKER,
    NETNS_DIR,
    NODE_NAME,
    POD_LOGS,
)
from stacklib.realnode.netpol import stop_netpol
from stacklib.realnode.probes import cgroup_roots, containerd_answers, ctr, our_mounts, our_pids


def sandbox_netns_paths() -> list[str]:
    paths = []
    for container in ctr("containers", "ls", "-q", check=False).stdout.decode().split():
        info = ctr("containers", "info", container, check=False)
        if info.returncode != 0:
            continue
        spec = json.loads(info.stdout).get("Spec") or {}
        for namespace in spec.get("linux", {}).get("namespaces", []):
            if namespace.get("type") == "network" and namespace.get("path"):
                paths.append(namespace["path"])
    return paths


def remove_containers() -> int:
    """Kill and delete every container of containerd's k8s.io namespace (the pods of this node)."""
    containers = ctr("containers", "ls", "-q", check=False).stdout.decode().split()
    for container in containers:
        ctr("tasks", "kill", "--all", "--signal", "SIGKILL", container, check=False)
    for container in containers:
        for _ in range(20):
            if ctr("tasks", "delete", "--force", container, check=False).returncode == 0 or \
                    b"not found" in ctr("tasks", "ps", container, check=False).stderr:
                break
            time.sleep(0.25)
        ctr("containers", "delete", container, check=False)
    return len(containers)


def kill_leftovers() -> int:
    pids = our_pids() - {os.getpid()}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.2)
    return len(pids)


def remove_cgroups() -> None:
    for root in cgroup_roots():
        parent = root / CGROUP_PARENT
        if not parent.exists():
            continue
        for folder in sorted((p for p in parent.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        with contextlib.suppress(OSError):
            parent.rmdir()


def restore_sysctls() -> None:
    saved = BASE / "sysctl-before.json"
    if saved.exists():
        for key, value in json.loads(saved.read_text()).items():
            with contextlib.suppress(OSError):
                (Path("/proc/sys") / key).write_text(value)
        saved.unlink()


def remove_network(netns: list[str]) -> None:
    for path in netns:
        subprocess.run(["umount", path], capture_output=True)
        with contextlib.suppress(OSError):
            Path(path).unlink()
    for point in our_mounts():
        subprocess.run(["umount", "-l", point], capture_output=True)
    for path in NETNS_DIR.glob("cni-*"):
        with contextlib.suppress(OSError):
            path.unlink()
    shutil.rmtree(BASE / "cni" / "ipam", ignore_errors=True)  # host-local allocations of the pods just removed
    subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True)
    while subprocess.run(["iptables", "-D", *FORWARD_RULE], capture_output=True).returncode == 0:
        pass
    for link in LEGACY_LOGS.glob("*.log") if LEGACY_LOGS.exists() else []:
        if link.is_symlink() and str(os.readlink(link)).startswith(f"{POD_LOGS}/"):
            link.unlink()
    if (BASE / "created-var-log-containers").exists():
        with contextlib.suppress(OSError):
            LEGACY_LOGS.rmdir()  # only when empty: other tools may have put logs there since
        (BASE / "created-var-log-containers").unlink()


def down() -> None:
    """Stop the kubelet, its pods, containerd and its shims; remove pod netns, mounts, bridge and cgroups."""
    stopped = []
    if stop_netpol():
        stopped.append("NetworkPolicy enforcer")
    if stop_daemon("realnode-kubelet"):
        stopped.append("kubelet")
    netns: list[str] = []
    if running_pid("realnode-containerd") and containerd_answers():
        netns = sandbox_netns_paths()
        removed = remove_containers()
        stopped.append(f"{removed} containers")
    if stop_daemon("realnode-containerd"):
        stopped.append("containerd")
    if stop_daemon("realnode-dns"):
        stopped.append("DNS")
    leftovers = kill_leftovers()
    if leftovers:
        stopped.append(f"{leftovers} leftover processes")
    remove_network(netns)
    remove_cgroups()
    restore_sysctls()
    api_up = (PKI / "ca.crt").exists() and (BIN / "kubectl").exists() and apiserver_ready()
    if api_up and kubectl("delete", "node", NODE_NAME, "--ignore-not-found", "--wait=false", check=False).stdout:
        stopped.append(f"node {NODE_NAME} deleted")
    MARKER.unlink(missing_ok=True)
    say(f"real node: stopped {', '.join(stopped) if stopped else 'nothing was running'}")
