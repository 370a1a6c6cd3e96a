# SPDX-License-Identifier: GPL-3.0-or-later
"""Catalogue and orders: pure logic, no I/O, safe to call from several threads."""

import threading

CATALOGUE = {
    "tea": {"sku": "tea", "name": "Green tea", "price_cents": 450},
    "mug": {"sku": "mug", "name": "Enamel mug", "price_cents": 1200},
    "map": {"sku": "map", "name": "Harbour map", "price_cents": 800},
}
STATUSES = ("new", "fulfilled")


class InvalidOrder(ValueError):
    """The order request cannot be accepted; the message says why."""


class UnknownOrder(KeyError):
    """No order has that id."""


def price(items):
    """Total price in cents of ``[{"sku": ..., "qty": ...}]``; raises InvalidOrder on bad input."""
    if not isinstance(items, list) or not items:
        raise InvalidOrder("items must be a non-empty list")
    total = 0
    for item in items:
        if not isinstance(item, dict):
            raise InvalidOrder("each item must be an object with sku and qty")
        sku, qty = item.get("sku"), item.get("qty")
        if sku not in CATALOGUE:
            raise InvalidOrder(f"unknown sku: {sku!r}")
        if not isinstance(qty, int) or isinstance(qty, bool) or not 1 <= qty <= 100:
            raise InvalidOrder(f"qty of {sku} must be an integer from 1 to 100")
        total += CATALOGUE[sku]["price_cents"] * qty
    return total


class Store:
    """Orders kept in memory; ids are consecutive integers from 1."""

    def __init__(self):
        self._lock = threading.Lock()
        self._orders = {}

    def products(self):
        return [dict(product) for product in CATALOGUE.values()]

    def create_order(self, items):
        total = price(items)
        with self._lock:
            order_id = len(self._orders) + 1
            order = {"id": order_id, "items": items, "total_cents": total, "status": "new"}
            self._orders[order_id] = order
            return dict(order)

    def orders(self, status=None):
        if status is not None and status not in STATUSES:
            raise InvalidOrder(f"status must be one of {', '.join(STATUSES)}")
        with self._lock:
            return [dict(o) for o in self._orders.values() if status in (None, o["status"])]

    def fulfil(self, order_id):
        with self._lock:
            if order_id not in self._orders:
                raise UnknownOrder(order_id)
            self._orders[order_id]["status"] = "fulfilled"
            return dict(self._orders[order_id])
