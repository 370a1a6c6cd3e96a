# SPDX-License-Identifier: GPL-3.0-or-later
import os
import tempfile
import unittest

from shop_worker.client import BackendError
from shop_worker.worker import beat, cycle, heartbeat_age, plan, run


class FakeBackend:
    def __init__(self, orders, fail=False):
        self.orders, self.fail, self.fulfilled = orders, fail, []

    def new_orders(self):
        if self.fail:
            raise BackendError("down")
        return self.orders

    def fulfil(self, order_id):
        self.fulfilled.append(order_id)


class WorkerTest(unittest.TestCase):
    def test_plan_takes_oldest_new_orders(self):
        orders = [{"id": 3, "status": "new"}, {"id": 1, "status": "new"},
                  {"id": 2, "status": "fulfilled"}]
        self.assertEqual(plan(orders, 1), [1])
        self.assertEqual(plan(orders, 10), [1, 3])

    def test_cycle_fulfils(self):
        backend = FakeBackend([{"id": 5, "status": "new"}])
        self.assertEqual(cycle(backend), [5])
        self.assertEqual(backend.fulfilled, [5])

    def test_heartbeat(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "beat")
            self.assertIsNone(heartbeat_age(path))
            beat(path)
            self.assertLess(heartbeat_age(path), 5)

    def test_once_reports_backend_failure(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "beat")
            lines = []
            self.assertEqual(run(FakeBackend([], fail=True), 0, path, lines.append, once=True), 1)
            self.assertIn("backend unavailable", lines[0])
            self.assertIsNone(heartbeat_age(path))


if __name__ == "__main__":
    unittest.main()
