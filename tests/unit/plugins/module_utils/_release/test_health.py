"""Health gates: the spec (validated before anything is written), the verdicts, retries, commands, the engine's use."""

from __future__ import annotations

import json
import sys
import time
from types import SimpleNamespace

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._gates import parse_health
from ansible_collections.slipway.platform.plugins.module_utils._kube.objects import System, build_systems
from ansible_collections.slipway.platform.plugins.module_utils._release import health as h
from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Delivery, Options, SystemRun
from fake_kube import FakeClient


def gates(declared, system="backend", namespace="shop"):
    found, problems = parse_health(declared, system, namespace)
    assert not problems, problems
    return found


def problems_of(declared):
    return parse_health(declared, "backend", "shop")[1]


# ----------------------------------------------------------------------------- the spec


def test_the_documented_short_form_is_an_http_gate_on_the_system_s_service():
    (gate,) = gates({"path": "/healthz", "port": 8080})
    assert gate.kind == "http" and (gate.service, gate.namespace, gate.scheme) == ("backend", "shop", "http")
    assert (gate.attempts, gate.delay, gate.timeout) == (5, 2.0, 5.0)
    assert h.proxy_path(gate) == "/api/v1/namespaces/shop/services/backend:8080/proxy/healthz"
    assert gate.label == "GET shop/backend:8080/healthz"


def test_every_http_option_and_the_normalized_spec_round_trips():
    declared = {"path": "/ready?full=1", "port": "https-admin", "service": "api", "namespace": "edge",
                "scheme": "https", "expect_status": [200, 204], "body_contains": "ok", "attempts": 3, "delay": 0.5,
                "timeout": 2}
    (gate,) = gates(declared)
    assert h.proxy_path(gate) == "/api/v1/namespaces/edge/services/https:api:https-admin/proxy/ready?full=1"
    assert gates(gate.spec()) == [gate]  # what the journal keeps validates to the same gate
    (quoted,) = gates({"path": "/", "port": "8080"})
    assert quoted.port == 8080


def test_a_command_gate_and_a_list_of_gates():
    found = gates([{"path": "/healthz", "port": 8080},
                   {"command": ["sh", "-c", "exit 0"], "env": {"TARGET": "shop", "N": 3}, "timeout": 30}])
    assert [g.kind for g in found] == ["http", "command"]
    command = found[1]
    assert (command.attempts, command.timeout, command.env) == (1, 30.0, (("N", "3"), ("TARGET", "shop")))
    assert gates(command.spec()) == [command]
    assert command.label == "command sh -c 'exit 0'"
    assert gates(None) == [] and gates([]) == []


@pytest.mark.parametrize(("declared", "expected"), [
    ("/healthz", "health must be a mapping (one gate) or a list of them, got str"),
    ({"path": "/healthz", "prot": 8080}, "unknown key(s) prot; an HTTP gate takes path, port"),
    ({"path": "/h", "port": 1, "command": ["true"]}, "either an HTTP gate (path, port) or a command gate"),
    ({"timeout": 3}, "declare path and port (an HTTP gate through the service proxy), command"),
    ({"path": "healthz", "port": 8080}, "path must be an absolute URL path such as /healthz"),
    ({"path": "/a/../secret", "port": 8080}, "no '..'"),
    ({"path": "/healthz"}, "port must be the Service's port number (1-65535) or port name, got None"),
    ({"path": "/healthz", "port": 70000}, "got 70000"),
    ({"path": "/healthz", "port": "Not_A_Name"}, "got 'Not_A_Name'"),
    ({"path": "/healthz", "port": 80, "service": "Web"}, "service must be a Service name"),
    ({"path": "/healthz", "port": 80, "scheme": "ftp"}, "scheme must be http or https"),
    ({"path": "/healthz", "port": 80, "expect_status": "2xx"}, "expect_status must be an HTTP status"),
    ({"path": "/healthz", "port": 80, "body_contains": ""}, "body_contains must be a non-empty string"),
    ({"path": "/healthz", "port": 80, "attempts": 0}, "attempts must be a whole number from 1 to 100"),
    ({"path": "/healthz", "port": 80, "attempts": True}, "attempts must be a number"),
    ({"path": "/healthz", "port": 80, "timeout": 0}, "timeout must be a positive number of seconds"),
    ({"path": "/healthz", "port": 80, "delay": -1}, "delay must be zero or more seconds"),
    ({"command": "curl -f http://x/healthz"}, "command must be a non-empty list of strings (argv, no shell)"),
    ({"command": ["sleep", 5]}, "command must be a non-empty list of strings"),
    ({"command": ["true"], "env": {"SLIPWAY_SYSTEM": "x"}}, "env SLIPWAY_SYSTEM is reserved"),
    ({"command": ["true"], "env": {"A": ["x"]}}, "env A must be a string (quote it)"),
    ({"command": ["true"], "env": {"1A": "x"}}, "env name '1A' is not a valid variable name"),
    (["/healthz"], "health[0]: a gate must be a mapping, got str"),
])
def test_a_wrong_spec_is_named_exactly(declared, expected):
    found = problems_of(declared)
    assert any(expected in problem for problem in found), found
    assert all(problem.startswith("system backend: health") for problem in found)


