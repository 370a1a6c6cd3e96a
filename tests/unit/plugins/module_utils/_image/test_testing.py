"""The black-box runner with a fake engine and a fake compose: verdicts, timeouts, teardown always."""

from __future__ import annotations

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._image import testing as t
from ansible_collections.slipway.platform.plugins.module_utils._image.spec import ImageSpec, System
from ansible_collections.slipway.platform.plugins.module_utils._image.spec import TestSpec as CommandSpec

REF = "127.0.0.1:5001/api@sha256:" + "a" * 64


class FakeEngine:
    """``outcomes`` maps a command's first word to (exit code, output, timed out)."""

    def __init__(self, outcomes, calls):
        self.outcomes, self.calls = outcomes, calls

    def run(self, image, command, timeout, network="none", environment=None, labels=None):
        self.calls.append(("run", command[0], network, labels.get(t.RUN_LABEL)))
        outcome = self.outcomes.get(command[0], (0, b"ok\n", False))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def close(self):
        self.calls.append(("close",))


class FakeCompose:
    def __init__(self, calls, services=("api", "db", "cache"), fail_up=False, fail_down=False):
        self.calls, self.list, self.fail_up, self.fail_down = calls, list(services), fail_up, fail_down
        self.network = "proj_default"

    def services(self):
        return self.list

    def up(self, services):
        self.calls.append(("up", tuple(services)))
        if self.fail_up:
            raise SlipwayError("compose up failed", command="docker-compose up", stderr="db unhealthy")

    def down(self):
        self.calls.append(("down",))
        if self.fail_down:
            raise SlipwayError("compose down failed", stderr="network busy")


def system(categories, compose="compose.yml"):
    tests = tuple(CommandSpec(c, (c, "arg"), 5) for c in categories)
    return System("api", "/x/api", (ImageSpec("api", "api", "/x/api", "Dockerfile"),), tests, compose)


ALL = ("unit", "functional", "style", "duplication", "outdated", "licences")


def run(sys_, outcomes=None, compose=None, categories=ALL, strict=True):
    calls = []
    planned = t.plan([sys_], {"api": REF}, categories, strict)
    results = t.run_all(planned, lambda: FakeEngine(outcomes or {}, calls),
                        lambda s, project: compose or FakeCompose(calls), "run1", workers=2)
    return results[0], calls


def test_all_passing_gives_a_passed_verdict_and_functional_gets_its_dependencies():
    result, calls = run(system(ALL))
    assert result["verdict"] == "passed"
    assert [x["category"] for x in result["tests"]] == list(ALL)
    assert ("up", ("db", "cache")) in calls and ("down",) in calls  # not the system's own service
    networks = {c[1]: c[2] for c in calls if c[0] == "run"}
    assert networks["functional"] == "proj_default" and networks["unit"] == "none"
    assert all(c[3] == "run1" for c in calls if c[0] == "run")


def test_failures_and_timeouts_fail_the_image_but_every_command_runs():
    outcomes = {"style": (1, b"a.py:1: trailing whitespace\n", False),
                "outdated": (None, b"still running\n", True)}
    result, engine_calls = run(system(ALL), outcomes)
    statuses = {x["category"]: x["status"] for x in result["tests"]}
    assert result["verdict"] == "failed"
    assert statuses == {"unit": "passed", "functional": "passed", "style": "failed", "duplication": "passed",
                        "outdated": "timeout", "licences": "passed"}
    timed_out = [x for x in result["tests"] if x["status"] == "timeout"][0]
    assert "killed after its timeout of 5s" in timed_out["output"]


def test_compose_is_torn_down_when_its_dependencies_fail_to_start():
    calls = []
    result, engine_calls = run(system(("functional",)), compose=FakeCompose(calls, fail_up=True),
                               categories=("functional",))
    assert result["verdict"] == "failed"
    assert result["tests"][0]["status"] == "error" and "db unhealthy" in result["tests"][0]["output"]
    assert calls[-1] == ("down",)


def test_compose_is_torn_down_when_the_test_run_raises():
    calls = []
    outcomes = {"functional": RuntimeError("engine went away")}
    result, engine_calls = run(system(("functional",)), outcomes, FakeCompose(calls), categories=("functional",))
    assert result["tests"][0]["status"] == "error" and "engine went away" in result["tests"][0]["output"]
    assert calls[-1] == ("down",)


def test_a_failed_teardown_is_reported():
    calls = []
    result, engine_calls = run(system(("functional",)), compose=FakeCompose(calls, fail_down=True),
                               categories=("functional",))
    assert result["tests"][0]["status"] == "error" and "teardown failed" in result["tests"][0]["output"]


def test_no_dependencies_means_no_network():
    calls = []
    result, engine_calls = run(system(("functional",)), compose=FakeCompose(calls, services=("api",)),
                               categories=("functional",))
    assert result["verdict"] == "passed" and not any(c[0] == "up" for c in calls)
    assert [c[2] for c in engine_calls if c[0] == "run"] == ["none"]


def test_missing_categories_fail_when_strict():
    result, engine_calls = run(system(("unit",)))
    assert result["verdict"] == "failed"
    assert {x["category"] for x in result["tests"] if x["status"] == "missing"} == set(ALL) - {"unit"}
    relaxed, engine_calls = run(system(("unit",)), strict=False)
    assert relaxed["verdict"] == "passed"


def test_plan_needs_a_built_reference():
    with pytest.raises(SlipwayError, match="run the build step"):
        t.plan([system(ALL)], {}, ALL)


def test_image_env_and_output_tail():
    assert t.image_env({"web-ui": "r1", "api": "r2"}) == {"SLIPWAY_IMAGE_WEB_UI": "r1", "SLIPWAY_IMAGE_API": "r2"}
    long = "\n".join(f"line {i}" for i in range(100)).encode()
    tail = t.output_tail(long)
    assert tail.startswith("line 60") and tail.endswith("line 99")
    assert t.output_tail(b"\xff\xfe bad bytes").endswith("bad bytes")
