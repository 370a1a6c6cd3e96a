"""The event bus of the catalogue (issue 17): NATS as the ops context delivers it on the stack's real node.

The ops context is delivered through ``playbooks/site.yml`` for the ``nats`` system alone (built, tested in its
image, delivered; the other catalogue systems stay as recorded). A client speaking NATS's text protocol over a
TCP socket to the pod on the real node publishes with the context's credentials and receives its message back,
and a wrong password is refused. The shop's worker, with the bus configured, consumes an order announced on it.

Slow (``-m slow``): about 45 s for the delivery when the image is to be built and tested, seconds for the rest;
the worker's test builds the shop's backend and worker (30-60 s) and waits for their rollout.
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import json
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.request
import uuid
from pathlib import Path

import pytest
from test_catalogue_monitoring import http_service, pulling, push, wait_for, workload  # noqa: F401 # pylint: disable=unused-import
from test_deliver_real_node import registry  # noqa: F401 # pylint: disable=unused-import

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


class NatsSession:
    """Just enough of the NATS client protocol: CONNECT, SUB, PUB, PING, and the lines the server answers."""

    def __init__(self, host, port, user, password):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buffer = b""
        info = self.line()
        assert info.startswith("INFO "), f"not a NATS server: {info!r}"
        connect = {"user": user, "pass": password, "verbose": False, "pedantic": True, "name": "slipway-test"}
        self.send(f"CONNECT {json.dumps(connect)}\r\nPING\r\n")

    def send(self, text):
        self.sock.sendall(text.encode())

    def line(self):
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"the server closed the connection; it said {self.buffer!r}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode()

    def answer(self):
        """The next line that is not a keep-alive."""
        while True:
            line = self.line()
            if line == "PING":
                self.send("PONG\r\n")
            elif line != "PONG":
                return line

    def close(self):
        self.sock.close()


def deliver_ops_system(kubectl, name, namespace):
    """``playbooks/site.yml -i inventories/ops`` for the catalogue system ``name`` alone (the others stay as
    recorded), with reports of its own (another run of the ops context may be writing reports/); its one
    running pod, on the real node."""
    reports = tempfile.mkdtemp(prefix=f"ops-{name}-reports-")
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "inventories/ops",
                           "playbooks/site.yml", "-e", f"slipway_reports_dir={reports}",
                           "-e", json.dumps({"slipway_systems": [name]})],
                          cwd=ROOT, capture_output=True, text=True, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    assert done.returncode == 0, f"the ops delivery of {name} failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    shutil.rmtree(reports)
    pods = json.loads(kubectl("-n", namespace, "get", "pods", "-l", f"app.kubernetes.io/name={name}",
                              "-o", "json").stdout)["items"]
    running = [p for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
    assert len(running) == 1, [p["metadata"]["name"] for p in pods]
    assert running[0]["spec"]["nodeName"] == "slipway-real-0"
    return running[0]


def secret_values(kubectl, namespace, name):
    data = json.loads(kubectl("-n", namespace, "get", "secret", name, "-o", "json").stdout)["data"]
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


@dataclasses.dataclass(frozen=True)
class Bus:
    host: str
    port: int
    user: str
    password: str = dataclasses.field(repr=False)  # a failing test prints its fixtures: never the password


@pytest.fixture(scope="module")
def bus(stack, kubectl):
    """The bus delivered by the ops context; its pod's address and the credentials the cluster holds."""
    pod = deliver_ops_system(kubectl, "nats", "bus")
    credentials = secret_values(kubectl, "bus", "nats")
    generated = (Path(stack["SLIPWAY_STACK_DIR"]) / "secrets" / "nats-password").read_text().strip()
    # Compared apart from the assert: pytest would print both operands of a failing comparison.
    same = hmac.compare_digest(credentials["password"], generated)
    assert same, "the cluster's bus password is not the ops context's"
    return Bus(pod["status"]["podIP"], 4222, credentials["user"], credentials["password"])


def test_a_client_with_the_credentials_receives_what_it_published(bus):
    session = NatsSession(bus.host, bus.port, bus.user, bus.password)
    try:
        subject, payload = f"slipway.test.{uuid.uuid4().hex[:8]}", f"order {uuid.uuid4()}"
        session.send(f"SUB {subject} 1\r\nPUB {subject} {len(payload)}\r\n{payload}\r\nPING\r\n")
        assert session.answer() == f"MSG {subject} 1 {len(payload)}"
        assert session.line() == payload
    finally:
        session.close()


