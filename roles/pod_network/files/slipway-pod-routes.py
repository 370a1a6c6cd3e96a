"""Routes to every other node's podCIDR via that node's InternalIP, kept in step with the Kube API.

Installed by the slipway.platform.pod_network role as the slipway-pod-routes service. Every few seconds it reads
the nodes, then adds, changes or removes its own routes (marked with routing protocol 77, so it never touches a
route it did not make). Pods leaving the pod network for elsewhere are masqueraded behind the node's address.
Standard library only: Debian's python3 is on every node Ansible manages.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import ssl
import subprocess
import sys
import time
import urllib.request

ROUTE_PROTOCOL = "77"


def wanted_routes(nodes: dict, own_name: str) -> dict[str, str]:
    """podCIDR -> InternalIP of every node but ``own_name`` that has both."""
    routes = {}
    for node in nodes.get("items", []):
        name = node.get("metadata", {}).get("name")
        cidr = (node.get("spec") or {}).get("podCIDR")
        addresses = [a["address"] for a in (node.get("status") or {}).get("addresses", [])
                     if a.get("type") == "InternalIP"]
        if name == own_name or not cidr or not addresses:
            continue
        routes[str(ipaddress.ip_network(cidr))] = addresses[0]
    return routes


def current_routes(listing: list[dict]) -> dict[str, str]:
    """``ip -j route show proto 77`` -> destination -> gateway."""
    return {str(ipaddress.ip_network(r["dst"])): r.get("gateway", "") for r in listing if r.get("dst") != "default"}


def route_changes(wanted: dict[str, str], current: dict[str, str]) -> tuple[list[tuple[str, str]], list[str]]:
    """(routes to add or change as (cidr, via), routes to remove) to go from ``current`` to ``wanted``."""
    replace = sorted((cidr, via) for cidr, via in wanted.items() if current.get(cidr) != via)
    remove = sorted(cidr for cidr in current if cidr not in wanted)
    return replace, remove


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def ensure_masquerade(pod_cidr: str) -> None:
    rule = ["POSTROUTING", "-s", pod_cidr, "!", "-d", pod_cidr, "-m", "comment", "--comment",
            "slipway-pod-network", "-j", "MASQUERADE"]
    if run("iptables", "-t", "nat", "-C", *rule).returncode != 0:
        run("iptables", "-t", "nat", "-A", *rule)


def sync_once(args: argparse.Namespace, context: ssl.SSLContext) -> None:
    with urllib.request.urlopen(f"{args.api}/api/v1/nodes", context=context, timeout=10) as response:  # noqa: S310
        nodes = json.loads(response.read())
    listing = json.loads(run("ip", "-j", "route", "show", "proto", ROUTE_PROTOCOL).stdout or "[]")
    replace, remove = route_changes(wanted_routes(nodes, args.node_name), current_routes(listing))
    for cidr, via in replace:
        result = run("ip", "route", "replace", cidr, "via", via, "proto", ROUTE_PROTOCOL)
        print(f"route {cidr} via {via}: {'ok' if result.returncode == 0 else result.stderr.strip()}", flush=True)
    for cidr in remove:
        run("ip", "route", "del", cidr, "proto", ROUTE_PROTOCOL)
        print(f"route {cidr} removed", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--pod-cidr", required=True)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args()
    context = ssl.create_default_context(cafile=args.ca)
    context.load_cert_chain(args.cert, args.key)
    ensure_masquerade(args.pod_cidr)
    while True:
        try:
            sync_once(args, context)
        except (OSError, ValueError) as error:  # the API may be restarting: keep the routes, try again
            print(f"cannot read the nodes: {error}", file=sys.stderr, flush=True)
            if args.once:
                return 1
        if args.once:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
