"""``up`` for the real node: host packages, pod network, pull secrets, and the order of every step."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from stacklib.config import DEPLOYER_NAMESPACES, PORTS, REGISTRY_USER
from stacklib.kubeapi import kubectl
from stacklib.proc import run, say, step, wait_until
from stacklib.realnode.containerd import ensure_containerd, ensure_pause_image
from stacklib.realnode.dns import ensure_dns
from stacklib.realnode.kubelet import (
    ensure_apiserver_reaches_kubelet,
    ensure_credentials,
    ensure_kubelet,
    ensure_kubelet_binary,
)
from stacklib.realnode.layout import (
    BASE,
    BRIDGE,
    FORWARD_RULE,
    HOST_PACKAGES,
    LOG,
    MARKER,
    NODE_IP,
    NODE_NAME,
    POD_SUBNET,
    PULL_SECRET,
)
from stacklib.realnode.netpol import ensure_netpol
from stacklib.registry import registry_password


@step("real node: host packages (containerd, runc, CNI plugins)")
def ensure_host_packages() -> str:
    missing = [pkg for pkg, path in HOST_PACKAGES.items() if not Path(path).exists()]
    if not missing:
        return "all present"
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], log=LOG, env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], log=LOG, env=env)
    return f"installed {' '.join(missing)}"


@step(f"real node: pod network (bridge {BRIDGE}, {POD_SUBNET})")
def ensure_network() -> str:
    cni_conf = BASE / "cni" / "net.d"
    cni_conf.mkdir(parents=True, exist_ok=True)
    (cni_conf / "10-slipway.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "slipway-real",
        "plugins": [{
            "type": "bridge", "bridge": BRIDGE, "isGateway": True, "isDefaultGateway": False,
            "ipMasq": False, "hairpinMode": True,
            "ipam": {"type": "host-local", "dataDir": str(BASE / "cni" / "ipam"),
                     "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP}]]},
        }],
    }, indent=2))
    created = []
    if run(["ip", "link", "show", BRIDGE], check=False).returncode != 0:
        run(["ip", "link", "add", BRIDGE, "type", "bridge"], log=LOG)
        created.append("bridge")
    if NODE_IP not in run(["ip", "-4", "addr", "show", "dev", BRIDGE]).stdout.decode():
        run(["ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE], log=LOG)
        created.append("address")
    run(["ip", "link", "set", BRIDGE, "up"], log=LOG)
    # Docker's FORWARD policy is DROP and bridged frames pass iptables here (br_netfilter): allow
    # pod-to-pod traffic on our bridge, and only there.
    if run(["iptables", "-C", *FORWARD_RULE], check=False).returncode != 0:
        run(["iptables", "-I", *FORWARD_RULE], log=LOG)
        created.append("forward rule")
    return f"created {', '.join(created)}" if created else "present"


def pull_secret(namespace: str) -> dict:
    registry = f"127.0.0.1:{PORTS['registry']}"
    password = registry_password()
    auth = base64.b64encode(f"{REGISTRY_USER}:{password}".encode()).decode()
    config = {"auths": {registry: {"username": REGISTRY_USER, "password": password, "auth": auth}}}
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": PULL_SECRET, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "slipway-stack"}},
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}}


@step("real node: registry pull secret")
def ensure_pull_secrets(namespaces: list[str] | None = None) -> str:
    """The registry's credentials as an imagePullSecret, attached to each namespace's default service account."""
    namespaces = namespaces or DEPLOYER_NAMESPACES
    for namespace in namespaces:
        install_pull_secret(namespace)
    return f"secret {PULL_SECRET} on the default service account of {', '.join(namespaces)}"


def install_pull_secret(namespace: str) -> None:
    kubectl("apply", "--server-side", "--field-manager=slipway-stack", "-f", "-",
            stdin=json.dumps(pull_secret(namespace)).encode(), log=LOG)
    wait_until(lambda: kubectl("-n", namespace, "get", "serviceaccount", "default",
                               check=False).returncode == 0,
               f"default service account in {namespace}", LOG, timeout=30)
    account = json.loads(kubectl("-n", namespace, "get", "serviceaccount", "default", "-o", "json").stdout)
    secrets = account.get("imagePullSecrets", [])
    if {"name": PULL_SECRET} not in secrets:
        patch = {"imagePullSecrets": [*secrets, {"name": PULL_SECRET}]}
        kubectl("-n", namespace, "patch", "serviceaccount", "default", "--type=merge", "-p", json.dumps(patch),
                log=LOG)


def up() -> None:
    begin = time.monotonic()
    BASE.mkdir(parents=True, exist_ok=True)
    ensure_host_packages()
    ensure_kubelet_binary()
    ensure_network()
    ensure_containerd()
    ensure_pause_image()
    ensure_credentials()
    ensure_apiserver_reaches_kubelet()
    ensure_dns()
    MARKER.write_text(NODE_NAME)
    ensure_kubelet()
    ensure_netpol()
    ensure_pull_secrets()
    say(f"real node {NODE_NAME} Ready {time.monotonic() - begin:.1f}s after the real-node steps began")
