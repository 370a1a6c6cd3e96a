"""Whether the real node's parts answer: containerd, the kubelet, the node's Ready condition, its DNS."""

from __future__ import annotations

import calendar
import contextlib
import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from stacklib.kubeapi import kubectl
from stacklib.proc import run, running_pid
from stacklib.realnode.dns import dns_answers
from stacklib.realnode.layout import (
    BASE,
    CGROUP_PARENT,
    CLUSTER_DOMAIN,
    CONTAINERD_SOCK,
    DNS_PORT,
    KUBELET_HEALTHZ_PORT,
    KUBELET_HOME,
    KUBELET_PORT,
    NODE_IP,
    NODE_NAME,
    POD_SUBNET,
)
from stacklib.realnode.netpol import enforcer_healthy


def ctr(*args: str, check: bool = True, namespace: str = "k8s.io") -> subprocess.CompletedProcess:
    return run(["ctr", "--address", str(CONTAINERD_SOCK), "--namespace", namespace, *args],
               check=check)


def containerd_answers() -> bool:
    if not CONTAINERD_SOCK.exists():
        return False
    result = subprocess.run(["ctr", "--address", str(CONTAINERD_SOCK), "--timeout", "2s", "version"],
                            capture_output=True)
    return result.returncode == 0


def kubelet_healthy() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{KUBELET_HEALTHZ_PORT}/healthz", timeout=2) as resp:  # noqa: S310
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def node_object() -> dict | None:
    result = kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def node_ready(since: float = 0.0) -> bool:
    """The node reports Ready, in a heartbeat sent at or after ``since`` (epoch seconds)."""
    node = node_object() or {}
    for condition in node.get("status", {}).get("conditions", []):
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            beat = calendar.timegm(time.strptime(condition["lastHeartbeatTime"], "%Y-%m-%dT%H:%M:%SZ"))
            return beat >= int(since)
    return False


def cgroup_roots() -> list[Path]:
    """Every mounted cgroup hierarchy (v1 controllers and, on hybrid hosts, the unified one)."""
    roots = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        fstype = fields[fields.index("-") + 1]
        if fstype in ("cgroup", "cgroup2"):
            roots.append(Path(fields[4]))
    return roots


def our_mounts() -> list[str]:
    """Mount points under the node's folder (netns bind mounts, container rootfs, pod volumes), deepest first."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(BASE) or point.startswith(f"{BASE}/"):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def our_pids() -> set[int]:
    """Processes in the node's cgroup (pods) and containerd shims serving our socket."""
    pids: set[int] = set()
    for root in cgroup_roots():
        for procs in (root / CGROUP_PARENT).rglob("cgroup.procs") if (root / CGROUP_PARENT).exists() else []:
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in procs.read_text().split())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if argv and argv[0].endswith(b"containerd-shim-runc-v2") and str(CONTAINERD_SOCK).encode() in argv:
                pids.add(int(proc.name))
    return pids


def kubelet_home_is_private(pid: int) -> bool:
    """Whether a running kubelet has the node's own HOME (see ``ensure_kubelet``)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"HOME={KUBELET_HOME}".encode() in environ


def components() -> list[tuple[str, bool, str]]:
    pid = running_pid("realnode-kubelet")
    # a kubelet started by an older version, with root's HOME, is restarted by the next up
    kubelet_ok = pid is not None and kubelet_home_is_private(pid) and kubelet_healthy()
    return [
        ("real-node containerd", running_pid("realnode-containerd") is not None and containerd_answers(),
         str(CONTAINERD_SOCK)),
        ("real-node kubelet", kubelet_ok, f"https://{NODE_IP}:{KUBELET_PORT}"),
        ("real-node Ready", kubelet_ok and node_ready(), f"node {NODE_NAME} ({POD_SUBNET})"),
        ("real-node DNS", running_pid("realnode-dns") is not None and dns_answers(),
         f"{NODE_IP}:{DNS_PORT} (*.svc.{CLUSTER_DOMAIN})"),
        ("real-node NetworkPolicy", running_pid("netpol") is not None and enforcer_healthy(),
         "kube-router firewall (iptables + ipset)"),
    ]
