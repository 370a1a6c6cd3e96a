"""The API client against a throw-away local HTTP server: errors named, token refreshed once, writes counted."""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3
from ansible_collections.slipway.platform.plugins.module_utils._errors import (
    Conflict,
    Forbidden,
    NotFound,
    SlipwayError,
    Unreachable,
)
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import (
    KubeClient,
    Watch,
    api_error,
    api_path,
    service_proxy_path,
)
from ansible_collections.slipway.platform.plugins.module_utils._kube.config import Connection
from ansible_collections.slipway.platform.plugins.module_utils._kube.exec_credential import ExecPlugin
from fake_kube import JsonAnswers


class Handler(JsonAnswers):
    token_file = None
    rotate_to = "fresh"  # what the token agent writes into the token file when the server rejects a token (or an
    # iterator of tokens: a new one at each rejection)
    accepted = "fresh"
    seen = []

    def rejected(self):
        """Answer 401 (after the agent rotated the file, when it does) unless the request carries the good token."""
        self.seen.append((self.command, self.headers.get("Authorization")))
        if self.headers.get("Authorization") == f"Bearer {self.accepted}":
            return False
        if self.rotate_to is not None:
            with open(self.token_file, "w") as handle:
                handle.write(self.rotate_to if isinstance(self.rotate_to, str) else next(self.rotate_to))
        self.reply(401, {"kind": "Status", "reason": "Unauthorized", "message": "Unauthorized"})
        return True

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path == "/stuck":  # an API server whose etcd is down: it accepts, then does not answer in time
            time.sleep(1.0)
            return None  # the client gave up long ago: answering would only break a closed pipe
        if self.rejected():
            return None
        if self.path.startswith("/api/v1/namespaces/x/configmaps/missing"):
            return self.reply(404, {"kind": "Status", "reason": "NotFound", "message": "not found"})
        return self.reply(200, {"kind": "ConfigMap", "metadata": {"name": "a"}})

    def do_POST(self):  # noqa: N802
        if self.path == "/stuck":
            time.sleep(1.0)
            return None  # the client gave up long ago: answering would only break a closed pipe
        if self.rejected():
            return None
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        return self.reply(201, {"kind": "ConfigMap"})


@pytest.fixture
def server(tmp_path):
    token = tmp_path / "token"
    token.write_text("stale")
    Handler.token_file, Handler.seen, Handler.rotate_to, Handler.accepted = str(token), [], "fresh", "fresh"
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield Connection(server=f"http://127.0.0.1:{httpd.server_address[1]}", token_file=str(token))
    httpd.shutdown()


def test_an_expired_token_is_reread_and_the_request_retried_once(server):
    client = KubeClient(server)
    assert client.get("/api/v1/namespaces/x/configmaps/a")["metadata"]["name"] == "a"
    assert Handler.seen == [("GET", "Bearer stale"), ("GET", "Bearer fresh")]
    assert (client.unauthorized, client.token_refreshes) == (1, 1)


def test_a_rejected_write_is_sent_again_with_the_rotated_token(server):
    client = KubeClient(server)
    client.request("POST", "/api/v1/namespaces/x/configmaps", body={"metadata": {"name": "b"}})
    assert Handler.seen == [("POST", "Bearer stale"), ("POST", "Bearer fresh")]
    assert client.writes == 1  # the rejected attempt wrote nothing


def test_missing_objects_and_writes(server):
    Handler.accepted = "stale"
    client = KubeClient(server)
    assert client.get("/api/v1/namespaces/x/configmaps/missing", ok_missing=True) is None
    client.request("POST", "/api/v1/namespaces/x/configmaps", body={"metadata": {"name": "b"}},
                   query={"dryRun": "All"})
    assert client.writes == 0  # a dry-run is no write
    client.request("POST", "/api/v1/namespaces/x/configmaps", body={"metadata": {"name": "b"}})
    assert client.writes == 1


