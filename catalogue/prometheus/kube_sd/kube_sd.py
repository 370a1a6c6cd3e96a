# SPDX-License-Identifier: GPL-3.0-or-later
"""Kubernetes service discovery for Prometheus, as files: Debian's prometheus is built without kubernetes_sd.

Every INTERVAL seconds it lists, through the Kube API as the pod's service account, the nodes, the pods and the
endpoint slices of the services it is asked about, and writes Prometheus file_sd JSON files into OUT:

  nodes.json          each node's kubelet (InternalIP:10250), __meta_kubernetes_node_name/_label_*
  pods.json           each pod with an IP and a slipway.io/metrics-port annotation (the others are never scraped),
                      __meta_kubernetes_namespace, __meta_kubernetes_pod_name/_ip/_phase/_label_*/_annotation_*
  service-<namespace>-<name>.json
                      the ready endpoints of a Service, one target per port, __meta_kubernetes_endpoint_port_name

The labels are those kubernetes_sd_configs gives, so prometheus.yml's relabelling reads the same either way.
A file is replaced only when its content changes (written beside and renamed: Prometheus never reads half of one).

From the same pod list it serves, on METRICS_ADDRESS (the pod's loopback: Prometheus beside it scrapes it), the two
kube-state-metrics series the default alert rules need and nothing else here provides (cAdvisor under containerd
1.6 with cgroupfs labels no container): kube_pod_container_status_restarts_total and
kube_pod_container_status_waiting_reason.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
KUBELET_PORT = 10250
METRICS_PORT_ANNOTATION = "slipway.io/metrics-port"
PAGE = 250  # objects per list request: a cluster of thousands of pods is read a page at a time
_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def meta_name(key):
    """A label or annotation key as Prometheus's Kubernetes discovery spells it in a meta label."""
    return _UNSAFE.sub("_", key)


def labelled(prefix, mapping):
    return {f"{prefix}{meta_name(k)}": str(v) for k, v in (mapping or {}).items()}


def node_targets(nodes):
    found = []
    for node in nodes:
        addresses = {a.get("type"): a.get("address") for a in (node.get("status") or {}).get("addresses") or []}
        address = addresses.get("InternalIP") or addresses.get("Hostname")
        if not address:
            continue
        metadata = node.get("metadata") or {}
        labels = dict(labelled("__meta_kubernetes_node_label_", metadata.get("labels")),
                      __meta_kubernetes_node_name=metadata.get("name", ""))
        found.append({"targets": [f"{address}:{KUBELET_PORT}"], "labels": labels})
    return sorted(found, key=lambda t: t["labels"]["__meta_kubernetes_node_name"])


def slim_pod(pod):
    """What kube-sd uses of a pod, so that thousands of them fit in a small container."""
    metadata, status = pod.get("metadata") or {}, pod.get("status") or {}
    return {"metadata": {k: metadata[k] for k in ("name", "namespace", "labels", "annotations", "deletionTimestamp")
                         if k in metadata},
            "spec": {"nodeName": (pod.get("spec") or {}).get("nodeName", "")},
            "status": {"podIP": status.get("podIP"), "phase": status.get("phase", ""),
                       "containerStatuses": [{"name": c.get("name", ""), "restartCount": c.get("restartCount", 0),
                                              "state": {"waiting": {"reason": ((c.get("state") or {}).get("waiting")
                                                                               or {}).get("reason")}}}
                                             for c in status.get("containerStatuses") or []]}}


def pod_targets(pods):
    found = []
    for pod in pods:
        metadata, status = pod.get("metadata") or {}, pod.get("status") or {}
        if not status.get("podIP") or metadata.get("deletionTimestamp") \
                or METRICS_PORT_ANNOTATION not in (metadata.get("annotations") or {}):
            continue
        labels = dict(labelled("__meta_kubernetes_pod_label_", metadata.get("labels")),
                      **labelled("__meta_kubernetes_pod_annotation_", metadata.get("annotations")),
                      __meta_kubernetes_namespace=metadata.get("namespace", ""),
                      __meta_kubernetes_pod_name=metadata.get("name", ""),
                      __meta_kubernetes_pod_ip=status["podIP"],
                      __meta_kubernetes_pod_phase=status.get("phase", ""),
                      __meta_kubernetes_pod_node_name=(pod.get("spec") or {}).get("nodeName", ""))
        found.append({"targets": [status["podIP"]], "labels": labels})
    return sorted(found, key=lambda t: (t["labels"]["__meta_kubernetes_namespace"],
                                        t["labels"]["__meta_kubernetes_pod_name"]))


def service_targets(namespace, service, slices):
    found = []
    for piece in slices:
        for port in piece.get("ports") or []:
            for endpoint in piece.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                for address in endpoint.get("addresses") or []:
                    host = f"[{address}]" if ":" in address else address
                    found.append({"targets": [f"{host}:{port.get('port')}"], "labels": {
                        "__meta_kubernetes_namespace": namespace, "__meta_kubernetes_service_name": service,
                        "__meta_kubernetes_endpoint_port_name": port.get("name") or ""}})
    return sorted(found, key=lambda t: t["targets"][0])


