# SPDX-License-Identifier: GPL-3.0-or-later
"""Against the real backend that docker-compose.yml starts (BACKEND_URL)."""
import os
import unittest

from shop_worker.client import Backend
from shop_worker.worker import cycle


class AgainstBackendTest(unittest.TestCase):
    def test_new_order_gets_fulfilled(self):
        backend = Backend(os.environ.get("BACKEND_URL", "http://backend:8080"))
        order = backend.call("/api/orders", {"items": [{"sku": "mug", "qty": 2}]})
        self.assertIn(order["id"], cycle(backend, limit=100))
        fulfilled = backend.call("/api/orders?status=fulfilled")["orders"]
        self.assertIn(order["id"], [o["id"] for o in fulfilled])
        self.assertNotIn(order["id"], [o["id"] for o in backend.new_orders()])


if __name__ == "__main__":
    unittest.main()
