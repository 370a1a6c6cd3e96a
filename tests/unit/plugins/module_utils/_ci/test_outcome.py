"""Outcomes: each failure maps to the one outcome a pipeline acts on, and each outcome to its documented code."""

from __future__ import annotations

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._ci import outcome
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError

LOCKED = {"failed": True, "cause": "lock_not_obtained", "msg": "context staging is locked by job 7"}
FAILED_TESTS = {"failed": True,
                "images": [{"image": "api", "verdict": "passed"}, {"image": "web", "verdict": "failed"}]}


@pytest.mark.parametrize(("results", "step", "failure", "declared", "expected"), [
    ({"deliver": {"changed": True}}, None, None, None, "succeeded"),
    ({"deliver": {"changed": False}}, None, None, None, "nothing_to_do"),
    ({"build": {"changed": False}, "test": {"changed": False}, "deliver": {"changed": False}}, None, None, None,
     "nothing_to_do"),
    ({"test": {"changed": False, "passed": True}}, None, None, None, "succeeded"),  # tests ran: never "nothing"
    ({"test": FAILED_TESTS}, "test", FAILED_TESTS, None, "tests_failed"),
    ({"test": {"failed": True, "msg": "images-local.json is missing"}}, "test", {"msg": "missing"}, None, "failed"),
    ({"deliver": {"failed": True, "rollback": {"revision": 5}}}, "deliver", {"msg": "x"}, None,
     "delivery_failed_rolled_back"),
    ({"deliver": {"failed": True, "rollback": {"failed": True, "msg": "boom"}}}, "deliver", {"msg": "x"}, None,
     "rollback_failed"),
    ({"rollback": {"failed": True}}, "rollback", {"msg": "apply failed"}, None, "rollback_failed"),
    ({"rollback": LOCKED}, "rollback", LOCKED, None, "lock_not_obtained"),
    ({"deliver": {"failed": True}}, "deliver", {"cause": "lock_not_obtained"}, None, "lock_not_obtained"),
    ({}, None, {"cause": "lock_not_obtained", "msg": "locked"}, None, "lock_not_obtained"),  # the job's hold
    ({}, "rebase", {"msg": "conflict"}, "integration_conflict", "integration_conflict"),
    ({"deliver": {"changed": True}, "rollback": {"changed": True}}, "merge", {"msg": "rejected"},
     "integration_conflict", "integration_conflict"),
    ({"deliver": {"changed": True}, "rollback": {"failed": True}}, "rollback", {"msg": "x"}, "integration_conflict",
     "rollback_failed"),  # a context between releases needs a person more than a conflict needs a rebase
    ({"deliver": {"failed": True}}, "deliver", {"msg": "dry-run failed"}, None, "failed"),
])
def test_classify(results, step, failure, declared, expected):
    assert outcome.classify(results, step, failure, declared) == expected


def test_exit_codes_are_distinct_for_every_failure_and_clear_of_ansible_playbooks():
    failures = [name for name in outcome.OUTCOMES if name not in ("succeeded", "nothing_to_do")]
    codes = [outcome.exit_code(name) for name in failures]
    assert len(set(codes)) == len(codes) and 0 not in codes
    assert not set(codes) & {2, 3, 4, 5, 6, 7, 8, 99, 250} - {1}
    assert outcome.exit_code("nothing_to_do") == 0 and outcome.exit_code("nothing_to_do", detailed=True) == 10
    assert outcome.exit_code("succeeded", detailed=True) == 0


def test_an_unknown_outcome_is_refused_by_name():
    with pytest.raises(SlipwayError, match="unknown outcome 'done'"):
        outcome.exit_code("done")
