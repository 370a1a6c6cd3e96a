# SPDX-License-Identifier: GPL-3.0-or-later
"""The API over real HTTP: the server runs in this process on a free port."""
import json
import threading
import unittest
import urllib.error
import urllib.request

from shop_backend.server import Server


def call(base, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
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


if __name__ == "__main__":
    unittest.main()
