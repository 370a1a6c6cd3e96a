"""A stepped canary: each step's metric gates decide between the next step, the promotion and an abort."""

from __future__ import annotations

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._gates import parse_health
from ansible_collections.slipway.platform.plugins.module_utils._release import canary_steps
from ansible_collections.slipway.platform.plugins.module_utils._release import health as h
from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Options
from fake_kube import FakeClient

ERRORS = 'sum(rate(http_requests_total{system="${system}",track="${track}",code=~"5.."}[1m])) or vector(0)'
GATE = parse_health({"query": ERRORS, "threshold": 0.05, "samples": 2, "interval": 0}, "web", "shop")[0][0]
HTTP = parse_health({"path": "/healthz", "port": 8080}, "web", "shop")[0][0]
METRIC_ONLY = (GATE.spec(),)


class Steps:
    """Stands in for canary.canary (its own tests cover it): records each step, answers like it."""

    def __init__(self, fail_start_at=None):
        self.calls = []
        self.fail_start_at = fail_start_at

    def __call__(self, client, options, system, action, images=None, weight=None, reason=None, progress=None,
                 route=None, gates=None):
        self.calls.append({"action": action, "weight": weight, "reason": reason, "gates": gates, "route": route})
        if action == "start" and weight == self.fail_start_at:
            raise SlipwayError("delivery to local failed: web-canary: CrashLoopBackOff")
        return {"changed": True, "revision": len(self.calls), "canary": {"system": system, "action": action}}


def run(monkeypatch, values, health=METRIC_ONLY, steps=None, check_mode=False, fail_start_at=None):
    record = {"revision": 4, "systems": {"web": {"namespace": "shop", "health": list(health)}}}
    monkeypatch.setattr(canary_steps, "Journal", lambda *args: type("J", (), {"records": lambda self: [record]})())
    calls = Steps(fail_start_at)
    monkeypatch.setattr(canary_steps, "canary", calls)
    answers = list(values)
    asked = []

    def query(url, text, timeout):
        asked.append(text)
        return answers.pop(0)

    check = h.HealthCheck(FakeClient(), "local", prometheus_url="http://prom", query=query, sleep=lambda s: None)
    options = Options(context="local", check_mode=check_mode, prometheus_url="http://prom")
    try:
        return canary_steps.progress(FakeClient(), options, "web", {"web": "reg/web:2"}, steps=steps,
                                     health_check=check), calls.calls, asked
    except SlipwayError as exc:
        return exc, calls.calls, asked


def test_healthy_gates_promote_through_each_step(monkeypatch):
    result, calls, asked = run(monkeypatch, [0.0, 0.0, 0.01, 0.0])
    assert [(c["action"], c["weight"]) for c in calls] == [("start", 10), ("start", 50), ("promote", None)]
    assert all('system="web",track="canary"' in q for q in asked) and len(asked) == 4
    assert [s["weight"] for s in result["canary"]["steps"]] == [10, 50]
    promote = calls[-1]
    assert promote["reason"] == "gates passed at 10%, 50%"
    assert [len(step["gates"][0]["samples"]) for step in promote["gates"]] == [2, 2]  # kept in the journal


def test_a_failing_gate_aborts_at_that_step_and_says_why(monkeypatch):
    error, calls, asked = run(monkeypatch, [0.0, 0.0, 0.02, 0.4])
    assert [(c["action"], c["weight"]) for c in calls] == [("start", 10), ("start", 50), ("abort", None)]
    assert isinstance(error, SlipwayError) and error.details["aborted"] is True
    assert error.msg.startswith("a metric gate failed at 50%: system web-canary: health gate metric")
    assert "sample 2 of 2: value 0.4 not <= 0.05" in error.msg and "stable release keeps all the traffic" in error.msg
    abort = calls[-1]
    assert abort["reason"].startswith("a metric gate failed at 50%")
    assert [step["passed"] for step in abort["gates"]] == [True, False]
    assert abort["gates"][1]["gates"][0]["samples"][-1]["value"] == 0.4


def test_a_step_that_does_not_become_ready_is_aborted_too(monkeypatch):
    error, calls = run(monkeypatch, [], fail_start_at=10)[:2]
    assert [(c["action"], c["weight"]) for c in calls] == [("start", 10), ("abort", None)]
    assert "the canary at 10% failed: delivery to local failed: web-canary: CrashLoopBackOff" in error.msg


def test_only_metric_gates_decide_and_a_system_without_one_is_refused(monkeypatch):
    result, calls, asked = run(monkeypatch, [0.0, 0.0], health=(HTTP.spec(), GATE.spec()), steps=[25])
    assert [(c["action"], c["weight"]) for c in calls] == [("start", 25), ("promote", None)] and len(asked) == 2
    error, calls = run(monkeypatch, [], health=(HTTP.spec(),))[:2]
    assert calls == [] and "declares no metric gate" in error.msg


@pytest.mark.parametrize("steps", [[50, 10], [10, 100], [0], [10, 10], ["10"]])
def test_steps_must_rise_from_1_to_99(monkeypatch, steps):
    error, calls = run(monkeypatch, [], steps=steps)[:2]
    assert calls == [] and "steps must be rising weights from 1 to 99" in error.msg


def test_check_mode_predicts_the_first_step_and_samples_nothing(monkeypatch):
    result, calls, asked = run(monkeypatch, [], check_mode=True)
    assert [(c["action"], c["weight"]) for c in calls] == [("start", 10)] and asked == []
    assert result["canary"]["steps"][0]["passed"] is None
