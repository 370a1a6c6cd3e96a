"""The API client against a throw-away local HTTP server: errors named, token refreshed once, writes counted."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import KubeClient
from ansible_collections.slipway.platform.plugins.module_utils._kube.config import Connection


class Handler(BaseHTTPRequestHandler):
    token_file = None
    seen = []

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.seen.append(self.headers.get("Authorization"))
        if self.headers.get("Authorization") != "Bearer fresh":
            with open(self.token_file, "w") as handle:  # the token agent rotates the file meanwhile
                handle.write("fresh")
            return self.reply(401, {"kind": "Status", "reason": "Unauthorized", "message": "Unauthorized"})
        if self.path.startswith("/api/v1/namespaces/x/configmaps/missing"):
            return self.reply(404, {"kind": "Status", "reason": "NotFound", "message": "not found"})
        return self.reply(200, {"kind": "ConfigMap", "metadata": {"name": "a"}})

    def do_POST(self):  # noqa: N802
        return self.reply(201, {"kind": "ConfigMap"})


@pytest.fixture
def server(tmp_path):
    token = tmp_path / "token"
    token.write_text("stale")
    Handler.token_file, Handler.seen = str(token), []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield Connection(server=f"http://127.0.0.1:{httpd.server_address[1]}", token_file=str(token))
    httpd.shutdown()


def test_an_expired_token_is_reread_and_the_request_retried_once(server):
    client = KubeClient(server)
    assert client.get("/api/v1/namespaces/x/configmaps/a")["metadata"]["name"] == "a"
    assert Handler.seen == ["Bearer stale", "Bearer fresh"]


def test_missing_objects_and_writes(server):
    client = KubeClient(server)
    assert client.get("/api/v1/namespaces/x/configmaps/missing", ok_missing=True) is None
    client.request("POST", "/api/v1/namespaces/x/configmaps", body={"metadata": {"name": "b"}},
                   query={"dryRun": "All"})
    assert client.writes == 0  # a dry-run is no write
    client.request("POST", "/api/v1/namespaces/x/configmaps", body={"metadata": {"name": "b"}})
    assert client.writes == 1


def test_a_still_rejected_token_is_a_clean_unauthorized(server, tmp_path):
    Handler.token_file = str(tmp_path / "elsewhere")  # rotation happens somewhere the client does not read
    with pytest.raises(SlipwayError) as err:
        KubeClient(server).get("/api/v1/namespaces/x/configmaps/a")
    assert "401 Unauthorized" in err.value.msg and "credentials were rejected" in err.value.details["hint"]


def test_connection_refused_is_named():
    with pytest.raises(SlipwayError, match="cannot reach the Kubernetes API at http://127.0.0.1:1: connection refused"):
        KubeClient(Connection(server="http://127.0.0.1:1", request_timeout=2)).get("/version")
