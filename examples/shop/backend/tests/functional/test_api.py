# SPDX-License-Identifier: GPL-3.0-or-later
"""The API over real HTTP: the server runs in this process on a free port."""
import json
import queue
import threading
import unittest
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from shop_backend.server import Server
from shop_backend.tracing import Tracer


def call(base, path, body=None, headers=()):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **dict(headers)}
    request = urllib.request.Request(base + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


class ApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(("127.0.0.1", 0))
        cls.base = f"http://127.0.0.1:{cls.server.server_address[1]}"
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def test_health(self):
        self.assertEqual(call(self.base, "/healthz"), (200, {"status": "ok"}))

    def test_order_flow(self):
        status, products = call(self.base, "/api/products")
        self.assertEqual(status, 200)
        self.assertIn("tea", [p["sku"] for p in products["products"]])
        status, order = call(self.base, "/api/orders", {"items": [{"sku": "tea", "qty": 1}]})
        self.assertEqual((status, order["status"]), (201, "new"))
        status, done = call(self.base, f"/api/orders/{order['id']}/fulfil", {})
        self.assertEqual((status, done["status"]), (200, "fulfilled"))

    def test_errors_are_json(self):
        self.assertEqual(call(self.base, "/nowhere")[0], 404)
        self.assertEqual(call(self.base, "/api/orders", {"items": []})[0], 400)
        self.assertEqual(call(self.base, "/api/orders/999/fulfil", {})[0], 404)
        self.assertEqual(call(self.base, "/api/orders?status=lost")[0], 400)


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver keeping what it is sent: the backend's spans, over real HTTP."""
    received = None

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.put((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


class TracingTest(unittest.TestCase):
    def setUp(self):
        self.received = queue.Queue()
        bound = type("Bound", (Collector,), {"received": self.received})
        self.collector = ThreadingHTTPServer(("127.0.0.1", 0), bound)
        threading.Thread(target=self.collector.serve_forever, daemon=True).start()
        self.tracer = Tracer("backend", f"http://127.0.0.1:{self.collector.server_address[1]}")
        self.server = Server(("127.0.0.1", 0), tracer=self.tracer)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def tearDown(self):
        for server in (self.server, self.collector):
            server.shutdown()
            server.server_close()

    def test_a_request_with_a_traceparent_is_a_child_span_at_the_collector(self):
        caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        self.assertEqual(call(self.base, "/api/products", headers={"traceparent": caller})[0], 200)
        path, content_type, body = self.received.get(timeout=10)
        self.assertEqual((path, content_type), ("/v1/traces", "application/json"))
        span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        self.assertEqual((span["traceId"], span["parentSpanId"], span["name"]),
                         (caller[3:35], caller[36:52], "GET /api/products"))

    def test_probes_and_scrapes_make_no_spans(self):
        for path in ("/healthz", "/metrics", "/api/products"):
            with urllib.request.urlopen(self.base + path, timeout=5) as response:
                self.assertEqual(response.status, 200)
        self.tracer.flush()
        _, _, body = self.received.get(timeout=10)
        spans = body["resourceSpans"][0]["scopeSpans"][0]["spans"]
        self.assertEqual([span["name"] for span in spans], ["GET /api/products"])
        self.assertTrue(self.received.empty())


if __name__ == "__main__":
    unittest.main()
