"""A provisioning playbook's reports: the result file and one JUnit case per host, from the play recap."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from ansible_collections.slipway.platform.plugins.module_utils._ci import hosts

STARTED = 1_700_000_000.0
CLEAN = {"ok": 12, "changed": 0, "failures": 0, "unreachable": 0, "skipped": 3, "rescued": 0, "ignored": 0}


def reports(tmp_path, summaries, messages=None, check_mode=False):
    rows = hosts.host_rows(summaries, messages or {})
    return hosts.host_reports(str(tmp_path), "provision", "lab", rows, STARTED, STARTED + 42.5, check_mode=check_mode,
                              ci={"server": "jenkins", "url": "https://ci/job/1/", "build_number": "1", "job": "p"},
                              run_id="r1")


def junit_cases(texts, tmp_path):
    root = ET.fromstring(texts[str(tmp_path / "junit-provision-lab.xml")])  # noqa: S314 - our own output
    return {case.get("name"): case for case in root.iter("testcase")}


def test_a_node_that_failed_and_one_unreachable_fail_the_run_each_with_its_case(tmp_path):
    document, texts = reports(tmp_path, {
        "cp-1": dict(CLEAN, changed=4),
        "worker-1": dict(CLEAN, failures=1),
        "worker-2": dict(CLEAN, ok=0, unreachable=1)},
        {"worker-1": "kubelet did not start", "worker-2": "ssh: connect to host 10.0.0.3 port 22: refused",
         "cp-1": "a failure a rescue handled"})
    assert (document["outcome"], document["exit_code"], document["failed_step"]) == ("failed", 1, "provision")
    assert document["msg"].splitlines() == ["worker-1: failed: kubelet did not start",
                                            "worker-2: unreachable: ssh: connect to host 10.0.0.3 port 22: refused"]
    assert [(row["host"], row["result"], row["msg"]) for row in document["hosts"]] == [
        ("cp-1", "changed", ""), ("worker-1", "failed", "kubelet did not start"),
        ("worker-2", "unreachable", "ssh: connect to host 10.0.0.3 port 22: refused")]
    assert document["durations"] == {"provision": 42.5, "total": 42.5}
    assert json.loads(texts[str(tmp_path / "result-lab.json")]) == document
    cases = junit_cases(texts, tmp_path)
    assert cases["cp-1"].find("failure") is None and cases["cp-1"].find("error") is None
    assert cases["worker-1"].find("failure").get("message") == "kubelet did not start"
    assert cases["worker-2"].find("error").get("type") == "unreachable"
    assert cases["worker-1"].get("classname") == "provision.worker-1"


def test_a_rerun_that_changes_nothing_is_nothing_to_do(tmp_path):
    document, _texts = reports(tmp_path, {"cp-1": CLEAN, "worker-1": CLEAN})
    assert (document["outcome"], document["exit_code"], document["detailed_exit_code"]) == ("nothing_to_do", 0, 10)
    assert document["failed_step"] is None and document["msg"] == ""


def test_a_check_run_that_would_change_a_node_succeeds_and_says_it_was_a_check(tmp_path):
    document, _texts = reports(tmp_path, {"cp-1": dict(CLEAN, changed=2)}, check_mode=True)
    assert (document["outcome"], document["check_mode"]) == ("succeeded", True)


def test_no_host_matched_is_nothing_to_do_with_one_passed_case(tmp_path):
    document, texts = reports(tmp_path, {})
    assert document["outcome"] == "nothing_to_do" and document["hosts"] == []
    assert list(junit_cases(texts, tmp_path)) == ["provision"]
