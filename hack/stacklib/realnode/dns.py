"""The real node's cluster DNS: ``<service>.<namespace>.svc.cluster.local`` -> ready pods on the node.

``hack/realnode.py dns`` runs :func:`serve_dns` as a daemon that :func:`ensure_dns` starts.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import struct
import sys
import threading
import time
import urllib.request

from stacklib.config import LOGS, PORTS
from stacklib.kubeapi import grant_cluster_role, tls_context
from stacklib.pki import issue_certificate
from stacklib.proc import running_pid, start_daemon, step, wait_until
from stacklib.realnode.layout import CLUSTER_DOMAIN, DNS_IDENTITY, DNS_PORT, LAUNCHER, LOG, NODE_IP, POD_SUBNET


def dns_records(services: dict, slices: dict) -> dict[str, list[str]]:
    """``<service>.<namespace>.svc.cluster.local`` -> the ready endpoint addresses on the real node.

    The stack runs no kube-proxy, so a ClusterIP leads nowhere: names resolve to the pods behind the
    service instead (like a headless service). Clients must therefore use the port the pods listen on
    (targetPort); addresses outside the pod subnet (kwok's simulated pods) are left out.
    """
    subnet = ipaddress.ip_network(POD_SUBNET)
    ready: dict[tuple[str, str], list[str]] = {}
    for item in slices.get("items", []):
        meta = item["metadata"]
        key = (meta["namespace"], meta.get("labels", {}).get("kubernetes.io/service-name", ""))
        for endpoint in item.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            ready.setdefault(key, []).extend(
                a for a in endpoint.get("addresses", []) if ipaddress.ip_address(a) in subnet)
    return {f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc.{CLUSTER_DOMAIN}":
            sorted(set(ready.get((svc["metadata"]["namespace"], svc["metadata"]["name"]), [])))
            for svc in services.get("items", [])}


def dns_answer(query: bytes, records: dict[str, list[str]]) -> bytes | None:
    """One DNS response (RFC 1035) for one query: A records from ``records``; nothing is forwarded."""
    if len(query) < 17:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    labels, pos = [], 12
    while pos < len(query) and query[pos]:
        if query[pos] & 0xC0 or pos + 1 + query[pos] > len(query):
            return None
        labels.append(query[pos + 1:pos + 1 + query[pos]].decode("ascii", "replace").lower())
        pos += 1 + query[pos]
    if pos + 5 > len(query):
        return None
    qtype = struct.unpack("!H", query[pos + 1:pos + 3])[0]
    question = query[12:pos + 5]
    name = ".".join(labels)
    answers = []
    if name == CLUSTER_DOMAIN or name.endswith(f".{CLUSTER_DOMAIN}"):
        addresses = records.get(name)
        rcode = 3 if addresses is None else 0  # NXDOMAIN for unknown names of the cluster's zone
        if qtype in (1, 255):  # A, ANY
            answers = [struct.pack("!HHHIH", 0xC00C, 1, 1, 5, 4) + ipaddress.ip_address(a).packed
                       for a in addresses or []]
    else:
        rcode = 5  # REFUSED: not a recursive resolver, nothing leaves the machine
    header = struct.pack("!HHHHHH", ident, 0x8400 | (flags & 0x0100) | rcode, 1, len(answers), 0, 0)
    return header + question + b"".join(answers)


def api_get(path: str, identity: str) -> dict:
    url = f"https://127.0.0.1:{PORTS['apiserver']}{path}"
    with urllib.request.urlopen(url, context=tls_context(identity), timeout=5) as response:  # noqa: S310 - fixed 127.0.0.1 URL
        return json.loads(response.read())


def serve_dns() -> None:
    """``hack/realnode.py dns``: the node's cluster DNS on NODE_IP:53 (UDP), refreshed from the API every second."""
    current: dict[str, dict[str, list[str]]] = {"records": {}}

    def refresh() -> None:
        while True:
            with contextlib.suppress(OSError, ValueError, KeyError):  # keep the last good answer meanwhile
                current["records"] = dns_records(api_get("/api/v1/services", DNS_IDENTITY),
                                                 api_get("/apis/discovery.k8s.io/v1/endpointslices", DNS_IDENTITY))
            time.sleep(1)

    threading.Thread(target=refresh, daemon=True).start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind((NODE_IP, DNS_PORT))
        while True:
            query, client = server.recvfrom(512)
            response = dns_answer(query, current["records"])
            if response:
                server.sendto(response, client)


def dns_answers() -> bool:
    query = struct.pack("!HHHHHH", 0x5157, 0x0100, 1, 0, 0, 0) + b"".join(
        bytes([len(label)]) + label.encode() for label in f"kubernetes.default.svc.{CLUSTER_DOMAIN}".split(".")
    ) + b"\0" + struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(1)
        try:
            client.sendto(query, (NODE_IP, DNS_PORT))
            return client.recv(512)[:2] == b"\x51\x57"
        except OSError:
            return False


@step(f"real node: cluster DNS on {NODE_IP}:{DNS_PORT}")
def ensure_dns() -> str:
    if running_pid("realnode-dns") and dns_answers():
        return "already running"
    issue_certificate(DNS_IDENTITY, "/CN=slipway:real-node-dns")
    grant_cluster_role("slipway:real-node-dns", [
        {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
    ], LOG)
    start_daemon("realnode-dns", [sys.executable, str(LAUNCHER), "dns"])
    wait_until(dns_answers, "cluster DNS", LOGS / "realnode-dns.log", timeout=20, daemon="realnode-dns")
    return f"*.svc.{CLUSTER_DOMAIN} -> ready pods on this node"
