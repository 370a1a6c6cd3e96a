# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a playbook tells its pipeline: ``reports/result-<context>.json`` and a JUnit file per step.

Built from the results the playbook registered for each step (``results``: step name -> the task's result, failed
ones included), the step that was running when it failed, and the start time of each step (``marks``). The JUnit
suites go through the one writer (``_reports.junit_xml``); image tests write their own (``tests-<context>.xml``),
so the test step adds one here only when its tests never ran.
"""

from __future__ import annotations

import json
import os
import time

from ansible_collections.slipway.platform.plugins.module_utils._ci.outcome import OUTCOMES, STEPS, classify, exit_code
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._reports import (
    ERROR,
    FAILURE,
    PASSED,
    SKIPPED,
    junit_xml,
    write_atomic,
)

SCHEMA = "slipway.io/result/v1"
PLAYBOOKS = ("build", "test", "deliver", "rollback", "integrate")
# a delivered system's result -> its JUnit status
SYSTEM_STATUS = {"ok": PASSED, "changed": PASSED, "retired": PASSED, "carried": PASSED, "failed": FAILURE,
                 "skipped": SKIPPED}
BUILD_STATUS = {"built": PASSED, "skipped": PASSED, "would_build": PASSED, "failed": FAILURE}
MESSAGE_CHARS = 4000


def iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def durations(marks, started, finished):
    """Seconds per step (from its mark to the next step's, the last one to ``finished``) and in total."""
    ordered = sorted(((float(at), step) for step, at in (marks or {}).items()))
    out = {}
    for index, (at, step) in enumerate(ordered):
        end = ordered[index + 1][0] if index + 1 < len(ordered) else finished
        out[step] = round(max(0.0, end - at), 2)
    out["total"] = round(max(0.0, finished - float(started)), 2)
    return out


def failed_step(marks):
    """The step that was running last (the latest mark), which is the one that failed when the run failed."""
    return max((marks or {}).items(), key=lambda item: float(item[1]))[0] if marks else None


def first_line(text):
    return (str(text or "").strip().splitlines() or [""])[0]


def _rows(result):
    rows = (result or {}).get("systems")
    return rows if isinstance(rows, list) else []


def _system_case(step, row):
    status = SYSTEM_STATUS.get(row.get("result"), ERROR)
    images = ", ".join(sorted((row.get("images") or {}).values()))
    details = "\n".join(str(line) for line in row.get("details") or [])
    return {"classname": f"{step}.{row.get('system')}", "name": row.get("system"), "seconds": row.get("seconds"),
            "status": status, "message": row.get("reason") or row.get("result"), "type": row.get("result"),
            "output": "\n".join(part for part in (f"images: {images}" if images else "", details) if part)}


def _whole_step_case(step, result, ran, running):
    """One case for a step that has no per-system or per-image rows (it failed before them, or has none)."""
    if not ran and result is None:
        return {"classname": step, "name": step, "status": SKIPPED, "message": "not reached"}
    failed = bool((result or {}).get("failed")) or running
    msg = str((result or {}).get("msg") or "")
    return {"classname": step, "name": step, "status": ERROR if failed else PASSED,
            "message": first_line(msg) if failed else "", "type": "failed" if failed else None,
            "output": msg[:MESSAGE_CHARS]}


def release_suite(step, context, result, running):
    """Deliver or rollback: one case per system."""
    result = result or {}
    cases = [_system_case(step, row) for row in _rows(result)] or [_whole_step_case(step, result, True, running)]
    if result.get("failed") and all(case["status"] == PASSED for case in cases):
        cases.append(_whole_step_case(step, result, True, running))  # failed after the systems (recording, health)
    properties = {"context": context, "revision": str(result.get("revision") or "")}
    return {"name": f"{step} {context}", "seconds": sum(float(row.get("seconds") or 0) for row in _rows(result)),
            "properties": properties, "cases": cases}


def build_suite(context, result, running):
    """Build: one case per image."""
    images = (result or {}).get("images") or []
    cases = [{"classname": f"build.{image.get('system')}", "name": image.get("name"), "seconds": image.get("seconds"),
              "status": BUILD_STATUS.get(image.get("action"), ERROR), "type": image.get("action"),
              "message": image.get("msg") or image.get("action"),
              "output": "\n".join(str(image.get(k)) for k in ("command", "stdout") if image.get(k))
              or image.get("reference") or ""}
             for image in images]
    return {"name": f"build {context}", "seconds": sum(float(i.get("seconds") or 0) for i in images),
            "properties": {"context": context},
            "cases": cases or [_whole_step_case("build", result, True, running)]}


def junit_suites(playbook, context, results, marks, running_step=None, failure=None):
    """The suites of one playbook's JUnit file (none for the test playbook when its image tests wrote theirs).

    ``results`` holds the failure as the result of ``running_step`` when that step registered none; a ``failure``
    before any step (the job's hold not obtained) is a case of its own."""
    suites = []
    if failure is not None and running_step is None:
        suites.append({"name": f"{playbook} {context}", "seconds": 0.0, "properties": {"context": context},
                       "cases": [_whole_step_case(playbook, failure, True, True)]})
    if playbook == "integrate":
        cases = [_whole_step_case(step, results.get(step), step in (marks or {}), step == running_step)
                 for step in STEPS if step != "rollback" or step in results]
        suites.append({"name": f"integrate {context}", "seconds": 0.0, "properties": {"context": context},
                       "cases": cases})
    if "build" in results and playbook in ("build", "integrate"):
        suites.append(build_suite(context, results["build"], running_step == "build"))
    if playbook == "test" and not (results.get("test") or {}).get("images"):
        suites.append({"name": f"test {context}", "seconds": 0.0, "properties": {"context": context},
                       "cases": [_whole_step_case("test", results.get("test"), True, running_step == "test")]})
    if "deliver" in results or playbook == "deliver":
        suites.append(release_suite("deliver", context, results.get("deliver"), running_step == "deliver"))
        automatic = _automatic(results)
        if automatic is not None:
            suites.append(release_suite("rollback", context, automatic, bool(automatic.get("failed"))))
    if "rollback" in results or playbook == "rollback":
        suites.append(release_suite("rollback", context, results.get("rollback"), running_step == "rollback"))
    return suites


def _images(results):
    """Every image reference the run built or delivered, by image name."""
    images = dict((results.get("build") or {}).get("references") or {})
    for step in ("deliver", "rollback"):
        for row in _rows(results.get(step)):
            images.update(row.get("images") or {})
    return images


def _automatic(results):
    """The automatic rollback of a failed delivery (its result, or its error), or None."""
    automatic = (results.get("deliver") or {}).get("rollback")
    return automatic if isinstance(automatic, dict) else None


def _revision(results):
    """The context's journal revision once the run ended (an automatic rollback's record comes last)."""
    latest = None
    for result in (results.get("deliver"), _automatic(results), results.get("rollback")):
        if isinstance(result, dict) and result.get("revision") is not None:
            latest = result["revision"]
    return latest


def _rolled_back_to(results):
    for result in (_automatic(results), results.get("rollback")):
        if isinstance(result, dict) and not result.get("failed") and isinstance(result.get("rollback"), dict):
            return result["rollback"].get("to")
    return None


def result_document(playbook, context, results, marks, started, finished, failure=None, declared=None,
                    check_mode=False, ci=None, run_id=None, files=None):
    """The result file's content: outcome and exit codes, revision, systems and images, durations, links."""
    running = failed_step(marks) if failure is not None else None
    outcome = classify(results, running, failure, declared)
    delivered = results.get("rollback") if playbook == "rollback" else results.get("deliver")
    document = {
        "schema": SCHEMA, "playbook": playbook, "context": context, "outcome": outcome,
        "exit_code": exit_code(outcome), "detailed_exit_code": exit_code(outcome, detailed=True),
        "meaning": OUTCOMES[outcome][2], "check_mode": bool(check_mode), "failed_step": running,
        "msg": str((failure or {}).get("msg") or "")[:MESSAGE_CHARS],
        "revision": _revision(results),
        "failed_revision": (results.get("deliver") or {}).get("revision") if _automatic(results) else None,
        "rolled_back_to": _rolled_back_to(results),
        "systems": [{key: row.get(key) for key in ("system", "result", "reason", "revision", "images", "seconds")}
                    for row in _rows(delivered)],
        "images": _images(results),
        "tests": [{"system": image.get("system"), "image": image.get("image"), "verdict": image.get("verdict")}
                  for image in (results.get("test") or {}).get("images") or []],
        "durations": durations(marks, started, finished),
        "started_at": iso(float(started)), "finished_at": iso(finished),
        "ci": ci, "run_id": run_id or None, "files": files or {},
    }
    return document


def reports(reports_dir, playbook, context, results, marks, started, failure=None, declared=None, check_mode=False,
            ci=None, run_id=None, finished=None):
    """``(document, {path: text})``: the result file's content, and every report file to write into ``reports_dir``
    (``result-<context>.json``, and the playbook's ``junit-<playbook>-<context>.xml`` when it has suites)."""
    if playbook not in PLAYBOOKS:
        raise SlipwayError(f"unknown playbook {playbook!r}; known: {', '.join(PLAYBOOKS)}")
    finished = time.time() if finished is None else finished
    results = {step: result for step, result in (results or {}).items()  # a skipped task registers a result too
               if isinstance(result, dict) and not result.get("skipped")}
    running = failed_step(marks) if failure is not None else None
    if running and running not in results:
        results[running] = failure  # the step failed before registering a result of its own
    suites = junit_suites(playbook, context, results, marks, running, failure)
    files = {"result": os.path.join(reports_dir, f"result-{context}.json")}
    if suites:
        files["junit"] = os.path.join(reports_dir, f"junit-{playbook}-{context}.xml")
    if (results.get("test") or {}).get("images"):
        files["tests_junit"] = os.path.join(reports_dir, f"tests-{context}.xml")  # written by the image tests
    document = result_document(playbook, context, results, marks, started, finished, failure, declared, check_mode,
                               ci, run_id, files)
    texts = {files["result"]: json.dumps(document, indent=2, sort_keys=True) + "\n"}
    if suites:
        texts[files["junit"]] = junit_xml(f"slipway {playbook} {context}", suites)
    return document, texts


def write_reports(texts):
    for path, text in texts.items():
        write_atomic(path, text)
