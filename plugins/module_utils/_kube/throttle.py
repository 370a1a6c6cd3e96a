# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The client's answer to an API server that says "too many requests" (429, API Priority and Fairness).

A 429 means the server did not process the request, so any request may go again once the server's
``Retry-After`` has passed. Every thread of the client waits that pause out (the server refused the client's
priority level, not one request), and the client lowers the number of requests it has in flight, then raises it
again one at a time as answers come back: the server's signals set the pace instead of failing the delivery.
"""

from __future__ import annotations

import threading
import time

DEFAULT_RETRY_AFTER = 1.0  # seconds, when a 429 carries no (readable) Retry-After
MAX_RETRY_AFTER = 10.0  # one pause is never longer than this, whatever the server asks
THROTTLE_BUDGET = 60.0  # seconds one request may spend waiting out 429s before it fails
PRIORITY_LEVEL_HEADER = "X-Kubernetes-PF-PriorityLevel-UID"
FLOW_SCHEMA_HEADER = "X-Kubernetes-PF-FlowSchema-UID"


def retry_after(headers):
    """The pause a 429 asks for, in seconds, within ``[0, MAX_RETRY_AFTER]`` (``Retry-After`` in seconds; an
    HTTP date or garbage means the default)."""
    value = (headers or {}).get("Retry-After")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = DEFAULT_RETRY_AFTER
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def priority_level(headers):
    """Which APF priority level and flow schema answered (their UIDs), for messages; ``""`` when not said."""
    headers = headers or {}
    level, schema = headers.get(PRIORITY_LEVEL_HEADER), headers.get(FLOW_SCHEMA_HEADER)
    if not level and not schema:
        return ""
    return f"priority level {level or '?'} (flow schema {schema or '?'})"


class Throttle:
    """Requests in flight, bounded by a limit the server's 429s lower (halved) and its answers raise (+1 per
    ``limit`` answers), and the pause every request waits after a 429."""

    def __init__(self, limit, sleep=time.sleep, monotonic=time.monotonic):
        self.ceiling = max(1, int(limit))
        self.limit = self.ceiling
        self.in_flight = 0
        self.refusals = 0  # 429 answers seen
        self.waited = 0.0  # seconds spent in pauses the server asked for
        self.last_level = ""
        self._answers = 0
        self._paused_until = 0.0
        self._sleep, self._monotonic = sleep, monotonic
        self._cond = threading.Condition()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()

    def acquire(self):
        """Wait for the server's pause to pass and a slot under the limit."""
        while True:
            with self._cond:
                pause = self._paused_until - self._monotonic()
                if pause <= 0:
                    while self.in_flight >= self.limit:
                        self._cond.wait(0.5)
                    self.in_flight += 1
                    return
            self._sleep(pause)

    def release(self):
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()

    def answered(self):
        """An answer that was not a 429: raise the limit again, slowly."""
        if self.limit >= self.ceiling:
            return
        with self._cond:
            self._answers += 1
            if self._answers >= self.limit:
                self._answers = 0
                self.limit = min(self.ceiling, self.limit + 1)
                self._cond.notify()

    def refused(self, headers):
        """A 429: halve the limit, pause every request for the server's ``Retry-After``; the pause in seconds."""
        pause = retry_after(headers)
        with self._cond:
            self.refusals += 1
            self.waited += pause
            self.limit = max(1, self.limit // 2)
            self._answers = 0
            self._paused_until = max(self._paused_until, self._monotonic() + pause)
            self.last_level = priority_level(headers) or self.last_level
        return pause