def test_build_systems_refuses_bad_gates_with_every_other_problem_before_anything_is_written():
    raw = [{"name": "backend", "namespace": "shop", "health": {"path": "/healthz"},
            "documents": [{"file": "deploy/a.yaml.j2", "index": 0, "content": {"kind": "ConfigMap"}}]},
           {"name": "frontend", "namespace": "shop", "health": [{"path": "/", "port": 8080}, {"command": "x"}]}]
    with pytest.raises(SlipwayError) as err:
        build_systems(raw)
    problems = err.value.details["problems"]
    assert "nothing was written" in err.value.msg
    assert any("system backend: health: port must be" in p for p in problems)
    assert any("system frontend: health[1]: command must be" in p for p in problems)
    assert any("missing or empty 'apiVersion'" in p for p in problems)
    good = build_systems([{"name": "backend", "namespace": "shop", "health": {"path": "/healthz", "port": 8080}}])
    assert good[0].health == gates({"path": "/healthz", "port": 8080})
    assert build_systems([{"name": "worker", "namespace": "shop"}])[0].health == []


# ----------------------------------------------------------------------------- verdicts and retries


def status_body(status, message):
    return json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                       "code": status}).encode()


def test_http_verdicts():
    (gate,) = gates({"path": "/healthz", "port": 8080})
    assert h.judge_answer(gate, 200, b"ok").passed and h.judge_answer(gate, 204, b"").passed
    missing = h.judge_answer(gate, 404, b"<h1>404 Not Found</h1>")
    assert not missing.passed and not missing.final
    assert missing.reason == "404 (expected 2xx): '<h1>404 Not Found</h1>'"
    (strict,) = gates({"path": "/healthz", "port": 8080, "expect_status": 204, "body_contains": "ready"})
    assert h.judge_answer(strict, 200, b"ready").reason.startswith("200 (expected 204)")
    assert h.judge_answer(strict, 204, b"starting").reason == "204, but the body lacks 'ready': 'starting'"
    forbidden = h.judge_answer(gate, 403, status_body(403, 'services "backend:8080" is forbidden'))
    assert forbidden.final and "needs 'get' on services/proxy in namespace shop" in forbidden.reason
    unreachable = h.judge_answer(gate, 503, status_body(503, "error trying to reach service: connection refused"))
    assert not unreachable.final
    assert unreachable.reason.startswith("503 from the API server: error trying to reach service")
    wrong_port = h.judge_answer(gate, 503, status_body(503, 'no service port 9999 found for service "backend"'))
    assert wrong_port.final and "health.port is a port of the Service, by number or name" in wrong_port.reason
    no_service = h.judge_answer(gate, 404, status_body(404, 'services "backend" not found'))
    assert no_service.final and no_service.reason.startswith('404 from the API server: services "backend" not found')
    app_404 = h.judge_answer(gate, 404, b'{"error": "no route /healthz"}')  # the pod's own 404: may come right
    assert not app_404.final and app_404.reason == """404 (expected 2xx): '{"error": "no route /healthz"}'"""
    long_answer = h.judge_answer(gate, 500, b"x" * 5000)
    assert len(long_answer.reason) < 400


class Clock:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def checker(fetch=None, runner=None, masked=()):
    clock = Clock()
    return h.HealthCheck(FakeClient(), "local", masked=masked, fetch=fetch, runner=runner, clock=clock,
                         sleep=clock.sleep, environ={"PATH": "/usr/bin:/bin"}), clock


def backend(declared, images=None):
    return System(name="backend", namespace="shop", images=images or {"backend": "reg/backend@sha256:1"},
                  health=gates(declared))


