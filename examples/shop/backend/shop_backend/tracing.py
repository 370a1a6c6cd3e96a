# SPDX-License-Identifier: GPL-3.0-or-later
"""W3C trace context in, OTLP/HTTP JSON spans out; standard library only.

A request's ``traceparent`` header continues the caller's trace; without one (or with a malformed
one) the span starts a trace of its own. Finished spans are posted to
``$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces`` (the collector's base URL, as OpenTelemetry SDKs read it)
by a background thread, in batches. Without an endpoint nothing is recorded or sent; a collector
that is slow or away costs the requests nothing: spans beyond the queue's bound are dropped and
counted.
"""

import json
import os
import queue
import re
import threading
import time
import urllib.request

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
SERVER, CLIENT, CONSUMER = 2, 3, 5  # OTLP span kinds
STATUS_UNSET, STATUS_ERROR = 0, 2


def parse_traceparent(value):
    """``(trace id, parent span id)`` of a valid version-00 ``traceparent``, else None
    (all-zero ids are invalid)."""
    match = TRACEPARENT.match((value or "").strip())
    if not match or not int(match.group(1), 16) or not int(match.group(2), 16):
        return None
    return match.group(1), match.group(2)


def attribute(key, value):
    if isinstance(value, bool) or not isinstance(value, int):
        return {"key": key, "value": {"stringValue": str(value)}}
    return {
        "key": key,
        "value": {"intValue": str(value)},
    }  # OTLP JSON writes 64-bit integers as strings


class Span:
    """One operation, continuing ``traceparent`` when it is valid; its own ``traceparent`` is
    what to pass on."""

    def __init__(self, name, traceparent=None, kind=SERVER):
        parent = parse_traceparent(traceparent)
        self.trace_id, self.parent_id = parent if parent else (os.urandom(16).hex(), None)
        self.span_id = os.urandom(8).hex()
        self.name, self.kind = name, kind
        self.start_ns, self.end_ns = time.time_ns(), None
        self.attributes, self.status = {}, STATUS_UNSET

    @property
    def traceparent(self):
        return f"00-{self.trace_id}-{self.span_id}-01"

    def end(self, error=False, **attributes):
        self.attributes.update(attributes)
        self.status = STATUS_ERROR if error else STATUS_UNSET
        self.end_ns = time.time_ns()

    def otlp(self):
        span = {
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "name": self.name,
            "kind": self.kind,
            "startTimeUnixNano": str(self.start_ns),
            "endTimeUnixNano": str(self.end_ns or time.time_ns()),
            "attributes": [attribute(key, value) for key, value in sorted(self.attributes.items())],
            "status": {"code": self.status},
        }
        if self.parent_id:
            span["parentSpanId"] = self.parent_id
        return span


def post_json(url, body, timeout):
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310 - the context's collector
        pass


class Tracer:
    """Starts spans and sends the finished ones; ``start`` gives None when there is nowhere to
    send them."""

    def __init__(
        self, service, endpoint=None, max_queued=1000, batch=100, timeout=2.0, post=post_json
    ):
        self.service = service
        self.url = endpoint.rstrip("/") + "/v1/traces" if endpoint else None
        self.queued = queue.Queue(maxsize=max_queued)
        self.batch, self.timeout, self.post = batch, timeout, post
        self.dropped = 0
        self.sender = None
        self.lock = threading.Lock()

    @classmethod
    def from_environment(cls, service):
        return cls(
            os.environ.get("OTEL_SERVICE_NAME") or service,
            os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
        )

    def start(self, name, traceparent=None, kind=SERVER):
        return Span(name, traceparent, kind) if self.url else None

    def finish(self, span, error=False, **attributes):
        if span is None:
            return
        span.end(error, **attributes)
        try:
            self.queued.put_nowait(span)
        except queue.Full:
            self.dropped += 1
            return
        with self.lock:
            if self.sender is None:
                self.sender = threading.Thread(
                    target=self.send_forever, name="span-sender", daemon=True
                )
                self.sender.start()

    def payload(self, spans):
        return {
            "resourceSpans": [
                {
                    "resource": {"attributes": [attribute("service.name", self.service)]},
                    "scopeSpans": [
                        {"scope": {"name": self.service}, "spans": [span.otlp() for span in spans]}
                    ],
                }
            ]
        }

    def send_forever(self):
        while True:
            spans = [self.queued.get()]
            while len(spans) < self.batch and not self.queued.empty():
                spans.append(self.queued.get_nowait())
            try:
                self.post(self.url, self.payload(spans), self.timeout)
            except (
                OSError,
                ValueError,
            ):  # the collector away or refusing: these spans are lost, requests go on
                self.dropped += len(spans)
            for _ in spans:
                self.queued.task_done()

    def flush(self):
        """Wait until every finished span was sent (or given up); for tests and shutdown."""
        self.queued.join()
