"""The event bus of the catalogue (issue 17): NATS as the ops context delivers it on the stack's real node.

The ops context is delivered through ``playbooks/site.yml`` for the ``nats`` system alone (built, tested in its
image, delivered; the other catalogue systems stay as recorded). A client speaking NATS's text protocol over a
TCP socket to the pod on the real node publishes with the context's credentials and receives its message back,
and a wrong password is refused.

Slow (``-m slow``): about 45 s for the delivery when the image is to be built and tested, seconds for the rest.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

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
    recorded); its one running pod, on the real node."""
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "inventories/ops",
                           "playbooks/site.yml", "-e", json.dumps({"slipway_systems": [name]})],
                          cwd=ROOT, capture_output=True, text=True, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    assert done.returncode == 0, f"the ops delivery of {name} failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    pods = json.loads(kubectl("-n", namespace, "get", "pods", "-l", f"app.kubernetes.io/name={name}",
                              "-o", "json").stdout)["items"]
    running = [p for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
    assert len(running) == 1, [p["metadata"]["name"] for p in pods]
    assert running[0]["spec"]["nodeName"] == "slipway-real-0"
    return running[0]


def secret_values(kubectl, namespace, name):
    data = json.loads(kubectl("-n", namespace, "get", "secret", name, "-o", "json").stdout)["data"]
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


@pytest.fixture(scope="module")
def bus(stack, kubectl):
    """The bus delivered by the ops context; its pod's address and the credentials the cluster holds."""
    pod = deliver_ops_system(kubectl, "nats", "bus")
    credentials = secret_values(kubectl, "bus", "nats")
    generated = (Path(stack["SLIPWAY_STACK_DIR"]) / "secrets" / "nats-password").read_text().strip()
    assert credentials["password"] == generated, "the cluster's bus password is not the ops context's"
    return {"host": pod["status"]["podIP"], "port": 4222, **credentials}


def test_a_client_with_the_credentials_receives_what_it_published(bus):
    session = NatsSession(bus["host"], bus["port"], bus["user"], bus["password"])
    try:
        subject, payload = f"slipway.test.{uuid.uuid4().hex[:8]}", f"order {uuid.uuid4()}"
        session.send(f"SUB {subject} 1\r\nPUB {subject} {len(payload)}\r\n{payload}\r\nPING\r\n")
        assert session.answer() == f"MSG {subject} 1 {len(payload)}"
        assert session.line() == payload
    finally:
        session.close()


def test_a_wrong_password_is_refused(bus):
    session = NatsSession(bus["host"], bus["port"], bus["user"], bus["password"] + "-wrong")
    try:
        assert session.answer() == "-ERR 'Authorization Violation'"
    finally:
        session.close()
