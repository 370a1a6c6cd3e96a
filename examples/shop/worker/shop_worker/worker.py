# SPDX-License-Identifier: GPL-3.0-or-later
"""One polling cycle, the loops around it (polling alone, or the bus with polling as a safety
net), and the heartbeat the probes read."""

import json
import os
import time

from shop_worker.bus import BusError
from shop_worker.client import BackendError

# after a failed fulfilment of an announced order: how soon a poll tries again
RETRY_SECONDS = 5.0


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


def poll(backend, heartbeat, log):
    """One polling cycle, logged; True when the backend answered (and the heartbeat beat)."""
    try:
        done = cycle(backend)
    except BackendError as err:
        log(f"backend unavailable: {err}")
        return False
    beat(heartbeat)
    if done:
        log(f"fulfilled orders {done}")
    return True


def run(backend, interval, heartbeat, log, once=False):
    """Poll every ``interval`` seconds: the worker's loop when no bus is configured."""
    while True:
        answered = poll(backend, heartbeat, log)
        if once:
            return 0 if answered else 1
        time.sleep(interval)


def announced_order(payload):
    """The order a bus message announces, ``{"id": 12}``; None for anything else."""
    try:
        message = json.loads(payload)
    except ValueError:
        return None
    order = message.get("id") if isinstance(message, dict) else None
    return order if type(order) is int and order > 0 else None


def fulfil_announced(backend, payload, heartbeat, log):
    """Fulfil the order a message names; False when the backend failed (the order is still new)."""
    order = announced_order(payload)
    if order is None:
        log(f"bus: ignored a message that names no order: {payload[:200]!r}")
        return True
    try:
        backend.fulfil(order)
    except BackendError as err:
        log(f"bus: order {order} not fulfilled: {err}; polling again in {RETRY_SECONDS:g}s")
        return False
    beat(heartbeat)
    log(f"bus: fulfilled order {order}")
    return True


def consume(backend, bus, interval, heartbeat, log, keepalive=15.0, stop=lambda: False):
    """Fulfil each order the bus announces as it arrives; poll when subscribing (what was announced
    while nobody listened) and every ``interval`` seconds. The server's answer to a PING every
    ``keepalive`` seconds of silence is the heartbeat. A bus that fails: one poll, then again."""
    while not stop():
        try:
            bus.connect()
            beat(heartbeat)
            poll(backend, heartbeat, log)  # what was announced while nobody listened
            log(f"bus: consuming {bus.subject}")
            next_poll = time.monotonic() + interval
            while not stop():
                event = bus.next_event(max(min(keepalive, next_poll - time.monotonic()), 0.01))
                if event == "PONG":
                    beat(heartbeat)
                elif event is not None:
                    if not fulfil_announced(backend, event, heartbeat, log):
                        # a backend not reachable yet (restarting, its name not yet
                        # resolvable) is transient, and the bus does not announce again:
                        # a poll picks the order up soon, not at the next interval
                        retry_at = time.monotonic() + min(interval, RETRY_SECONDS)
                        next_poll = min(next_poll, retry_at)
                elif time.monotonic() >= next_poll:
                    poll(backend, heartbeat, log)
                    next_poll = time.monotonic() + interval
                else:
                    bus.ping()
        except BusError as err:
            bus.close()
            log(f"bus unavailable: {err}; polling until it is back")
            poll(backend, heartbeat, log)
            time.sleep(min(interval, keepalive))
