"""Metric gates: the spec, the sampling against a fake Prometheus query, the HTTP boundary, the engine's record."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._gates import parse_health
from ansible_collections.slipway.platform.plugins.module_utils._kube.objects import System
from ansible_collections.slipway.platform.plugins.module_utils._release import health as h
from ansible_collections.slipway.platform.plugins.module_utils._release import metric_gate as m
from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Delivery, Options, SystemRun
from fake_kube import FakeClient

ERROR_RATE = ('sum(rate(http_requests_total{namespace="${namespace}",system="${system}",track="${track}",'
              'code=~"5.."}[1m])) / sum(rate(http_requests_total{system="${system}",track="${track}"}[1m]))')


def metric(**declared):
    found, problems = parse_health(dict({"query": ERROR_RATE, "threshold": 0.05}, **declared), "web", "shop")
    assert not problems, problems
    return found[0]


class Answers:
    """A stand-in for the Prometheus query: gives the values in turn, records what was asked."""

    def __init__(self, *values):
        self.values = list(values)
        self.asked = []

    def __call__(self, url, query, timeout):
        self.asked.append((url, query, timeout))
        value = self.values.pop(0)
        if isinstance(value, Exception):
            raise value
        return value


# ----------------------------------------------------------------------------- the spec


def test_the_defaults_and_the_spec_round_trip():
    gate = metric()
    assert (gate.kind, gate.comparison, gate.threshold, gate.attempts, gate.delay, gate.no_data) == \
        ("metric", "<=", 0.05, 3, 10.0, "fail")
    assert parse_health(gate.spec(), "web", "shop") == ([gate], [])  # what the journal keeps parses back
    assert gate.label.startswith("metric sum(rate(http_requests_total") and gate.label.endswith("... <= 0.05")
    listed = parse_health([{"path": "/healthz", "port": 8080}, gate.spec()], "web", "shop")[0]
    assert [g.kind for g in listed] == ["http", "metric"]


@pytest.mark.parametrize(("declared", "says"), [
    ({"query": "", "threshold": 1}, "query must be a PromQL expression"),
    ({"query": "up", "threshold": "high"}, "threshold must be a number"),
    ({"query": "up"}, "threshold must be a number"),
    ({"query": "up", "threshold": 1, "comparison": "=>"}, "comparison must be one of < <= > >= == !="),
    ({"query": "up", "threshold": 1, "samples": 0}, "samples must be a whole number from 1 to 100"),
    ({"query": "up", "threshold": 1, "interval": -1}, "interval must be zero or more seconds"),
    ({"query": "up", "threshold": 1, "no_data": "ignore"}, "no_data must be fail or pass"),
    ({"query": "up", "threshold": 1, "warmup": "1m"}, "warmup must be zero or more seconds"),
    ({"query": "up", "threshold": 1, "attempts": 3}, "unknown key(s) attempts for a metric gate"),
    ({"query": "up", "threshold": 1, "port": 8080}, "unknown key(s) port for a metric gate"),
])
def test_a_wrong_metric_gate_is_refused_naming_the_fix(declared, says):
    gates, problems = parse_health(declared, "web", "shop")
    assert gates == [] and len(problems) == 1 and says in problems[0], problems


# ----------------------------------------------------------------------------- sampling


def test_every_sample_must_pass_and_the_placeholders_are_filled_in():
    answers = Answers(0.0, 0.01, 0.05)
    slept = []
    found = m.sample(metric(interval=7, warmup=30), "http://prom:9090",
                     {"namespace": "shop", "system": "web", "track": "canary"}, query=answers, sleep=slept.append)
    assert found.passed and [s["value"] for s in found.samples] == [0.0, 0.01, 0.05]
    assert slept == [7.0, 7.0]  # between samples, not after the last; data at once, so no warmup
    url, asked, timeout = answers.asked[0]
    assert (url, timeout) == ("http://prom:9090", 5.0)
    assert 'namespace="shop",system="web",track="canary"' in asked and "${" not in asked
    assert found.query == asked and found.reason == "3 sample(s), last value 0.05 <= 0.05"


def test_the_warmup_waits_for_the_first_data_and_no_longer():
    answers = Answers(None, None, 0.0, 0.01, 0.02)
    slept = []
    found = m.sample(metric(interval=10, warmup=30), "http://prom", {"namespace": "n", "system": "s", "track": "t"},
                     query=answers, sleep=slept.append)
    assert found.passed and [s["value"] for s in found.samples] == [0.0, 0.01, 0.02]
    assert slept == [10.0, 10.0, 10.0, 10.0]  # two waits for data, then between the samples
    never = Answers(None, None, None, None)
    slept = []
    found = m.sample(metric(interval=10, warmup=25), "http://prom", {"namespace": "n", "system": "s", "track": "t"},
                     query=never, sleep=slept.append)
    assert not found.passed and slept == [10.0, 10.0, 5.0]
    assert found.reason == "sample 1 of 3: no data within the warmup of 25s"


def test_the_first_failing_sample_fails_the_gate_at_once():
    answers = Answers(0.0, 0.5, 0.0)
    found = m.sample(metric(), "http://prom", {"namespace": "shop", "system": "web", "track": "stable"},
                     query=answers, sleep=lambda s: None)
    assert not found.passed and len(answers.asked) == 2
    assert found.reason == "sample 2 of 3: value 0.5 not <= 0.05"
    assert found.samples[-1] == {"sample": 2, "value": 0.5, "passed": False}


@pytest.mark.parametrize(("no_data", "passed"), [("fail", False), ("pass", True)])
def test_no_data_fails_unless_the_gate_says_it_passes(no_data, passed):
    found = m.sample(metric(no_data=no_data, samples=1), "http://prom", {"namespace": "n", "system": "s", "track": "t"},
                     query=Answers(None))
    assert found.passed is passed and "no data" in found.reason


@pytest.mark.parametrize(("comparison", "value", "passed"), [
    (">=", 0.99, True), (">=", 0.5, False), ("<", 0.05, False), ("==", 0.05, True), ("!=", 0.05, False),
    (">", float("nan"), False), ("!=", float("nan"), True)])
def test_each_comparison(comparison, value, passed):
    gate = metric(comparison=comparison, threshold=0.99 if comparison == ">=" else 0.05)
    assert m.judge(gate, value)[0] is passed


def test_an_unanswered_query_is_a_failed_sample_with_the_reason():
    found = m.sample(metric(), "http://prom", {"namespace": "n", "system": "s", "track": "t"},
                     query=Answers(SlipwayError("Prometheus at http://prom did not answer: refused")))
    assert not found.passed and found.reason == "sample 1: Prometheus at http://prom did not answer: refused"
    assert found.samples == [{"sample": 1, "value": None, "passed": False,
                              "error": "Prometheus at http://prom did not answer: refused"}]


def test_a_context_without_prometheus_says_which_variable_to_set():
    with pytest.raises(SlipwayError, match="set slipway_prometheus_url"):
        m.prometheus_query(None, "up", 1)


# ----------------------------------------------------------------------------- the HTTP boundary


def vector(*values):
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"pod": f"p{n}"}, "value": [1700000000.0, str(v)]} for n, v in enumerate(values)]}})


def test_the_answer_must_be_one_number():
    assert m.value_of(vector(0.25)) == 0.25
    assert m.value_of(vector()) is None
    assert m.value_of(json.dumps({"status": "success", "data": {"resultType": "scalar", "result": [1, "3"]}})) == 3.0
    with pytest.raises(SlipwayError, match="gives 2 series .*aggregate it to one number"):
        m.value_of(vector(1, 2))
    with pytest.raises(SlipwayError, match="gives a matrix"):
        m.value_of(json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}}))


class FakePrometheus(BaseHTTPRequestHandler):
    """A throw-away HTTP server that answers /api/v1/query like Prometheus (and a 400 for a bad query)."""

    asked = []

    def do_GET(self):  # noqa: N802 - the http.server API
        FakePrometheus.asked.append(self.path)
        if "bad" in self.path:
            body, status = json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"}), 400
        else:
            body, status = vector(0.125), 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def prometheus():
    server = HTTPServer(("127.0.0.1", 0), FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_query_goes_to_the_instant_query_api_and_its_errors_are_shown(prometheus):
    assert m.prometheus_query(prometheus + "/", 'rate(x{a="b"}[1m])', 2) == 0.125
    assert FakePrometheus.asked[-1] == "/api/v1/query?query=rate%28x%7Ba%3D%22b%22%7D%5B1m%5D%29"
    with pytest.raises(SlipwayError, match="answered 400: bad_data: parse error"):
        m.prometheus_query(prometheus, "bad(", 2)
    with pytest.raises(SlipwayError, match="did not answer"):
        m.prometheus_query("http://127.0.0.1:1", "up", 2)


# ----------------------------------------------------------------------------- in a delivery


def web(*declared):
    found, problems = parse_health(list(declared), "web", "shop")
    assert not problems
    return System(name="web", namespace="shop", health=found)


def test_the_health_check_samples_metric_gates_and_fails_the_system_with_the_samples():
    answers = Answers(0.0, 0.2)
    check = h.HealthCheck(FakeClient(), "local", prometheus_url="http://prom", query=answers, sleep=lambda s: None)
    with pytest.raises(SlipwayError) as caught:
        check.check(web(metric(samples=2).spec()))
    assert caught.value.msg.startswith("system web: health gate metric sum(rate(")
    assert "sample 2 of 2: value 0.2 not <= 0.05" in caught.value.msg
    (report,) = caught.value.details["health"]
    assert report["passed"] is False and [s["value"] for s in report["samples"]] == [0.0, 0.2]
    assert 'track="stable"' in report["query"]  # after a rollout, the stable pods


def test_a_canary_step_checks_only_the_given_gates_on_the_canary_track_of_the_stable_system():
    answers = Answers(0.0)
    check = h.HealthCheck(FakeClient(), "local", prometheus_url="http://prom", query=answers, sleep=lambda s: None)
    canary = System(name="web-canary", namespace="shop")
    reports = check.check(canary, gates=[metric(samples=1)], track="canary", subject="web")
    assert reports[0]["passed"] and 'system="web",track="canary"' in answers.asked[0][1]


def test_the_release_record_keeps_each_metric_gate_s_samples():
    delivery = Delivery(FakeClient(), [], Options(context="local", prometheus_url="http://prom"))
    assert delivery.health_check.prometheus_url == "http://prom"
    delivery.key = b"k" * 32
    system = web({"path": "/healthz", "port": 8080}, metric().spec())
    delivery.systems = [system]
    run = SystemRun(system=system)
    sampled = {"gate": "metric ...", "passed": True, "query": "q", "samples": [{"sample": 1, "value": 0.0,
                                                                               "passed": True}]}
    run.health = {"state": "passed", "reason": "", "gates": [{"gate": "GET ...", "passed": True}, sampled]}
    delivery.runs = {"web": run}
    record = delivery.new_record("succeeded", "")
    assert record["systems"]["web"]["metric_gates"] == [sampled]
