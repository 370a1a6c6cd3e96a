"""An API server that goes away after answering is waited for; one never reached, or refusing for good, is not.

The server is a throw-away local HTTP server that the tests stop, restart on the same port, or make answer as a
starting kube-apiserver does (``/readyz`` 500, 403 before its RBAC caches are loaded).
"""

from __future__ import annotations

import threading
import time
from http.server import ThreadingHTTPServer

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import APPLY_PATCH, KubeClient, resendable
from ansible_collections.slipway.platform.plugins.module_utils._kube.config import Connection
from fake_kube import JsonAnswers


class Starting(JsonAnswers):
    """Answers like an API server: ``refusals`` 403s first, ``/readyz`` 500 while ``not_ready`` > 0."""

    refusals = 0
    not_ready = 0
    seen = []

    def answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append((self.command, self.path))
        if self.path == "/readyz":
            if type(self).not_ready > 0:
                type(self).not_ready -= 1
                return self.reply(500, {"kind": "Status", "message": "[-]poststarthook/rbac/bootstrap-roles failed"})
            return self.reply(200, {})
        if type(self).refusals > 0:
            type(self).refusals -= 1
            return self.reply(403, {"kind": "Status", "reason": "Forbidden",
                                    "message": 'User "slipway:deployer" cannot list resource "statefulsets"'})
        return self.reply(200, {"kind": "List", "items": []})

    do_GET = do_PUT = do_POST = do_PATCH = answer  # noqa: N815 - http.server's naming


class Server:
    """A server the test can stop and start again on the same port, as a restarted API server is."""

    def __init__(self):
        Starting.refusals, Starting.not_ready, Starting.seen = 0, 0, []
        self.httpd = None
        self.port = 0
        self.start()

    def start(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Starting)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def conn(self):
        return Connection(server=f"http://127.0.0.1:{self.port}", request_timeout=2)


@pytest.fixture
def server():
    running = Server()
    yield running
    running.stop()


def test_a_server_that_goes_away_and_comes_back_is_waited_for_and_the_request_sent_again(server):
    client = KubeClient(server.conn, outage_grace=20)
    client.get("/api/v1/namespaces")  # it answered once: going away now is an outage, not a wrong address
    server.stop()
    threading.Timer(1.0, server.start).start()
    Starting.not_ready = 2  # back, but not ready for its first two readiness probes
    assert client.request("POST", "/api/v1/namespaces/x/configmaps", body={}) == {"kind": "List", "items": []}
    assert client.outages == 1
    # the create went out once, after the server said it was ready (two refusals, then ready)
    assert [request for request in Starting.seen if request[0] == "POST"] == [
        ("POST", "/api/v1/namespaces/x/configmaps")]
    assert Starting.seen[-4:] == [("GET", "/readyz")] * 3 + [("POST", "/api/v1/namespaces/x/configmaps")]


def test_a_server_that_does_not_come_back_within_the_grace_fails_saying_it_waited(server):
    client = KubeClient(server.conn, outage_grace=1.5)
    client.get("/api/v1/namespaces")
    server.stop()
    with pytest.raises(SlipwayError, match=r"cannot reach the Kubernetes API at .*: connection refused "
                                           r"\(waited 1.5s for it to come back\)"):
        client.get("/api/v1/namespaces")


def test_a_server_never_reached_fails_at_once_whatever_the_grace():
    client = KubeClient(Connection(server="http://127.0.0.1:1", request_timeout=2), outage_grace=60)
    begin = time.monotonic()
    with pytest.raises(SlipwayError, match="connection refused$"):
        client.get("/version")
    assert client.outages == 0 and time.monotonic() - begin < 30


def test_a_starting_servers_403_is_waited_out_until_it_is_ready(server):
    client = KubeClient(server.conn, outage_grace=20)
    Starting.refusals, Starting.not_ready = 1, 2
    assert client.get("/apis/apps/v1/namespaces/shop/statefulsets") == {"kind": "List", "items": []}
    paths = [path for _method, path in Starting.seen]
    assert paths == ["/apis/apps/v1/namespaces/shop/statefulsets", "/readyz", "/readyz", "/readyz",
                     "/apis/apps/v1/namespaces/shop/statefulsets"]


def test_a_ready_servers_403_gets_one_more_try_then_is_final(server):
    client = KubeClient(server.conn, outage_grace=20)
    Starting.refusals = 2
    with pytest.raises(SlipwayError, match=r"403 Forbidden: User \"slipway:deployer\" cannot list"):
        client.get("/apis/apps/v1/namespaces/shop/statefulsets")
    assert [path for _method, path in Starting.seen] == [
        "/apis/apps/v1/namespaces/shop/statefulsets", "/readyz", "/apis/apps/v1/namespaces/shop/statefulsets"]


def test_without_a_grace_a_refusal_is_final_at_once(server):
    client = KubeClient(server.conn)
    Starting.refusals = 1
    with pytest.raises(SlipwayError, match="403 Forbidden"):
        client.get("/api/v1/namespaces")
    assert [path for _method, path in Starting.seen] == ["/api/v1/namespaces"]


@pytest.mark.parametrize(("method", "content_type", "status", "again"), [
    ("GET", "application/json", None, True),
    ("DELETE", "application/json", None, True),
    ("PATCH", APPLY_PATCH, None, True),
    ("POST", "application/json", None, False),  # a lost answer to a create: it may have been made
    ("PUT", "application/json", 500, False),
    ("PUT", "application/json", 403, True),  # refused: nothing was done
    ("POST", "application/json", 503, True),
])
def test_what_may_be_sent_again(method, content_type, status, again):
    assert resendable(method, content_type, status) is again
