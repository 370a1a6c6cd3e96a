# SPDX-License-Identifier: GPL-3.0-or-later
import unittest

from shop_backend.store import InvalidOrder, Store, UnknownOrder, price


class PriceTest(unittest.TestCase):
    def test_sums_price_times_quantity(self):
        self.assertEqual(price([{"sku": "tea", "qty": 2}, {"sku": "mug", "qty": 1}]), 2100)

    def test_rejects_bad_items(self):
        for items in (None, [], [{"sku": "nope", "qty": 1}], [{"sku": "tea", "qty": 0}],
                      [{"sku": "tea", "qty": True}], ["tea"]):
            with self.subTest(items=items), self.assertRaises(InvalidOrder):
                price(items)


class StoreTest(unittest.TestCase):
    def test_order_lifecycle(self):
        store = Store()
        order = store.create_order([{"sku": "map", "qty": 3}])
        self.assertEqual((order["id"], order["status"], order["total_cents"]), (1, "new", 2400))
        self.assertEqual([o["id"] for o in store.orders("new")], [1])
        self.assertEqual(store.fulfil(1)["status"], "fulfilled")
        self.assertEqual(store.orders("new"), [])
        self.assertEqual(len(store.orders()), 1)

    def test_unknown_order_and_status(self):
        store = Store()
        with self.assertRaises(UnknownOrder):
            store.fulfil(42)
        with self.assertRaises(InvalidOrder):
            store.orders("lost")


if __name__ == "__main__":
    unittest.main()
