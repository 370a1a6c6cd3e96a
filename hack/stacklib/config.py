"""Where the stack keeps everything, which versions it pins, and the ports and users it sets up.

Everything lives under one state folder: ``.stack/`` at the repository root, or ``$SLIPWAY_STACK_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HACK = ROOT / "hack"
STATE = Path(os.environ.get("SLIPWAY_STACK_DIR", ROOT / ".stack")).resolve()
KUBE_MODULE = HACK / "kube"
KWOK_MODULE = HACK / "kwok"
ETCD_MODULE = HACK / "etcd"
GATEWAY_API_MODULE = HACK / "gateway-api"
DEX_MODULE = HACK / "dex"
KUBE_ROUTER_MODULE = HACK / "kube-router"

KUBERNETES_VERSION = "v1.36.3"
KWOK_VERSION = "v0.8.0"
ETCD_VERSION = "v3.6.8"
GATEWAY_API_VERSION = "v1.6.3"  # keep equal to hack/gateway-api/go.mod
DEX_VERSION = "v0.0.0-20260303133905-11d2eeb52b42"  # dex v2.45.1; keep equal to hack/dex/go.mod
KUBE_ROUTER_VERSION = "v2.10.0"  # keep equal to hack/kube-router/go.mod
# command -> (Go module folder, package, pinned version); each module pins its own dependency tree.
GO_COMMANDS = {
    "etcd": (ETCD_MODULE, "go.etcd.io/etcd/server/v3", ETCD_VERSION),
    "kube-apiserver": (KUBE_MODULE, "k8s.io/kubernetes/cmd/kube-apiserver", KUBERNETES_VERSION),
    "kube-controller-manager": (KUBE_MODULE, "k8s.io/kubernetes/cmd/kube-controller-manager", KUBERNETES_VERSION),
    "kube-scheduler": (KUBE_MODULE, "k8s.io/kubernetes/cmd/kube-scheduler", KUBERNETES_VERSION),
    "kube-proxy": (KUBE_MODULE, "k8s.io/kubernetes/cmd/kube-proxy", KUBERNETES_VERSION),
    "kubectl": (KUBE_MODULE, "k8s.io/kubernetes/cmd/kubectl", KUBERNETES_VERSION),
    "kwok": (KWOK_MODULE, "sigs.k8s.io/kwok/cmd/kwok", KWOK_VERSION),
    "dex": (DEX_MODULE, "github.com/dexidp/dex/cmd/dex", DEX_VERSION),
    "kube-router": (KUBE_ROUTER_MODULE, "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router",
                    KUBE_ROUTER_VERSION),
}
APT_PACKAGES = [
    "docker.io", "docker-registry", "busybox-static", "debootstrap",
    "apache2-utils", "openssl", "iproute2", "ca-certificates",
]

PORTS = {
    "registry": int(os.environ.get("SLIPWAY_REGISTRY_PORT", "5001")),
    "etcd-client": 23790,
    "etcd-peer": 23800,
    "apiserver": int(os.environ.get("SLIPWAY_APISERVER_PORT", "6443")),
    "controller-manager": 10257,
    "scheduler": 10259,
    "kwok": 10247,
}
REGISTRY_USER = "slipway"
DEPLOYER_USER = "slipway:deployer"
DEPLOYER_NAMESPACES = ["slipway-system", "shop"]
# The showroom context's deployer: bound in the showrooms' journal namespace here, and in each showroom's namespaces
# by playbooks/showroom.yml (docs/showrooms.md); never in the contexts' namespaces.
SHOWROOM_DEPLOYER_USER = "slipway:showroom-deployer"
SHOWROOM_JOURNAL_NAMESPACE = "slipway-showrooms"
BASE_IMAGES = {"busybox": "slipway/busybox:stable", "debian": "slipway/debian:bookworm"}

BIN = STATE / "bin"
LOGS = STATE / "logs"
RUN = STATE / "run"
PKI = STATE / "pki"
KUBECONFIGS = STATE / "kube"
SECRETS = STATE / "secrets"
