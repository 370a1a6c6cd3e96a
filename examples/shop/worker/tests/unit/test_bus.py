# SPDX-License-Identifier: GPL-3.0-or-later
"""The NATS client against a scripted server on a local socket, and the bus loop with fakes."""

import os
import socket
import tempfile
import threading
import unittest

from shop_worker.bus import BusError, Subscription
from shop_worker.client import BackendError
from shop_worker.worker import announced_order, consume, heartbeat_age


class ScriptedServer:
    """Accepts one client, says INFO, records what the client sends, and answers with ``script``
    once the client's first PING arrived."""

    def __init__(self, script):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"nats://127.0.0.1:{self.listener.getsockname()[1]}"
        self.script, self.received = script, b""
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        client, _ = self.listener.accept()
        self.listener.close()
        with client:
            client.sendall(b'INFO {"server_id":"test"}\r\n')
            while b"PING\r\n" not in self.received:
                self.received += client.recv(4096)
            client.sendall(self.script)
            client.settimeout(2)
            try:
                while chunk := client.recv(4096):
                    self.received += chunk
            except OSError:
                pass


class SubscriptionTest(unittest.TestCase):
    def test_connects_with_credentials_subscribes_and_reads_messages(self):
        server = ScriptedServer(b"PONG\r\nPING\r\nMSG shop.orders.new 1 9\r\n{\"id\": 7}\r\n")
        bus = Subscription(server.url, "shop.orders.new", "shop", "secret")
        bus.connect()
        self.assertEqual(bus.next_event(2), b'{"id": 7}')
        self.assertIsNone(bus.next_event(0.1))
        bus.close()
        self.assertIn(b'"user": "shop", "pass": "secret"', server.received)
        self.assertIn(b"SUB shop.orders.new shop-worker 1\r\n", server.received)
        self.assertIn(b"PONG\r\n", server.received)  # the server's PING answered

    def test_a_refusal_is_an_error(self):
        server = ScriptedServer(b"-ERR 'Authorization Violation'\r\n")
        bus = Subscription(server.url, "shop.orders.new", "shop", "wrong")
        with self.assertRaisesRegex(BusError, "Authorization Violation"):
            bus.connect()
        bus.close()

    def test_no_server_is_an_error(self):
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        listener.close()
        with self.assertRaises(BusError):
            Subscription(f"nats://127.0.0.1:{port}", "s").connect()

    def test_only_nats_urls(self):
        with self.assertRaises(BusError):
            Subscription("http://nats:4222", "s")


class FakeBus:
    subject = "shop.orders.new"

    def __init__(self, events, fail_connect=False):
        self.events, self.fail_connect, self.pings = list(events), fail_connect, 0

    def connect(self):
        if self.fail_connect:
            raise BusError("connection refused")

    def next_event(self, _wait):
        if not self.events:
            raise BusError("the server closed the connection")
        return self.events.pop(0)

    def ping(self):
        self.pings += 1

    def close(self):
        pass


class FakeBackend:
    def __init__(self, orders=()):
        self.orders, self.fulfilled = list(orders), []

    def new_orders(self):
        return self.orders

    def fulfil(self, order_id):
        if order_id == 404:
            raise BackendError("HTTP 404")
        self.fulfilled.append(order_id)


class ConsumeTest(unittest.TestCase):
    def consume(self, backend, bus, rounds=1):
        calls = []
        lines = []
        with tempfile.TemporaryDirectory() as folder:
            heartbeat = os.path.join(folder, "beat")
            consume(backend, bus, 3600, heartbeat, lines.append, keepalive=0,
                    stop=lambda: calls.append(1) or len(calls) > rounds)
            return lines, heartbeat_age(heartbeat)

    def test_announced_orders_are_fulfilled_as_they_arrive(self):
        backend = FakeBackend()
        lines, age = self.consume(backend, FakeBus([b'{"id": 3}', None, "PONG", b'{"id": 404}']),
                                  rounds=6)
        self.assertEqual(backend.fulfilled, [3])
        self.assertIn("bus: consuming shop.orders.new", lines)
        self.assertIn("bus: fulfilled order 3", lines)
        self.assertIn("bus: order 404 not fulfilled: HTTP 404; polling again in 5s", lines)
        self.assertIsNotNone(age)

    def test_subscribing_first_catches_up_on_new_orders(self):
        backend = FakeBackend([{"id": 9, "status": "new"}])
        self.consume(backend, FakeBus([]))
        self.assertEqual(backend.fulfilled, [9])

    def test_silence_is_a_ping(self):
        bus = FakeBus([None])
        self.consume(FakeBackend(), bus, rounds=2)
        self.assertEqual(bus.pings, 1)

    def test_without_the_bus_the_worker_still_polls(self):
        backend = FakeBackend([{"id": 4, "status": "new"}])
        lines, _ = self.consume(backend, FakeBus([], fail_connect=True))
        self.assertEqual(backend.fulfilled, [4])
        self.assertIn("bus unavailable: connection refused; polling until it is back", lines)

    def test_only_an_order_id_is_an_announcement(self):
        self.assertEqual(announced_order(b'{"id": 12}'), 12)
        for payload in (b"12", b"not json", b'{"id": "12"}', b'{"id": true}', b'{"id": 0}', b"[]"):
            self.assertIsNone(announced_order(payload), payload)


if __name__ == "__main__":
    unittest.main()
