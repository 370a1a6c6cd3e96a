# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pipeline's reports for a playbook whose plays run on many hosts: ``provision.yml``.

The step playbooks (build, test, deliver, rollback, integrate) run on localhost and report from an ``always:`` of
their own (``result.py``). A provisioning playbook runs on every node over SSH, and a host that fails leaves the
play, so no task of it could report for the others; its report is made from the play recap instead (by the
``slipway.platform.ci`` callback, under ``bin/slipway-ci``): one JUnit case per host, and the same result file.
"""

from __future__ import annotations

import json
import os

from ansible_collections.slipway.platform.plugins.module_utils._ci.outcome import (
    FAILED,
    NOTHING_TO_DO,
    OUTCOMES,
    SUCCEEDED,
    exit_code,
)
from ansible_collections.slipway.platform.plugins.module_utils._ci.result import MESSAGE_CHARS, SCHEMA, first_line, iso
from ansible_collections.slipway.platform.plugins.module_utils._reports import ERROR, FAILURE, PASSED, junit_xml

HOST_PLAYBOOKS = ("provision",)
COUNTS = ("ok", "changed", "failures", "unreachable", "skipped", "rescued", "ignored")


def host_result(summary):
    """One host's result from its recap counts: unreachable, failed, changed or ok."""
    if summary.get("unreachable"):
        return "unreachable"
    if summary.get("failures"):
        return "failed"
    return "changed" if summary.get("changed") else "ok"


def host_outcome(hosts):
    """``hosts``: ``{host: {"result", ...}}``. A host that failed or was unreachable fails the run; a run that
    changed nothing anywhere (or matched no host) had nothing to do."""
    results = [row["result"] for row in hosts.values()]
    if any(result in ("failed", "unreachable") for result in results):
        return FAILED
    return SUCCEEDED if "changed" in results else NOTHING_TO_DO


def host_rows(summaries, messages):
    """``summaries``: the recap counts by host; ``messages``: the last failure's message by host."""
    rows = {}
    for host in sorted(summaries):
        counts = {key: int(summaries[host].get(key) or 0) for key in COUNTS}
        result = host_result(counts)
        broken = result in ("failed", "unreachable")  # a failure a rescue handled is no failure of the host
        rows[host] = dict(counts, result=result, msg=(messages.get(host) or "") if broken else "")
    return rows


def _case(playbook, host, row):
    status = {"unreachable": ERROR, "failed": FAILURE}.get(row["result"], PASSED)
    counts = " ".join(f"{key}={row[key]}" for key in COUNTS)
    return {"classname": f"{playbook}.{host}", "name": host, "status": status, "type": row["result"],
            "message": first_line(row["msg"]) or row["result"],
            "output": f"{counts}\n{row['msg']}".strip()[:MESSAGE_CHARS]}


def host_reports(reports_dir, playbook, context, hosts, started, finished, check_mode=False, ci=None, run_id=None):
    """``(document, {path: text})``: ``result-<context>.json`` (the schema of every step's result file, with
    ``hosts`` for ``systems``) and ``junit-<playbook>-<context>.xml`` with one case per host."""
    outcome = host_outcome(hosts)
    files = {"result": os.path.join(reports_dir, f"result-{context}.json"),
             "junit": os.path.join(reports_dir, f"junit-{playbook}-{context}.xml")}
    broken = {host: row for host, row in hosts.items() if row["result"] in ("failed", "unreachable")}
    total = round(max(0.0, finished - started), 2)
    document = {
        "schema": SCHEMA, "playbook": playbook, "context": context, "outcome": outcome,
        "exit_code": exit_code(outcome), "detailed_exit_code": exit_code(outcome, detailed=True),
        "meaning": OUTCOMES[outcome][2], "check_mode": bool(check_mode),
        "failed_step": playbook if broken else None,
        "msg": "\n".join(f"{host}: {row['result']}: {row['msg']}" for host, row in broken.items())[:MESSAGE_CHARS],
        "revision": None, "failed_revision": None, "rolled_back_to": None,
        "systems": [], "hosts": [dict(row, host=host) for host, row in hosts.items()],
        "images": {}, "tests": [], "durations": {playbook: total, "total": total},
        "started_at": iso(started), "finished_at": iso(finished), "ci": ci, "run_id": run_id or None, "files": files,
    }
    suite = {"name": f"{playbook} {context}", "seconds": total, "properties": {"context": context},
             "cases": [_case(playbook, host, row) for host, row in hosts.items()]
             or [{"classname": playbook, "name": playbook, "status": PASSED, "output": "no host matched"}]}
    texts = {files["result"]: json.dumps(document, indent=2, sort_keys=True) + "\n",
             files["junit"]: junit_xml(f"slipway {playbook} {context}", [suite])}
    return document, texts
