"""JUnit XML and JSON reports: parseable, counted right, robust to any output."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from ansible_collections.slipway.platform.plugins.module_utils._image import report
from ansible_collections.slipway.platform.plugins.module_utils._reports import write_atomic

RESULTS = [
    {"system": "api", "image": "api", "reference": "r@sha256:1", "verdict": "failed", "seconds": 3.0, "tests": [
        {"category": "unit", "status": "passed", "exit_code": 0, "seconds": 1.0, "output": "ok"},
        {"category": "style", "status": "failed", "exit_code": 1, "seconds": 1.0, "output": "bad \x1b[31mred\x00"},
        {"category": "outdated", "status": "timeout", "exit_code": None, "seconds": 1.0, "timeout": 5,
         "output": "killed"},
        {"category": "licences", "status": "missing", "exit_code": None, "seconds": 0.0, "output": "none declared"},
        {"category": "functional", "status": "error", "exit_code": None, "seconds": 0.0,
         "output": "dependencies did not start"},
    ]},
    {"system": "web", "image": "web", "reference": "w@sha256:2", "verdict": "passed", "seconds": 1.0, "tests": [
        {"category": "unit", "status": "passed", "exit_code": 0, "seconds": 1.0, "output": "<ok> & fine"}]},
]


def test_junit_counts_and_elements():
    root = ET.fromstring(report.junit_xml(RESULTS))  # noqa: S314 - our own output
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "2", "2")
    api, web = root.findall("testsuite")
    assert api.get("name") == "api" and api.get("failures") == "2" and api.get("errors") == "2"
    cases = {c.get("name"): c for c in api.findall("testcase")}
    assert cases["style"].find("failure").get("message") == "exit code 1"
    assert cases["outdated"].find("error").get("message") == "killed after its timeout of 5s"
    assert cases["licences"].find("failure").get("type") == "missing"
    assert cases["unit"].find("system-out").text == "ok"
    props = {p.get("name"): p.get("value") for p in api.find("properties")}
    assert props == {"system": "api", "reference": "r@sha256:1", "verdict": "failed"}
    assert web.find("testcase/system-out").text == "<ok> & fine"


def test_json_report_and_atomic_write(tmp_path):
    path = tmp_path / "sub" / "tests.json"
    write_atomic(str(path), report.json_report(RESULTS, "local"))
    data = json.loads(path.read_text())
    assert data["context"] == "local" and data["passed"] is False and len(data["images"]) == 2
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in path.parent.iterdir()] == ["tests.json"]
