"""Result files and step JUnit: what a pipeline reads after each playbook, from the results the steps registered."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from ansible_collections.slipway.platform.plugins.module_utils._ci import result

STARTED = 1_700_000_000.0
ROW = {"system": "backend", "images": {"backend": "r/backend@sha256:b"}, "revision": 7, "result": "changed",
       "reason": "", "seconds": 2.5, "details": []}


def junit(texts, path):
    return ET.fromstring(texts[path])  # noqa: S314 - our own output


def cases(root):
    return {(case.get("classname"), case.get("name")): case for case in root.iter("testcase")}


def test_a_delivery_rolled_back_tells_both_revisions_and_has_a_case_per_system(tmp_path):
    failed_row = dict(ROW, system="web", images={"web": "r/web@sha256:w"}, result="failed",
                      reason="Deployment shop/web: CrashLoopBackOff")
    deliver = {"failed": True, "msg": "delivery to local failed (recorded as revision 8)", "revision": 8,
               "systems": [ROW, failed_row, dict(ROW, system="worker", result="skipped", reason="a dependency failed")],
               "rollback": {"revision": 9, "recorded": True, "rollback": {"to": 6, "from": 8},
                            "systems": [dict(ROW, result="changed", revision=9)]}}
    document, texts = result.reports(str(tmp_path), "deliver", "local", {"deliver": deliver},
                                     {"deliver": STARTED + 1}, STARTED, failure=deliver, finished=STARTED + 11,
                                     ci={"server": "jenkins", "url": "https://ci/job/7/", "build_number": "7"},
                                     run_id="r1")
    assert (document["outcome"], document["exit_code"], document["failed_step"]) == \
        ("delivery_failed_rolled_back", 12, "deliver")
    assert (document["revision"], document["failed_revision"], document["rolled_back_to"]) == (9, 8, 6)
    assert document["durations"] == {"deliver": 10.0, "total": 11.0}
    assert document["images"] == {"backend": "r/backend@sha256:b", "web": "r/web@sha256:w"}
    assert document["ci"]["url"] == "https://ci/job/7/" and document["run_id"] == "r1"
    root = junit(texts, str(tmp_path / "junit-deliver-local.xml"))
    found = cases(root)
    assert found[("deliver.backend", "backend")].find("failure") is None
    assert found[("deliver.web", "web")].find("failure").get("message") == "Deployment shop/web: CrashLoopBackOff"
    assert found[("deliver.worker", "worker")].find("skipped") is not None
    assert found[("rollback.backend", "backend")].find("failure") is None  # the automatic rollback's own suite
    assert json.loads(texts[str(tmp_path / "result-local.json")]) == document


def test_a_lock_not_obtained_is_one_error_case_naming_the_holder(tmp_path):
    failure = {"failed": True, "cause": "lock_not_obtained", "msg": "context local is locked by job A; gave up"}
    document, texts = result.reports(str(tmp_path), "deliver", "local", {"deliver": failure},
                                     {"deliver": STARTED}, STARTED, failure=failure, finished=STARTED + 3)
    assert (document["outcome"], document["exit_code"]) == ("lock_not_obtained", 14)
    (case,) = cases(junit(texts, str(tmp_path / "junit-deliver-local.xml"))).values()
    assert case.find("error").get("message") == "context local is locked by job A; gave up"


def test_a_rebase_conflict_fails_its_step_and_leaves_the_later_ones_not_reached(tmp_path):
    failure = {"failed": True, "msg": "/work/shop does not rebase cleanly on origin/main"}
    document, texts = result.reports(str(tmp_path), "integrate", "staging", {}, {"rebase": STARTED + 1}, STARTED,
                                     failure=failure, declared="integration_conflict", finished=STARTED + 2)
    assert (document["outcome"], document["exit_code"], document["failed_step"]) == \
        ("integration_conflict", 15, "rebase")
    found = cases(junit(texts, str(tmp_path / "junit-integrate-staging.xml")))
    assert "does not rebase cleanly" in found[("rebase", "rebase")].find("error").get("message")
    assert all(found[(step, step)].find("skipped") is not None for step in ("build", "test", "deliver", "merge"))


def test_an_integration_that_changed_nothing_is_nothing_to_do_with_a_case_per_image_and_step(tmp_path):
    results = {"build": {"changed": False, "references": {"api": "r/api@sha256:a"},
                         "images": [{"name": "api", "system": "api", "action": "skipped", "seconds": 0.1,
                                     "reference": "r/api@sha256:a"}]},
               "test": {"changed": False, "passed": True, "images": [{"system": "api", "image": "api",
                                                                     "verdict": "passed"}]},
               "deliver": {"changed": False, "revision": 4, "systems": [dict(ROW, system="api", result="ok")]},
               "merge": {"changed": False},
               "rollback": {"skipped": True, "changed": False}}  # a skipped task registers a result too
    marks = {"rebase": STARTED, "build": STARTED + 1, "test": STARTED + 2, "deliver": STARTED + 5, "merge": STARTED + 6}
    document, texts = result.reports(str(tmp_path), "integrate", "staging", results, marks, STARTED,
                                     finished=STARTED + 7)
    assert (document["outcome"], document["exit_code"], document["detailed_exit_code"]) == ("nothing_to_do", 0, 10)
    assert document["durations"]["test"] == 3.0 and document["revision"] == 4
    assert document["tests"] == [{"system": "api", "image": "api", "verdict": "passed"}]
    assert document["files"]["tests_junit"].endswith("tests-staging.xml")
    root = junit(texts, str(tmp_path / "junit-integrate-staging.xml"))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("7", "0", "0")
    assert ("build.api", "api") in cases(root) and ("rollback", "rollback") not in cases(root)


def test_image_tests_that_ran_keep_their_own_junit_and_the_result_says_tests_failed(tmp_path):
    tests = {"failed": True, "msg": "1 of 1 images failed their tests",
             "images": [{"system": "api", "image": "api", "verdict": "failed"}]}
    document, texts = result.reports(str(tmp_path), "test", "local", {"test": tests}, {"test": STARTED}, STARTED,
                                     failure=tests, finished=STARTED + 1)
    assert (document["outcome"], document["exit_code"]) == ("tests_failed", 11)
    assert list(texts) == [str(tmp_path / "result-local.json")]  # tests-local.xml is the image tests' own
    result.write_reports(texts)
    assert json.loads((tmp_path / "result-local.json").read_text())["outcome"] == "tests_failed"


def test_a_check_run_is_marked_and_system_names_any_characters_survive(tmp_path):
    odd = dict(ROW, system="we'ird|[name]<&>")
    document, texts = result.reports(str(tmp_path), "rollback", "local", {"rollback": {"changed": True, "revision": 3,
                                     "rollback": {"to": 2, "from": 3}, "systems": [odd]}}, {"rollback": STARTED},
                                     STARTED, check_mode=True, finished=STARTED)
    assert document["check_mode"] is True and document["rolled_back_to"] == 2 and document["outcome"] == "succeeded"
    (case,) = cases(junit(texts, str(tmp_path / "junit-rollback-local.xml"))).values()
    assert case.get("name") == "we'ird|[name]<&>"


def test_a_hold_not_obtained_before_any_step_is_an_error_case_of_its_own(tmp_path):
    failure = {"failed": True, "cause": "lock_not_obtained", "msg": "context staging is locked by integration 7"}
    document, texts = result.reports(str(tmp_path), "integrate", "staging", {}, {}, STARTED, failure=failure,
                                     finished=STARTED + 2)
    assert (document["outcome"], document["exit_code"], document["failed_step"]) == ("lock_not_obtained", 14, None)
    found = cases(junit(texts, str(tmp_path / "junit-integrate-staging.xml")))
    assert found[("integrate", "integrate")].find("error").get("message") == failure["msg"]
    assert found[("rebase", "rebase")].find("skipped") is not None
