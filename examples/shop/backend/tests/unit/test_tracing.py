# SPDX-License-Identifier: GPL-3.0-or-later
"""Trace context and spans: continuing a caller's trace, the OTLP JSON, and sending that never
blocks a request."""

import threading
import unittest

from shop_backend.tracing import Span, Tracer, parse_traceparent

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class TraceContextTest(unittest.TestCase):
    def test_a_valid_traceparent_gives_the_trace_and_the_parent(self):
        self.assertEqual(
            parse_traceparent(CALLER), ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
        )

    def test_anything_else_is_no_context(self):
        for value in (
            None,
            "",
            "00-xyz-b7ad6b7169203331-01",
            CALLER.replace("00-", "ff-", 1),
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            CALLER.upper(),
        ):
            self.assertIsNone(parse_traceparent(value), value)

    def test_a_span_continues_its_callers_trace_and_passes_itself_on(self):
        span = Span("GET /api/products", CALLER)
        self.assertEqual(
            (span.trace_id, span.parent_id),
            ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"),
        )
        self.assertEqual(span.traceparent, f"00-{span.trace_id}-{span.span_id}-01")
        self.assertEqual(parse_traceparent(span.traceparent), (span.trace_id, span.span_id))

    def test_without_a_caller_a_span_starts_a_trace(self):
        first, second = Span("a"), Span("b", "garbage")
        self.assertIsNone(first.parent_id)
        self.assertNotEqual(first.trace_id, second.trace_id)
        self.assertEqual(len(first.trace_id), 32)


class OtlpTest(unittest.TestCase):
    def test_the_payload_is_otlp_json(self):
        tracer = Tracer("backend", "http://collector:4318/")
        span = tracer.start("POST /api/orders", CALLER)
        span.end(error=True, **{"http.response.status_code": 503, "http.route": "/api/orders"})
        body = tracer.payload([span])
        resource = body["resourceSpans"][0]
        self.assertEqual(
            resource["resource"]["attributes"],
            [{"key": "service.name", "value": {"stringValue": "backend"}}],
        )
        otlp = resource["scopeSpans"][0]["spans"][0]
        self.assertEqual(otlp["parentSpanId"], "b7ad6b7169203331")
        self.assertEqual((otlp["kind"], otlp["status"]), (2, {"code": 2}))
        self.assertIn(
            {"key": "http.response.status_code", "value": {"intValue": "503"}}, otlp["attributes"]
        )
        self.assertLessEqual(int(otlp["startTimeUnixNano"]), int(otlp["endTimeUnixNano"]))
        self.assertEqual(tracer.url, "http://collector:4318/v1/traces")

    def test_a_root_span_has_no_parent(self):
        self.assertNotIn("parentSpanId", Span("a").otlp())


class SendingTest(unittest.TestCase):
    def test_without_an_endpoint_nothing_is_recorded(self):
        tracer = Tracer("backend", None, post=lambda *_: self.fail("nothing may be sent"))
        self.assertIsNone(tracer.start("GET /api/products"))
        tracer.finish(None)

    def test_finished_spans_are_posted_to_the_collector(self):
        posted = []
        tracer = Tracer(
            "backend", "http://collector:4318", post=lambda url, body, _: posted.append((url, body))
        )
        span = tracer.start("GET /api/products", CALLER)
        tracer.finish(span)
        tracer.flush()
        self.assertEqual(posted[0][0], "http://collector:4318/v1/traces")
        self.assertEqual(
            posted[0][1]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"], span.span_id
        )

    def test_a_collector_that_fails_loses_its_spans_and_nothing_else(self):
        def refuse(*_):
            raise OSError("connection refused")

        tracer = Tracer("backend", "http://collector:4318", post=refuse)
        tracer.finish(tracer.start("GET /api/products"))
        tracer.flush()
        self.assertEqual(tracer.dropped, 1)

    def test_a_full_queue_drops_instead_of_waiting(self):
        release = threading.Event()
        tracer = Tracer(
            "backend",
            "http://collector:4318",
            max_queued=1,
            batch=1,
            post=lambda *_: release.wait(10),
        )
        for _ in range(5):
            tracer.finish(tracer.start("GET /api/products"))
        self.assertGreaterEqual(tracer.dropped, 3)
        release.set()
        tracer.flush()


if __name__ == "__main__":
    unittest.main()
