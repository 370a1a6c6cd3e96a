"""The real node's kubelet: its binary, credentials, configuration and process, joined as node slipway-real-0."""

from __future__ import annotations

import json
import time
from pathlib import Path

from stacklib.config import BIN, KUBE_MODULE, KUBECONFIGS, KUBERNETES_VERSION, LOGS, PKI
from stacklib.control_plane import ensure_apiserver
from stacklib.gobuild import build_go_command, go_command_cached
from stacklib.pki import issue_certificate, write_kubeconfig
from stacklib.proc import StepFailed, running_pid, start_daemon, step, stop_daemon, wait_until
from stacklib.realnode.layout import (
    BASE,
    CGROUP_PARENT,
    CLUSTER_DOMAIN,
    CONTAINERD_SOCK,
    IDENTITY,
    KUBELET_HEALTHZ_PORT,
    KUBELET_HOME,
    KUBELET_PORT,
    KUBELET_ROOT,
    LEGACY_LOGS,
    NODE_IP,
    NODE_LABELS,
    NODE_NAME,
    NODE_TAINT,
    POD_LOGS,
    SERVING,
    SYSCTLS,
)
from stacklib.realnode.probes import cgroup_roots, kubelet_healthy, kubelet_home_is_private, node_ready


@step(f"real node: kubelet {KUBERNETES_VERSION}")
def ensure_kubelet_binary() -> str:
    """Build the kubelet from the control plane's pinned module (hack/kube), with the same version stamp."""
    if go_command_cached("kubelet", KUBERNETES_VERSION):
        return "cached"
    build_go_command("kubelet", KUBE_MODULE, "k8s.io/kubernetes/cmd/kubelet", KUBERNETES_VERSION)
    return "built"


@step("real node: kubelet credentials")
def ensure_credentials() -> str:
    # CN=system:node:<name>, O=system:nodes: the API server's Node authorizer applies to this kubelet.
    issue_certificate(IDENTITY, f"/O=system:nodes/CN=system:node:{NODE_NAME}")
    write_kubeconfig(IDENTITY)
    issue_certificate(SERVING, f"/CN={NODE_NAME}", client=False,
                      server_names=[NODE_IP, NODE_NAME, "127.0.0.1", "localhost"])
    return f"system:node:{NODE_NAME}; kubeconfig {KUBECONFIGS / f'{IDENTITY}.kubeconfig'}"


def apiserver_dials_internal_ip() -> bool:
    pid = running_pid("kube-apiserver")
    if pid is None:
        return False
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return any(a.startswith(b"--kubelet-preferred-address-types=InternalIP") for a in argv)


@step("real node: API server reaches kubelets by InternalIP")
def ensure_apiserver_reaches_kubelet() -> str:
    """logs, exec and port-forward go API server -> kubelet; the node's Hostname does not resolve here."""
    if apiserver_dials_internal_ip():
        return "yes"
    stop_daemon("kube-apiserver")
    ensure_apiserver()
    if not apiserver_dials_internal_ip():
        raise StepFailed("kube-apiserver does not pass --kubelet-preferred-address-types=InternalIP,... "
                         "(hack/stacklib/control_plane.py ensure_apiserver); logs and port-forward to the real node "
                         "would fail")
    return "restarted kube-apiserver with --kubelet-preferred-address-types=InternalIP,Hostname"


def ensure_cgroup_parent() -> None:
    """The kubelet's cgroupRoot must exist in every hierarchy; cpuset children need cpus/mems filled in."""
    for root in cgroup_roots():
        path = root / CGROUP_PARENT
        path.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if (path / name).exists() and not (path / name).read_text().strip():
                (path / name).write_text((root / name).read_text())


def save_host_state() -> None:
    """Record what the kubelet changes on the host whatever its configuration, for down to put back."""
    saved = BASE / "sysctl-before.json"
    if not saved.exists():  # never overwrite: a second up would record the kubelet's own values
        saved.write_text(json.dumps({k: (Path("/proc/sys") / k).read_text().strip() for k in SYSCTLS}))
    if not LEGACY_LOGS.exists():
        (BASE / "created-var-log-containers").touch()


def kubelet_config() -> dict:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "address": NODE_IP, "port": KUBELET_PORT, "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": KUBELET_HEALTHZ_PORT,
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(PKI / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(PKI / f"{SERVING}.crt"), "tlsPrivateKeyFile": str(PKI / f"{SERVING}.key"),
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCK}",
        # This machine has cgroup v1 (cgroupfs, no systemd): 1.35+ refuses v1 unless told.
        "cgroupDriver": "cgroupfs", "failCgroupV1": False, "cgroupRoot": f"/{CGROUP_PARENT}",
        "podLogsDir": str(POD_LOGS), "volumePluginDir": str(BASE / "volume-plugins"),
        "registerNode": True, "registerWithTaints": [NODE_TAINT],
        "maxPods": 40, "serializeImagePulls": False,
        # The node's own small cluster DNS (see serve_dns) on the bridge address.
        "clusterDNS": [NODE_IP], "clusterDomain": CLUSTER_DOMAIN,
        # The disk is shared with the rest of the stack: do not evict or collect images because of it.
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 99, "imageGCLowThresholdPercent": 98,
        "nodeStatusReportFrequency": "10s", "nodeStatusUpdateFrequency": "5s",
        "syncFrequency": "10s", "fileCheckFrequency": "10s",
        "shutdownGracePeriod": "0s",
    }


@step(f"real node: kubelet ({NODE_NAME})")
def ensure_kubelet() -> str:
    begin, started, restarted = time.monotonic(), 0.0, ""
    config, wanted = BASE / "kubelet-config.json", json.dumps(kubelet_config(), indent=2)
    pid = running_pid("realnode-kubelet")
    if pid and (not config.exists() or config.read_text() != wanted or not kubelet_home_is_private(pid)):
        stop_daemon("realnode-kubelet")  # its configuration changed; its pods keep running meanwhile
        restarted = "restarted for a new configuration; "
    if not (running_pid("realnode-kubelet") and kubelet_healthy()):
        started = time.time()  # a Ready condition from before this start does not count
        for folder in (KUBELET_ROOT, POD_LOGS, BASE / "volume-plugins", KUBELET_HOME):
            folder.mkdir(parents=True, exist_ok=True)
        ensure_cgroup_parent()
        save_host_state()
        config.write_text(wanted)
        start_daemon("realnode-kubelet", [
            str(BIN / "kubelet"), f"--config={config}",
            f"--kubeconfig={KUBECONFIGS / f'{IDENTITY}.kubeconfig'}",
            f"--hostname-override={NODE_NAME}", f"--node-ip={NODE_IP}",
            "--node-labels=" + ",".join(f"{k}={v}" for k, v in NODE_LABELS.items()),
            f"--root-dir={KUBELET_ROOT}", "--v=2",
        ], env={"HOME": str(KUBELET_HOME)})
        wait_until(kubelet_healthy, "kubelet /healthz", LOGS / "realnode-kubelet.log", timeout=60,
                   daemon="realnode-kubelet")
    wait_until(lambda: node_ready(started), f"node {NODE_NAME} Ready", LOGS / "realnode-kubelet.log",
               timeout=120, daemon="realnode-kubelet")
    return f"{restarted}node {NODE_NAME} Ready ({time.monotonic() - begin:.1f}s after the kubelet step began)"
