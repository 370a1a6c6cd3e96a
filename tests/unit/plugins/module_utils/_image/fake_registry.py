"""A tiny Registry HTTP API v2 in a thread: basic or bearer auth, manifests by tag."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeRegistry:
    def __init__(self, user="slipway", password="s3cret-Sentinel", auth="basic", digest_header=True):  # noqa: S107
        self.user, self.password, self.auth = user, password, auth
        self.digest_header = digest_header
        self.manifests = {}  # (repository, tag) -> (digest, body)
        self.requests = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def authorized(self):
                header = self.headers.get("Authorization", "")
                if registry.auth == "none":
                    return True
                if registry.auth == "basic":
                    good = base64.b64encode(f"{registry.user}:{registry.password}".encode()).decode()
                    return header == f"Basic {good}"
                return header == "Bearer good-token"

            def challenge(self):
                self.send_response(401)
                if registry.auth == "basic":
                    self.send_header("WWW-Authenticate", 'Basic realm="fake"')
                else:
                    realm = f"http://127.0.0.1:{registry.port}/token"
                    self.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="fake"')
                self.send_header("Content-Length", "0")
                self.end_headers()

            def handle_one(self, send_body):
                registry.requests.append((self.command, self.path, dict(self.headers)))
                if self.path.startswith("/token"):
                    good = base64.b64encode(f"{registry.user}:{registry.password}".encode()).decode()
                    if self.headers.get("Authorization") != f"Basic {good}":
                        self.send_response(401)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    body = json.dumps({"token": "good-token"}).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if not self.authorized():
                    return self.challenge()
                if self.path == "/v2/":
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    if send_body:
                        self.wfile.write(b"{}")
                    return
                parts = self.path[len("/v2/"):].split("/manifests/")
                found = registry.manifests.get(tuple(parts)) if len(parts) == 2 else None
                if found is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                digest, body = found
                self.send_response(200)
                if registry.digest_header:
                    self.send_header("Docker-Content-Digest", digest)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if send_body:
                    self.wfile.write(body)

            def do_GET(self):
                self.handle_one(True)

            def do_HEAD(self):
                self.handle_one(False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