def test_a_wrong_password_is_refused(bus):
    session = NatsSession(bus.host, bus.port, bus.user, bus.password + "-wrong")
    try:
        assert session.answer() == "-ERR 'Authorization Violation'"
    finally:
        session.close()


def backend_call(base, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data,  # noqa: S310 - the test's own pod
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        return json.load(answer)


def shop_service(name, image, env, secret_env=(), port=None):
    """A Deployment of one of the shop's images on the real node: ``env`` values, ``secret_env`` (variable,
    Secret, key) references, and with a ``port`` an HTTP port whose ``/healthz`` is the readiness probe."""
    variables = [{"name": k, "value": v} for k, v in env.items()]
    variables += [{"name": k, "valueFrom": {"secretKeyRef": {"name": s, "key": key}}} for k, s, key in secret_env]
    container = {"name": name, "image": image, "env": variables}
    if port:
        container.update(ports=[{"name": "http", "containerPort": port}],
                         readinessProbe={"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2})
    return workload(name, [container])


def test_the_shop_worker_fulfils_an_order_announced_on_the_bus(bus, push, stack_dir, ns, kubectl):  # noqa: F811
    pulling(kubectl, stack_dir, ns)
    backend = push(ROOT / "examples" / "shop" / "backend", "shop-backend")
    worker = push(ROOT / "examples" / "shop" / "worker", "shop-worker")
    credentials = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bus-credentials"},
                   "stringData": {"user": bus.user, "password": bus.password}}
    # an hour between polls: within the test only a message on the bus can get the order fulfilled
    objects = [credentials, http_service("backend", 8080),
               shop_service("backend", backend, {"PORT": "8080"}, port=8080),
               shop_service("worker", worker, {"BACKEND_URL": f"http://backend.{ns}.svc.cluster.local:8080",
                                               "NATS_URL": "nats://nats.bus.svc.cluster.local:4222",
                                               "POLL_SECONDS": "3600", "HEARTBEAT_FILE": "/tmp/heartbeat"},
                            [("NATS_USER", "bus-credentials", "user"),
                             ("NATS_PASSWORD", "bus-credentials", "password")])]
    kubectl("-n", ns, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    for name in ("backend", "worker"):
        kubectl("-n", ns, "rollout", "status", f"deployment/{name}", "--timeout=180s")

    def worker_log():
        return kubectl("-n", ns, "logs", "deployment/worker", check=False).stdout

    wait_for("the worker consuming the bus", lambda: "bus: consuming shop.orders.new" in worker_log(), 60)
    pods = json.loads(kubectl("-n", ns, "get", "pods", "-l", "app=backend", "-o", "json").stdout)["items"]
    base = f"http://{pods[0]['status']['podIP']}:8080"
    order = backend_call(base, "/api/orders", {"items": [{"sku": "tea", "qty": 1}]})
    assert order["status"] == "new"

    session = NatsSession(bus.host, bus.port, bus.user, bus.password)
    try:
        announcement = json.dumps({"id": order["id"]})
        session.send(f"PUB shop.orders.new {len(announcement)}\r\n{announcement}\r\nPING\r\n")
        # the PONGs to the connection's PING and to this one: the server took the message (an error comes first)
        assert [session.line(), session.line()] == ["PONG", "PONG"]
    finally:
        session.close()

    try:
        fulfilled = wait_for("the announced order fulfilled", lambda: [
            o for o in backend_call(base, "/api/orders?status=fulfilled")["orders"] if o["id"] == order["id"]], 60)
    except AssertionError as missing:
        raise AssertionError(f"{missing}\nthe worker's log:\n{worker_log()[-3000:]}") from None
    assert fulfilled[0]["status"] == "fulfilled"
    # the message did it, at once or (the backend's name not yet resolvable) by the poll it brought forward
    log = worker_log()
    assert (f"bus: fulfilled order {order['id']}" in log
            or f"bus: order {order['id']} not fulfilled" in log and "polling again" in log), log
