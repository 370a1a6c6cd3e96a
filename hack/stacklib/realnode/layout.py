"""Names, paths, addresses and ports of the real node: what every part of it agrees on."""

from __future__ import annotations

from pathlib import Path

from stacklib.config import HACK, LOGS, ROOT, RUN, STATE

LAUNCHER = HACK / "realnode.py"  # its ``dns`` command is the node's cluster DNS process
NODE_NAME = "slipway-real-0"
NODE_LABELS = {"slipway.io/node-kind": "real"}
NODE_TAINT = {"key": "slipway.io/real-node", "value": "true", "effect": "NoSchedule"}

BASE = STATE / "realnode"
MARKER = RUN / "real-node"
LOG = LOGS / "realnode.log"
CONTAINERD_SOCK = BASE / "containerd.sock"
CONTAINERD_STATE = BASE / "containerd-state"
NETNS_DIR = CONTAINERD_STATE / "io.containerd.grpc.v1.cri" / "netns"  # netns_mounts_under_state_dir
KUBELET_ROOT = BASE / "kubelet"
# The kubelet's own, empty HOME: the kubelet takes any ~/.docker/config.json as credentials for every pod, so with
# root's HOME a `docker login` on this machine would let pods without a pull secret pull from the registry.
KUBELET_HOME = BASE / "kubelet-home"
POD_LOGS = BASE / "pod-logs"
LEGACY_LOGS = Path("/var/log/containers")  # the kubelet links container logs there, whatever podLogsDir is
IDENTITY = "realnode-kubelet"           # client certificate and kubeconfig of the kubelet
SERVING = "realnode-kubelet-serving"    # the kubelet's serving certificate, signed by the stack CA

# Pod network: a bridge with a private /24 that exists only on this machine. The bridge address is the
# node's InternalIP (the kubelet listens there); pods get no default route and no NAT: nothing leaves.
BRIDGE = "slipway0"
POD_SUBNET = "10.77.0.0/24"
NODE_IP = "10.77.0.1"
FORWARD_RULE = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-m", "comment", "--comment", "slipway-real-node",
                "-j", "ACCEPT"]
CGROUP_PARENT = "slipway-realnode"
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248
PAUSE_IMAGE = "slipway.local/pause:1"
PAUSE_MODULE = ROOT / "hack" / "pause"
CNI_BIN = Path("/usr/lib/cni")
DNS_IDENTITY = "realnode-dns"          # client certificate of the cluster DNS (read services, endpointslices)
DNS_PORT = 53
CLUSTER_DOMAIN = "cluster.local"
PULL_SECRET = "slipway-registry"  # noqa: S105 - the name of a Secret object, not a password
# The kubelet sets these kernel parameters at start; down puts back what was there before.
SYSCTLS = ["vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
           "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"]
HOST_PACKAGES = {"containerd": "/usr/bin/containerd", "runc": "/usr/sbin/runc",
                 "containernetworking-plugins": str(CNI_BIN / "bridge"), "iptables": "/usr/sbin/iptables"}