class AgentFinishingLate:
    """A stand-in for ``time.sleep`` and ``time.monotonic``: the token agent writes the new token during the wait."""

    def __init__(self, token_file, token, after_sleeps=3):
        self.token_file, self.token, self.after_sleeps = token_file, token, after_sleeps
        self.now = 0.0
        self.sleeps = 0

    def sleep(self, seconds):
        self.now += seconds
        self.sleeps += 1
        if self.sleeps == self.after_sleeps:
            with open(self.token_file, "w") as handle:
                handle.write(self.token)

    def monotonic(self):
        return self.now


def test_a_rotation_still_being_written_is_waited_for_within_the_grace(server):
    Handler.rotate_to = None  # the server rejects; the agent is still busy
    agent = AgentFinishingLate(Handler.token_file, "fresh")
    client = KubeClient(server, token_grace=5, sleep=agent.sleep, monotonic=agent.monotonic)
    assert client.get("/api/v1/namespaces/x/configmaps/a")["metadata"]["name"] == "a"
    assert Handler.seen == [("GET", "Bearer stale"), ("GET", "Bearer fresh")]
    assert agent.sleeps == 3


def test_an_unrotated_token_is_a_clean_unauthorized_after_the_grace(server):
    Handler.rotate_to = None  # nobody writes a new token: the token was revoked for good
    agent = AgentFinishingLate(Handler.token_file, "too late", after_sleeps=1000)
    client = KubeClient(server, token_grace=2, sleep=agent.sleep, monotonic=agent.monotonic)
    with pytest.raises(SlipwayError) as err:
        client.get("/api/v1/namespaces/x/configmaps/a")
    assert Handler.seen == [("GET", "Bearer stale")]  # nothing new to retry with
    assert err.value.msg == (
        "GET /api/v1/namespaces/x/configmaps/a: 401 Unauthorized: the API server rejected the token in the token "
        f"file {Handler.token_file} and no other token was written there within 2s (from options); the token "
        "expired or was revoked: write a valid one to that file (for example the output of `kubectl create token "
        "SERVICE_ACCOUNT`), or let the agent that rotates it finish, then run again")
    assert err.value.details["status"] == 401
    assert agent.now >= 2


def test_a_rotated_token_that_is_rejected_too_is_retried_only_once(server):
    Handler.accepted = "never"
    Handler.rotate_to = iter(["fresh", "fresher", "freshest"])  # always a new token to try: only the rule stops it
    client = KubeClient(server)
    with pytest.raises(SlipwayError) as err:
        client.request("POST", "/api/v1/namespaces/x/configmaps", body={"metadata": {"name": "b"}})
    assert Handler.seen == [("POST", "Bearer stale"), ("POST", "Bearer fresh")]
    assert "401 Unauthorized" in err.value.msg and "again after re-reading it" in err.value.msg
    assert "stale" not in json.dumps(err.value.to_result()) and "fresh" not in json.dumps(err.value.to_result())
    assert (client.unauthorized, client.token_refreshes, client.writes) == (2, 1, 0)


def test_a_rejected_static_token_is_not_retried_and_not_shown(server):
    Handler.rotate_to = None
    conn = Connection(server=server.server, token="S3NTINEL-token")
    client = KubeClient(conn)
    with pytest.raises(SlipwayError) as err:
        client.get("/api/v1/namespaces/x/configmaps/a")
    assert Handler.seen == [("GET", "Bearer S3NTINEL-token")]
    assert "401 Unauthorized: the API server rejected the bearer token (api_token)" in err.value.msg
    assert "give a valid api_token" in err.value.details["hint"]
    assert "S3NTINEL" not in json.dumps(err.value.to_result())


@pytest.mark.parametrize(("credentials", "named"), [
    ({"cert_file": "/pki/deployer.crt", "key_file": "/pki/deployer.key"},
     "the API server rejected the client certificate (from options); check client_cert/client_key"),
    ({}, "no credentials were sent (from options); give a client certificate"),
])
def test_a_rejected_identity_is_named_with_what_to_do(server, credentials, named):
    Handler.rotate_to = None
    with pytest.raises(SlipwayError) as err:
        KubeClient(Connection(server=server.server, **credentials)).get("/api/v1/namespaces/x/configmaps/a")
    assert err.value.msg.startswith("GET /api/v1/namespaces/x/configmaps/a: 401 Unauthorized: " + named)
    assert len(Handler.seen) == 1  # nothing to refresh: not retried


