# SPDX-License-Identifier: GPL-3.0-or-later
"""Just enough of NATS's client protocol (text lines over TCP) to consume one subject.

CONNECT with the bus's credentials, SUB in a queue group (each message goes to one worker of the
group), answer the server's PINGs, read MSG payloads. Standard library only: the image is built
without network, and NATS's protocol is a few lines.
"""

import json
import socket
import time
from urllib.parse import urlsplit


class BusError(RuntimeError):
    """The bus did not answer, refused us, or closed the connection."""


class Subscription:
    def __init__(self, url, subject, user=None, password=None, group="shop-worker", timeout=5.0):
        address = urlsplit(url)
        if address.scheme != "nats" or not address.hostname:
            raise BusError(f"{url}: a bus URL is nats://host:port")
        self.address = (address.hostname, address.port or 4222)
        self.subject, self.group = subject, group
        self.user, self.password = user or address.username, password or address.password
        self.timeout = timeout
        self.sock, self.buffer = None, b""

    def connect(self):
        """Connect and subscribe; returns once the server confirmed both (its PONG to our PING)."""
        self.close()
        try:
            self.sock = socket.create_connection(self.address, timeout=self.timeout)
        except OSError as err:
            raise BusError(f"{self.address[0]}:{self.address[1]}: {err}") from None
        info = self.line(self.timeout)
        if not info or not info.startswith(b"INFO "):
            raise BusError(f"not a NATS server: {info!r}")
        options = {"verbose": False, "pedantic": False, "name": "shop-worker", "lang": "python"}
        if self.user:
            options.update(user=self.user, **{"pass": self.password or ""})
        self.send(f"CONNECT {json.dumps(options)}\r\nSUB {self.subject} {self.group} 1\r\nPING\r\n")
        deadline = time.monotonic() + self.timeout
        while self.next_event(max(deadline - time.monotonic(), 0.01)) != "PONG":
            if time.monotonic() >= deadline:
                raise BusError("the server did not confirm the subscription")

    def send(self, text):
        try:
            self.sock.sendall(text.encode())
        except OSError as err:
            raise BusError(f"send: {err}") from None

    def line(self, wait):
        """The next protocol line, or None when none arrived within ``wait`` seconds."""
        self.sock.settimeout(wait)
        while b"\r\n" not in self.buffer:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            except OSError as err:
                raise BusError(f"receive: {err}") from None
            if not chunk:
                raise BusError("the server closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def payload(self, size):
        self.sock.settimeout(self.timeout)
        while len(self.buffer) < size + 2:
            try:
                chunk = self.sock.recv(65536)
            except OSError as err:
                raise BusError(f"receive: {err}") from None
            if not chunk:
                raise BusError("the server closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size + 2:]
        return data

    def next_event(self, wait):
        """``"PONG"``, a message's payload (bytes), or None when nothing came within ``wait``
        seconds. The server's PINGs are answered here; its errors raise."""
        line = self.line(wait)
        if line is None:
            return None
        if line == b"PING":
            self.send("PONG\r\n")
            return self.next_event(wait)
        if line == b"PONG":
            return "PONG"
        if line.startswith(b"MSG "):
            return self.payload(int(line.split()[-1]))
        if line.startswith(b"-ERR"):
            raise BusError(line.decode(errors="replace"))
        return self.next_event(wait)  # +OK, INFO updates

    def ping(self):
        self.send("PING\r\n")

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""
