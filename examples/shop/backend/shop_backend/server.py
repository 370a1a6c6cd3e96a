# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP routes of the backend; every answer is JSON."""

import json
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from shop_backend.metrics import Metrics
from shop_backend.store import InvalidOrder, Store, UnknownOrder
from shop_backend.tracing import Tracer

FULFIL = re.compile(r"^/api/orders/(\d+)/fulfil$")
ROUTES = ("/healthz", "/metrics", "/api/products", "/api/orders")
UNTRACED = ("/healthz", "/metrics")  # probes and scrapes every few seconds: not what a trace is for
MAX_BODY = 64 * 1024


class Handler(BaseHTTPRequestHandler):
    server_version = "shop-backend/1.0"
    store = None
    metrics = None
    tracer = None
    span = None

    def log_message(self, fmt, *args):  # one line per request on stderr, without the date noise
        self.server.log(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}")

    def route(self):
        path = urlsplit(self.path).path
        if path in ROUTES:
            return path
        return "/api/orders/{id}/fulfil" if FULFIL.match(path) else "other"

    def reply(self, status, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        started = getattr(self, "started", None)
        self.metrics.observe(self.command, self.route(), status,
                             time.monotonic() - started if started else 0.0)
        self.tracer.finish(self.span, error=status >= 500, **{"http.response.status_code": status})
        self.span = None

    def handle_one_request(self):
        self.started = time.monotonic()
        self.span = None
        super().handle_one_request()

    def parse_request(self):
        """Once the headers are read: a server span of the caller's trace (``traceparent``)
        or of a new one."""
        parsed = super().parse_request()
        route = self.route() if parsed else "other"
        if parsed and route not in UNTRACED:
            caller = self.headers.get("traceparent")
            self.span = self.tracer.start(f"{self.command} {route}", caller)
            if self.span:
                self.span.attributes.update({"http.request.method": self.command,
                                             "http.route": route})
        return parsed

    def read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise InvalidOrder("request body too large")
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except ValueError as exc:
            raise InvalidOrder(f"body is not JSON: {exc}") from None

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/healthz":
            return self.reply(200, {"status": "ok"})
        if url.path == "/metrics":
            return self.reply(200, self.metrics.exposition(), "text/plain; version=0.0.4")
        if url.path == "/api/products":
            return self.reply(200, {"products": self.store.products()})
        if url.path == "/api/orders":
            status = parse_qs(url.query).get("status", [None])[0]
            try:
                return self.reply(200, {"orders": self.store.orders(status)})
            except InvalidOrder as exc:
                return self.reply(400, {"error": str(exc)})
        return self.reply(404, {"error": f"no route {url.path}"})

    def do_POST(self):
        url = urlsplit(self.path)
        try:
            if url.path == "/api/orders":
                body = self.read_json()
                items = body.get("items") if isinstance(body, dict) else None
                return self.reply(201, self.store.create_order(items))
            match = FULFIL.match(url.path)
            if match:
                return self.reply(200, self.store.fulfil(int(match.group(1))))
        except InvalidOrder as exc:
            return self.reply(400, {"error": str(exc)})
        except UnknownOrder:
            return self.reply(404, {"error": "no such order"})
        return self.reply(404, {"error": f"no route {url.path}"})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, store=None, log=None, tracer=None):
        bound = {"store": store or Store(), "metrics": Metrics(),
                 "tracer": tracer or Tracer("backend")}
        handler = type("BoundHandler", (Handler,), bound)
        super().__init__(address, handler)
        self.log = log or (lambda line: None)