def test_an_http_gate_retries_until_the_service_answers_well():
    answers = iter([(503, status_body(503, 'no endpoints available for service "backend"')), (500, b"warming up"),
                    (200, b'{"status": "ok"}')])
    asked = []

    def fetch(client, path, timeout):
        asked.append((path, timeout))
        return next(answers)

    check, clock = checker(fetch=fetch)
    lines = []
    reports = check.check(backend({"path": "/healthz", "port": 8080, "delay": 1.5}), say=lines.append)
    assert asked == [("/api/v1/namespaces/shop/services/backend:8080/proxy/healthz", 5.0)] * 3
    assert clock.slept == [1.5, 1.5]
    assert reports == [{"gate": "GET shop/backend:8080/healthz", "passed": True, "attempts": 3, "seconds": 3.0,
                        "reason": "200"}]
    assert lines == ["backend: health gate GET shop/backend:8080/healthz passed (200; attempt 3 of 5, 3.0s)"]


def test_a_failing_http_gate_fails_the_system_with_every_attempt_told():
    def fetch(client, path, timeout):
        if path.endswith("/slow"):
            raise SlipwayError(f"GET {path}: no answer within the timeout")
        return 404, b"404 Not Found"

    check, clock = checker(fetch=fetch)
    with pytest.raises(SlipwayError) as err:
        check.check(backend([{"path": "/slow", "port": 8080, "attempts": 1},
                             {"path": "/healthz", "port": 8080, "attempts": 2}]))
    assert err.value.msg.startswith("system backend: health gate GET shop/backend:8080/slow failed after 1 "
                                    "attempt(s) in 0.0s: GET /api/v1/namespaces/shop/services/backend:8080/proxy/slow"
                                    ": no answer within the timeout")
    check, clock = checker(fetch=fetch)
    with pytest.raises(SlipwayError) as err:
        check.check(backend([{"path": "/", "port": 8080, "attempts": 1, "expect_status": 404},
                             {"path": "/healthz", "port": 8080, "attempts": 2}]))
    assert "GET shop/backend:8080/healthz failed after 2 attempt(s) in 2.0s: 404 (expected 2xx)" in err.value.msg
    assert err.value.details["details"] == [f"attempt {n}: 404 (expected 2xx): '404 Not Found'" for n in (1, 2)]
    assert [g["passed"] for g in err.value.details["health"]] == [True, False]


def test_no_permission_is_not_retried():
    calls = []

    def fetch(client, path, timeout):
        calls.append(path)
        return 403, status_body(403, "forbidden")

    check, clock = checker(fetch=fetch)
    with pytest.raises(SlipwayError, match="needs 'get' on services/proxy"):
        check.check(backend({"path": "/healthz", "port": 8080}))
    assert len(calls) == 1 and clock.slept == []


def test_a_command_gate_sees_where_it_runs_and_passes_on_exit_0():
    script = ('test "$SLIPWAY_CONTEXT" = local && test "$SLIPWAY_SYSTEM" = backend && '
              'test "$SLIPWAY_NAMESPACE" = shop && test "$EXTRA" = yes && '
              'case "$SLIPWAY_IMAGES" in *reg/backend@sha256:1*) exit 0;; esac; exit 7')
    check = h.HealthCheck(FakeClient(), "local")
    reports = check.check(backend({"command": ["sh", "-c", script], "env": {"EXTRA": "yes"}}))
    assert reports[0]["passed"] and reports[0]["reason"] == "exit 0"
    with pytest.raises(SlipwayError) as err:
        check.check(backend({"command": ["sh", "-c", script]}))  # EXTRA unset
    assert err.value.msg.endswith("failed after 1 attempt(s) in " + err.value.msg.rsplit(" in ", 1)[1])
    assert "exit 7; output: no output" in err.value.msg


def test_a_failing_command_shows_the_end_of_its_output_without_secrets():
    check = h.HealthCheck(FakeClient(), "local", masked={"SENTINEL-token-value"},
                          environ={"PATH": "/usr/bin:/bin", "TOKEN": "SENTINEL-token-value"})
    script = 'seq 1 500; echo "token=$TOKEN" >&2; exit 3'
    with pytest.raises(SlipwayError) as err:
        check.check(backend({"command": ["sh", "-c", script], "attempts": 2, "delay": 0}))
    assert "exit 3; output: ..." in err.value.msg and "500 token=********" in err.value.msg
    assert "SENTINEL" not in json.dumps(err.value.to_result())
    assert len(err.value.details["details"]) == 2


def test_a_command_that_hangs_is_killed_with_its_children_at_the_timeout():
    check = h.HealthCheck(FakeClient(), "local")
    start = time.monotonic()
    with pytest.raises(SlipwayError) as err:  # the shell's child holds the output pipe: the group must go
        check.check(backend({"command": ["sh", "-c", "echo started; sleep 30; echo never"], "timeout": 0.5}))
    assert time.monotonic() - start < 5
    assert "no exit within 0.5s (killed); output: started" in err.value.msg


