"""The real node's NetworkPolicy enforcement: kube-router's network policy controller (iptables + ipset).

Only its firewall runs (no routes, no service proxy, no BGP), as a stack process like the node's DNS, with an
identity that may only read (pods, namespaces, nodes, services, endpoint slices, NetworkPolicies). It judges the
traffic of this node's pods: bridged pod-to-pod frames pass iptables here (br_netfilter), and traffic to the host
(the DNS at the bridge address) passes INPUT. kube-network-policies was tried first: it sends packets to user
space through nftables' ``queue``, which this kernel lacks (docs/security.md).
"""

from __future__ import annotations

from stacklib.config import BIN, KUBECONFIGS, LOGS
from stacklib.kubeapi import grant_cluster_role
from stacklib.pki import issue_certificate, write_kubeconfig
from stacklib.proc import run, running_pid, start_daemon, step, stop_daemon, wait_until
from stacklib.realnode.layout import LOG, NODE_NAME

IDENTITY = "realnode-netpol"
USER = "slipway:real-node-netpol"
CHAIN = "KUBE-ROUTER-FORWARD"  # kube-router's own chain, jumped to from FORWARD once its firewall is set up
RULES = [
    # it waits for all its informers, services and endpoint slices included, even with the service proxy off
    {"apiGroups": [""], "resources": ["pods", "namespaces", "nodes", "services"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["get", "list", "watch"]},
]


def enforcer_healthy() -> bool:
    # kube-router's health endpoint listens on every interface: it stays off, and its chain in FORWARD tells.
    listed = run(["iptables", "-S", "FORWARD"], check=False)
    return listed.returncode == 0 and f"-j {CHAIN}" in listed.stdout.decode()


def command() -> list[str]:
    return [str(BIN / "kube-router"), f"--kubeconfig={KUBECONFIGS / f'{IDENTITY}.kubeconfig'}",
            f"--hostname-override={NODE_NAME}", "--run-firewall=true", "--run-router=false",
            "--run-service-proxy=false", "--enable-cni=false", "--enable-ipv6=false",
            "--health-port=0", "--metrics-port=0", "--iptables-sync-period=1m"]


@step("real node: NetworkPolicy enforcement (kube-router firewall)")
def ensure_netpol() -> str:
    if running_pid("netpol") and enforcer_healthy():
        return "already running"
    issue_certificate(IDENTITY, f"/CN={USER}")
    write_kubeconfig(IDENTITY)
    grant_cluster_role(USER, RULES, LOG)
    start_daemon("netpol", command())
    wait_until(enforcer_healthy, f"kube-router's {CHAIN} chain", LOGS / "netpol.log", timeout=60, daemon="netpol")
    return f"enforcing NetworkPolicies for the pods of {NODE_NAME}"


def stop_netpol() -> bool:
    """Stop the enforcer and remove its iptables chains and ipsets (the pods are then unfiltered again)."""
    stopped = stop_daemon("netpol")
    if (BIN / "kube-router").exists():
        run([str(BIN / "kube-router"), "--cleanup-config"], check=False, log=LOG)
    return stopped
