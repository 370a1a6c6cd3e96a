"""429 Too Many Requests (API Priority and Fairness): waited out for the server's Retry-After, bounded, and sent
again, writes included (a 429 says the server did not process the request); the client lowers its requests in
flight meanwhile. The API server is a throw-away local HTTP server; time is a fake clock the sleeps advance."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube import throttle as t
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import KubeClient
from ansible_collections.slipway.platform.plugins.module_utils._kube.config import Connection
from fake_kube import JsonAnswers

PF_HEADERS = {t.PRIORITY_LEVEL_HEADER: "pl-uid-1", t.FLOW_SCHEMA_HEADER: "fs-uid-9"}


class Busy(JsonAnswers):
    """Answers 429 with ``retry_after`` (and the APF headers) ``refusals`` times, then 201/200."""

    refusals = 0
    retry_after = "2"
    seen = []

    def answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append(self.command)
        if type(self).refusals > 0:
            type(self).refusals -= 1
            data = b'{"kind":"Status","reason":"TooManyRequests","message":"too many requests, please try again later"}'
            self.send_response(429)
            for name, value in dict(PF_HEADERS, **({"Retry-After": self.retry_after} if self.retry_after else {})
                                    ).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        return self.reply(201 if self.command == "POST" else 200, {"kind": "ConfigMap", "metadata": {"name": "a"}})

    do_GET = do_POST = do_PUT = answer  # noqa: N815 - http.server's naming


class Clock:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds

    def monotonic(self):
        return self.now


@pytest.fixture
def server():
    Busy.refusals, Busy.retry_after, Busy.seen = 0, "2", []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield Connection(server=f"http://127.0.0.1:{httpd.server_address[1]}", request_timeout=5)
    httpd.shutdown()
    httpd.server_close()


def test_a_write_refused_with_429_waits_the_retry_after_and_is_sent_again_once_processed(server):
    Busy.refusals = 2
    clock = Clock()
    client = KubeClient(server, max_connections=8, sleep=clock.sleep, monotonic=clock.monotonic)
    assert client.request("POST", "/api/v1/namespaces/x/configmaps", body={"metadata": {"name": "a"}}) == {
        "kind": "ConfigMap", "metadata": {"name": "a"}}
    assert Busy.seen == ["POST", "POST", "POST"]  # a POST after a 429: the server said it did nothing
    assert sum(clock.slept) == pytest.approx(4.0)  # twice the Retry-After of 2 s
    assert client.writes == 1 and client.throttle.refusals == 2
    assert client.throttle.limit == 2  # halved twice from 8, raised again slowly as answers come
    assert client.throttle.last_level == "priority level pl-uid-1 (flow schema fs-uid-9)"


def test_retry_after_is_bounded_and_defaults_when_missing_or_a_date():
    assert t.retry_after({"Retry-After": "3600"}) == t.MAX_RETRY_AFTER
    assert t.retry_after({}) == t.DEFAULT_RETRY_AFTER
    assert t.retry_after({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}) == t.DEFAULT_RETRY_AFTER
    assert t.retry_after({"Retry-After": "-4"}) == 0.0


def test_a_server_that_keeps_refusing_fails_after_the_budget_naming_the_priority_level(server):
    Busy.refusals, Busy.retry_after = 1000, "10"
    clock = Clock()
    client = KubeClient(server, sleep=clock.sleep, monotonic=clock.monotonic)
    with pytest.raises(SlipwayError) as failed:
        client.get("/api/v1/namespaces/x/configmaps")
    assert failed.value.details["status"] == 429
    assert "still refused after waiting 60s of Retry-After for priority level pl-uid-1" in failed.value.msg
    assert "lower concurrency" in failed.value.details["hint"]
    assert len(Busy.seen) == 7  # the first try and six more, 10 s apart: the 60 s budget, not forever
    assert sum(clock.slept) == pytest.approx(t.THROTTLE_BUDGET)


def test_the_limit_of_requests_in_flight_halves_on_429_and_comes_back_with_answers():
    clock = Clock()
    throttle = t.Throttle(8, sleep=clock.sleep, monotonic=clock.monotonic)
    throttle.refused({"Retry-After": "1"})
    assert throttle.limit == 4
    throttle.refused({"Retry-After": "3"})
    assert throttle.limit == 2
    with throttle:  # waits out the longest pause asked for (every thread shares it), then takes a slot
        assert throttle.in_flight == 1
    assert clock.slept == [pytest.approx(3.0)]
    assert throttle.in_flight == 0
    for _answer in range(2 + 3 + 4 + 5 + 6 + 7):
        throttle.answered()
    assert throttle.limit == 8  # +1 per `limit` answers, never above the ceiling