def test_a_missing_program_fails_at_once():
    check = h.HealthCheck(FakeClient(), "local")
    with pytest.raises(SlipwayError, match="cannot run /nonexistent/smoke-test: No such file or directory") as err:
        check.check(backend({"command": ["/nonexistent/smoke-test"], "attempts": 5, "delay": 30}))
    assert len(err.value.details["details"]) == 1


def test_the_real_runner_reports_exit_codes():
    assert h.run_command([sys.executable, "-c", "print('hi'); raise SystemExit(4)"], None, 10) == (4, "hi\n")


# ----------------------------------------------------------------------------- in the delivery engine


class Gates:
    def __init__(self, fail=False):
        self.fail = fail
        self.checked = []

    def check(self, system, say=lambda line: None):
        self.checked.append(system.name)
        if self.fail:
            raise SlipwayError(f"system {system.name}: health gate X failed", details=["attempt 1: 500"],
                               health=[{"passed": False}])
        return [{"passed": True}]


def engine(last=None, wait=True, fail=False):
    delivery = Delivery(FakeClient(), [], Options(context="local", wait=wait))
    delivery.last = last
    delivery.lease = SimpleNamespace(check=lambda: None)
    delivery.health_check = Gates(fail=fail)
    return delivery


def planned(changed, declared=None):
    system = backend(declared or {"path": "/healthz", "port": 8080})
    return SystemRun(system=system, plans=[SimpleNamespace(changed=changed)])


def test_gates_run_for_a_changed_system_and_a_failing_one_fails_it():
    delivery = engine()
    run = planned(changed=True)
    delivery.check_health(run)
    assert delivery.health_check.checked == ["backend"] and run.health["state"] == "passed"
    failing = engine(fail=True)
    run = planned(changed=True)
    with pytest.raises(SlipwayError, match="health gate X failed"):
        failing.check_health(run)
    assert run.health["state"] == "failed" and run.details == ["attempt 1: 500"]


def test_an_unchanged_healthy_system_is_not_checked_but_one_that_failed_last_time_is():
    healthy = {"systems": {"backend": {"result": "changed"}}}
    delivery = engine(last=healthy)
    run = planned(changed=False)
    delivery.check_health(run)
    assert delivery.health_check.checked == [] and run.health["state"] == "skipped"
    for previous in ({"systems": {"backend": {"result": "failed"}}}, {"systems": {}}, None):
        delivery = engine(last=previous)
        delivery.check_health(planned(changed=False))
        assert delivery.health_check.checked == ["backend"], previous


def test_without_wait_or_without_gates_nothing_is_checked():
    delivery = engine(wait=False)
    run = planned(changed=True)
    delivery.check_health(run)
    assert delivery.health_check.checked == [] and run.health["state"] == "not run"
    delivery = engine()
    run = SystemRun(system=System(name="worker", namespace="shop"), plans=[SimpleNamespace(changed=True)])
    delivery.check_health(run)
    assert delivery.health_check.checked == [] and run.health is None and delivery.health_row(run) is None


def test_the_release_record_keeps_the_gates_for_a_rollback():
    delivery = Delivery(FakeClient(), [], Options(context="local"))
    delivery.key = b"k" * 32
    system = backend({"path": "/healthz", "port": 8080})
    delivery.systems = [system, System(name="worker", namespace="shop")]
    delivery.runs = {s.name: SystemRun(system=s) for s in delivery.systems}
    record = delivery.new_record("succeeded", "")
    assert record["systems"]["backend"]["health"] == [gates({"path": "/healthz", "port": 8080})[0].spec()]
    assert "health" not in record["systems"]["worker"]
    delivery.opts.check_mode = True
    assert delivery.health_row(delivery.runs["backend"]) == {"state": "not run", "reason": "check mode", "gates": []}


def test_a_rollback_checks_the_gates_its_target_release_recorded():
    from ansible_collections.slipway.platform.plugins.module_utils._release.rollback import rollback_systems

    spec = gates({"path": "/healthz", "port": 8080})[0].spec()
    target = {"revision": 1, "systems": {"backend": {"health": [spec]}, "worker": {}}}
    current = {"revision": 2, "systems": {"backend": {}, "worker": {}}}
    stored = {name: {"namespace": "shop", "objects": []} for name in ("backend", "worker")}
    reader = SimpleNamespace(release_objects=lambda record, names: {n: stored[n] for n in names})
    raw, _dropped = rollback_systems(reader, target, current)
    assert {r["name"]: r["health"] for r in raw} == {"backend": [spec], "worker": None}
    assert build_systems(raw)[0].health == gates({"path": "/healthz", "port": 8080})