@pytest.mark.parametrize(("method", "write_note"), [("GET", False), ("POST", True)])
def test_an_api_server_that_does_not_answer_in_time_is_named(server, method, write_note):
    Handler.accepted = "stale"
    conn = Connection(server=server.server, token_file=server.token_file, request_timeout=0.3)
    with pytest.raises(SlipwayError) as err:
        KubeClient(conn).request(method, "/stuck", body={} if method == "POST" else None)
    assert err.value.msg == f"{method} /stuck: the Kubernetes API at {server.server} did not answer within 0.3s"
    assert "its storage (etcd) may be down" in err.value.details["hint"]
    assert ("the write may still have been applied" in err.value.details["hint"]) is write_note


def test_connection_refused_is_named():
    with pytest.raises(SlipwayError, match="cannot reach the Kubernetes API at http://127.0.0.1:1: connection refused"):
        KubeClient(Connection(server="http://127.0.0.1:1", request_timeout=2)).get("/version")


def test_the_answers_callers_handle_are_errors_of_their_own_type_with_the_same_details():
    body = json.dumps({"kind": "Status", "reason": "AlreadyExists", "message": "taken"}).encode()
    for status, kind in ((403, Forbidden), (404, NotFound), (409, Conflict), (422, SlipwayError)):
        error = api_error("POST", "/api/v1/namespaces/x/configmaps", status, body)
        assert error.__class__ is kind  # exactly: a 422 is no Conflict
        assert (error.details["status"], error.details["reason"]) == (status, "AlreadyExists")
        assert error.msg == f"POST /api/v1/namespaces/x/configmaps: {status} AlreadyExists: taken"
    with pytest.raises(Unreachable):
        KubeClient(Connection(server="http://127.0.0.1:1", request_timeout=2)).get("/version")


def test_paths_of_built_in_kinds_and_of_the_service_proxy():
    assert api_path("coordination.k8s.io/v1", "leases", "slipway-system", "slipway-lock-local") == \
        "/apis/coordination.k8s.io/v1/namespaces/slipway-system/leases/slipway-lock-local"
    assert api_path("v1", "configmaps", "slipway-system") == "/api/v1/namespaces/slipway-system/configmaps"
    assert api_path("rbac.authorization.k8s.io/v1", "clusterroles", None, "system:x") == \
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Ax"  # a name is quoted, as object_path does
    assert service_proxy_path("edge", "api", "https-admin", "/ready?full=1", https=True) == \
        "/api/v1/namespaces/edge/services/https:api:https-admin/proxy/ready?full=1"


def test_a_raw_get_returns_any_status_and_refreshes_an_expired_token(server):
    """Health gates read what a service answers through the API server: a 404 is a verdict, not an error."""
    client = KubeClient(server)
    status, body = client.raw_get("/api/v1/namespaces/x/configmaps/missing", timeout=2)
    assert status == 404 and json.loads(body)["reason"] == "NotFound"
    assert Handler.seen == [("GET", "Bearer stale"), ("GET", "Bearer fresh")]
    assert (client.requests, client.token_refreshes, client.writes) == (2, 1, 0)


def test_a_raw_get_gives_up_at_its_own_timeout_without_retrying(server):
    Handler.accepted = "stale"
    client = KubeClient(server)  # its default request timeout is far longer than the gate's
    with pytest.raises(SlipwayError) as err:
        client.raw_get("/stuck", timeout=0.3)
    assert err.value.msg == "GET /stuck: no answer within the timeout"
    assert client.requests == 0


def test_a_raw_get_with_a_revoked_token_says_which_credential(server):
    Handler.rotate_to = None
    with pytest.raises(SlipwayError) as err:
        KubeClient(server).raw_get("/healthz", timeout=2)
    assert err.value.msg.startswith("GET /healthz: 401 Unauthorized: the API server rejected the token in the token")


# ---------------------------------------------------------------------------------- exec plugins and proxies

