# SPDX-License-Identifier: GPL-3.0-or-later
"""One polling cycle, the loop around it, and the heartbeat the probes read."""

import os
import time

from shop_worker.client import BackendError


def plan(orders, limit):
    """The ids of the orders to fulfil this cycle: oldest first, at most ``limit``."""
    return sorted(order["id"] for order in orders if order.get("status") == "new")[:limit]


def cycle(backend, limit=10):
    """Fulfil up to ``limit`` new orders; returns the ids fulfilled."""
    done = []
    for order_id in plan(backend.new_orders(), limit):
        backend.fulfil(order_id)
        done.append(order_id)
    return done


def beat(path):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(str(time.time()))


def heartbeat_age(path, now=None):
    """Seconds since the last successful cycle; None when there was none."""
    try:
        return (now or time.time()) - os.path.getmtime(path)
    except OSError:
        return None


def run(backend, interval, heartbeat, log, once=False):
    while True:
        try:
            done = cycle(backend)
            beat(heartbeat)
            if done:
                log(f"fulfilled orders {done}")
        except BackendError as err:
            log(f"backend unavailable: {err}")
            if once:
                return 1
        if once:
            return 0
        time.sleep(interval)