def _quoted(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def pod_status_metrics(pods):
    """Restart counts and waiting reasons of every container, in Prometheus's text format."""
    restarts, waiting = [], []
    for pod in pods:
        metadata = pod.get("metadata") or {}
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            labels = (f'namespace="{_quoted(metadata.get("namespace", ""))}",pod="{_quoted(metadata.get("name", ""))}",'
                      f'container="{_quoted(status.get("name", ""))}"')
            restarts.append(f"kube_pod_container_status_restarts_total{{{labels}}} {status.get('restartCount', 0)}")
            reason = ((status.get("state") or {}).get("waiting") or {}).get("reason")
            if reason:
                waiting.append(f'kube_pod_container_status_waiting_reason{{{labels},reason="{_quoted(reason)}"}} 1')
    return "\n".join([
        "# HELP kube_pod_container_status_restarts_total Restarts of the container, as the pod's status says.",
        "# TYPE kube_pod_container_status_restarts_total counter", *sorted(restarts),
        "# HELP kube_pod_container_status_waiting_reason Why the container is waiting (1 while it is).",
        "# TYPE kube_pod_container_status_waiting_reason gauge", *sorted(waiting)]) + "\n"


class Exposition:
    """The latest pod status metrics, served over HTTP from a thread of their own."""

    def __init__(self):
        self.text = pod_status_metrics([])

    def serve(self, address):
        host, port = address.rsplit(":", 1)
        exposition = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                body = exposition.text.encode() if self.path == "/metrics" else b"not found\n"
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def endpoints_as_slices(endpoints):
    """A v1 Endpoints object as the slices it would mirror to (the kubernetes Service may have no slice)."""
    found = []
    for subset in (endpoints or {}).get("subsets") or []:
        found.append({"ports": subset.get("ports") or [],
                      "endpoints": [{"addresses": [a["ip"]], "conditions": {"ready": True}}
                                    for a in subset.get("addresses") or [] if a.get("ip")]})
    return found


def write_if_changed(folder, name, targets):
    path = os.path.join(folder, name)
    text = json.dumps(targets, indent=1, sort_keys=True) + "\n"
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    except FileNotFoundError:
        pass
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)
    return True


class Api:
    """GETs to the API server as the pod's service account (token re-read each time: it is rotated)."""

    def __init__(self, host, port, account=ACCOUNT):
        self.base = f"https://{host}:{port}"
        self.account = account
        self.tls = ssl.create_default_context(cafile=os.path.join(account, "ca.crt"))

    def get(self, path):
        with open(os.path.join(self.account, "token"), encoding="utf-8") as handle:
            token = handle.read().strip()
        request = urllib.request.Request(self.base + path,  # noqa: S310 - https to the API server only
                                         headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, context=self.tls, timeout=10) as answer:  # noqa: S310
                return json.load(answer)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def items(self, path, slim=None):
        """Every item of a list, a page at a time; ``slim`` keeps only what is needed of each."""
        found, token = [], None
        while True:
            page = f"{path}{'&' if '?' in path else '?'}limit={PAGE}"
            if token:
                page += f"&continue={urllib.parse.quote(token)}"
            answer = self.get(page) or {}
            found.extend(slim(i) if slim else i for i in answer.get("items") or [])
            token = (answer.get("metadata") or {}).get("continue")
            if not token:
                return found


def discover_once(api, out, services, api_address=None, exposition=None):
    """Write every file once; True when one changed. ``api_address``: the API server kube-sd itself talks to,
    the target of default/kubernetes when that Service lists no endpoint (an API server run without its
    endpoint reconciler, as the local stack's)."""
    changed = write_if_changed(out, "nodes.json", node_targets(api.items("/api/v1/nodes")))
    pods = api.items("/api/v1/pods", slim=slim_pod)
    changed |= write_if_changed(out, "pods.json", pod_targets(pods))
    if exposition is not None:
        exposition.text = pod_status_metrics(pods)
    for namespace, service in services:
        slices = api.items(f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
                           f"?labelSelector=kubernetes.io%2Fservice-name%3D{service}") \
            or endpoints_as_slices(api.get(f"/api/v1/namespaces/{namespace}/endpoints/{service}"))
        targets = service_targets(namespace, service, slices)
        if not targets and (namespace, service) == ("default", "kubernetes") and api_address:
            targets = [{"targets": [api_address], "labels": {
                "__meta_kubernetes_namespace": "default", "__meta_kubernetes_service_name": "kubernetes",
                "__meta_kubernetes_endpoint_port_name": "https"}}]
        changed |= write_if_changed(out, f"service-{namespace}-{service}.json", targets)
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", required=True, help="folder Prometheus's file_sd_configs read")
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--service", action="append", default=[], metavar="NAMESPACE/NAME",
                        help="a Service whose ready endpoints to list (repeatable)")
    parser.add_argument("--metrics-address", default="127.0.0.1:9099",
                        help="where to serve the pods' restart and waiting metrics (HOST:PORT)")
    parser.add_argument("--once", action="store_true", help="list once and exit (a test)")
    args = parser.parse_args(argv)
    services = [tuple(s.split("/", 1)) for s in args.service]
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    api = Api(host, port)
    exposition = Exposition()
    if not args.once:
        exposition.serve(args.metrics_address)
    while True:
        try:
            if discover_once(api, args.out, services, api_address=f"{host}:{port}", exposition=exposition):
                print("kube-sd: targets changed", flush=True)
        except (OSError, ValueError) as exc:  # the API away for a moment: keep the last files, try again
            print(f"kube-sd: listing failed, keeping the last targets: {exc}", file=sys.stderr, flush=True)
            if args.once:
                return 1
        if args.once:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