TOKEN_SEQUENCE_PLUGIN = """\
import json, pathlib, sys
runs = pathlib.Path(__file__).with_name("runs")
count = int(runs.read_text()) + 1 if runs.exists() else 1
runs.write_text(str(count))
tokens = sys.argv[1:]
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": tokens[min(count, len(tokens)) - 1]}}))
"""


def exec_connection(server, tmp_path, *tokens):
    """A connection whose token comes from a real exec plugin that gives ``tokens`` one per run (then the last)."""
    script = tmp_path / "plugin.py"
    script.write_text(f"#!{sys.executable}\n{TOKEN_SEQUENCE_PLUGIN}")
    script.chmod(0o755)
    spec = {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script), "args": list(tokens),
            "interactiveMode": "Never"}
    return Connection(server=server.server, exec_plugin=ExecPlugin(spec, "u", "a test kubeconfig"))


def test_a_rejected_exec_token_runs_the_plugin_again_once(server, tmp_path):
    Handler.rotate_to = None
    client = KubeClient(exec_connection(server, tmp_path, "stale", "fresh"))
    client.request("POST", "/api/v1/namespaces/x/configmaps", body={"metadata": {"name": "b"}})
    client.get("/api/v1/namespaces/x/configmaps/a")
    assert Handler.seen == [("POST", "Bearer stale"), ("POST", "Bearer fresh"), ("GET", "Bearer fresh")]
    assert (client.unauthorized, client.token_refreshes, client.writes, client.conn.exec_plugin.runs) == (1, 1, 1, 2)


def test_an_exec_plugin_that_gives_the_rejected_token_again_is_a_clean_unauthorized(server, tmp_path):
    Handler.rotate_to = None
    client = KubeClient(exec_connection(server, tmp_path, "S3NTINEL"))
    with pytest.raises(SlipwayError) as err:
        client.get("/api/v1/namespaces/x/configmaps/a")
    assert Handler.seen == [("GET", "Bearer S3NTINEL")]  # the plugin ran again, but gave nothing new to send
    assert err.value.msg.startswith(
        f"GET /api/v1/namespaces/x/configmaps/a: 401 Unauthorized: the API server rejected the credential from the "
        f"exec plugin '{tmp_path / 'plugin.py'}' of user 'u' in a test kubeconfig (from options)")
    assert client.conn.exec_plugin.runs == 2
    assert "S3NTINEL" not in json.dumps(err.value.to_result())


class ForwardProxy(BaseHTTPRequestHandler):
    """An HTTP forward proxy that answers itself: it records the absolute URLs clients ask it for."""

    asked = []

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.asked.append((self.path, self.headers.get("Proxy-Authorization")))
        data = json.dumps({"kind": "Status", "via": "proxy"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_requests_go_through_the_proxy_with_its_credentials():
    ForwardProxy.asked = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ForwardProxy)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        proxy = f"http://ops:p%40ss@127.0.0.1:{httpd.server_address[1]}"
        client = KubeClient(Connection(server="http://kube.example.invalid:8080", proxy_url=proxy))
        assert client.get("/version") == {"kind": "Status", "via": "proxy"}
    finally:
        httpd.shutdown()
    assert ForwardProxy.asked == [("http://kube.example.invalid:8080/version", "Basic b3BzOnBAc3M=")]


def test_a_socks_proxy_without_pysocks_is_named(monkeypatch):
    # the venv has PySocks (selenium's urllib3[socks]): hide it, and urllib3's module that imported it
    monkeypatch.setitem(sys.modules, "socks", None)
    monkeypatch.delitem(sys.modules, "urllib3.contrib.socks", raising=False)
    with pytest.raises(SlipwayError, match="SOCKS proxy, which needs the Python library PySocks"):
        KubeClient(Connection(server="https://10.0.0.1:6443", proxy_url="socks5://proxy:1080"))


def test_stopping_a_watch_whose_response_was_already_closed_does_nothing():
    # The informer's thread may close the response between another thread's look at it and its stop: urllib3 then
    # refuses to shut a socket it no longer has, and that refusal must not escape as the run's error.
    response = urllib3.HTTPResponse(body=io.BytesIO(b""), preload_content=False)
    response.close()
    Watch(response).stop()
