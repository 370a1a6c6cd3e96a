# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: ci
type: notification
short_description: TeamCity service messages for Slipway playbooks (blocks, progress, problems, statistics)
version_added: 0.1.0
description:
  - Under TeamCity (C(TEAMCITY_VERSION) set), prints service messages beside the normal output - a block per
    playbook and play, a progress message per task and per delivered or rolled back system, the outcome as the
    build's status text, statistics (objects created, updated, unchanged and pruned, the revision, the duration of
    each step, the exit code) and a build problem naming the outcome when the playbook failed.
  - Prints nothing anywhere else (Jenkins, GitLab and GitHub Actions read the JUnit files and the result file
    instead, see C(docs/ci.md)).
  - Under C(bin/slipway-ci) (C(SLIPWAY_CI_RUN_ID) set), writes the pipeline's reports of a provisioning playbook
    (C(provision.yml)), whose plays run on many hosts and cannot report for themselves - C(result-<context>.json)
    and C(junit-provision-<context>.xml) with one case per host, from the play recap - into
    C(SLIPWAY_REPORTS_DIR).
  - Values are escaped as TeamCity requires, so a system or task name holding C(') C(|) C([) C(]) or a line break
    cannot end a message early.
requirements:
  - enable it in configuration, for example C(ANSIBLE_CALLBACKS_ENABLED=slipway.platform.ci)
"""

import os  # noqa: E402
import time  # noqa: E402

from ansible import context as cli_context  # noqa: E402
from ansible.plugins.callback import CallbackBase  # noqa: E402

from ansible_collections.slipway.platform.plugins.module_utils._ci import teamcity  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._ci.detect import detect  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._ci.hosts import (  # noqa: E402
    HOST_PLAYBOOKS,
    host_reports,
    host_rows,
)
from ansible_collections.slipway.platform.plugins.module_utils._ci.result import write_reports  # noqa: E402

RELEASE_ACTIONS = ("deliver", "rollback", "canary")
SUMMARY_KEYS = ("created", "updated", "unchanged", "pruned")


def _short(action):
    return str(action or "").rsplit(".", 1)[-1]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "slipway.platform.ci"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self.teamcity = bool(os.environ.get("TEAMCITY_VERSION"))
        self.run_id = os.environ.get("SLIPWAY_CI_RUN_ID")  # bin/slipway-ci runs the playbook
        self.disabled = not (self.teamcity or self.run_id)
        self.blocks = []  # open block names, innermost last
        self.failures = {}  # host -> message of its last failed task
        self.outcome = None  # what pipeline_result said
        self.playbook = None  # the playbook's file name without .yml
        self.started = time.time()
        self.context = None  # slipway_context of the play's hosts (a provisioning playbook's report names it)

    def emit(self, line):
        if self.teamcity:
            self._display.display(line)

    def open_block(self, name):
        self.blocks.append(name)
        self.emit(teamcity.service_message("blockOpened", name=name))

    def close_blocks(self, keep=0):
        while len(self.blocks) > keep:
            self.emit(teamcity.service_message("blockClosed", name=self.blocks.pop()))

    def v2_playbook_on_start(self, playbook):
        name = os.path.basename(playbook._file_name)  # pylint: disable=protected-access
        self.playbook = os.path.splitext(name)[0]
        self.started = time.time()
        self.open_block(f"slipway {name}")

    def v2_playbook_on_play_start(self, play):
        self.close_blocks(keep=1)
        self.open_block(play.get_name().strip() or "play")
        if self.context is None and self.playbook in HOST_PLAYBOOKS:
            self.context = self.play_context_name(play)

    @staticmethod
    def play_context_name(play):
        """The play's slipway_context (as its first host sees it), else the inventory folder's name."""
        manager = play.get_variable_manager()
        inventory = manager._inventory  # pylint: disable=protected-access
        hosts = inventory.get_hosts(play.hosts) if inventory is not None else []
        if hosts:
            name = manager.get_vars(play=play, host=hosts[0]).get("slipway_context")
            if name and "{{" not in str(name):
                return str(name)
        sources = [source for source in (getattr(inventory, "_sources", None) or []) if source]
        return os.path.basename(os.path.normpath(sources[0])) if sources else "unknown"

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.emit(teamcity.service_message("progressMessage", value=task.get_name().strip()))

    def v2_runner_on_ok(self, result):
        action = _short(result._task.action)  # pylint: disable=protected-access
        outcome = result._result  # pylint: disable=protected-access
        if action in RELEASE_ACTIONS:
            self.release(action, outcome)
        elif action == "pipeline_result":
            self.pipeline(outcome)

    def release(self, action, outcome):
        for row in outcome.get("systems") or []:
            reason = f" ({row.get('reason')})" if row.get("reason") else ""
            self.emit(teamcity.service_message("progressMessage",
                                               value=f"{action} {row.get('system')}: {row.get('result')}{reason}"))
        counts = {key: (outcome.get("summary") or {}).get(key) for key in SUMMARY_KEYS}
        counts["revision"] = outcome.get("revision")
        for line in teamcity.statistics(f"slipway.{action}", counts):
            self.emit(line)

    def pipeline(self, outcome):
        document = outcome.get("result") or {}
        self.outcome = document
        durations = document.get("durations") or {}
        for line in teamcity.statistics("slipway.seconds", durations):
            self.emit(line)
        for line in teamcity.statistics("slipway", {"exit_code": document.get("exit_code")}):
            self.emit(line)
        self.emit(teamcity.service_message(
            "buildStatus", text=f"slipway {document.get('playbook')} {document.get('context')}: "
                                f"{document.get('outcome')}; {{build.status.text}}"))

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not ignore_errors:
            host = result._host.get_name()  # pylint: disable=protected-access
            self.failures[host] = result._result.get("msg") or "a task failed"  # pylint: disable=protected-access

    def v2_runner_on_unreachable(self, result):
        host = result._host.get_name()  # pylint: disable=protected-access
        self.failures[host] = result._result.get("msg") or "unreachable"  # pylint: disable=protected-access

    def v2_playbook_on_stats(self, stats):
        self.close_blocks()
        if self.outcome is None and self.run_id and self.playbook in HOST_PLAYBOOKS:
            self.report_hosts(stats)
        outcome = (self.outcome or {}).get("outcome") or "failed"
        where = " ".join(str(part) for part in ((self.outcome or {}).get("playbook"), (self.outcome or {}).get(
            "context")) if part)
        for host in sorted(stats.processed):
            summary = stats.summarize(host)
            if summary.get("failures") or summary.get("unreachable"):
                message = self.failures.get(host, "the playbook failed")
                self.emit(teamcity.build_problem(f"{host}: {message}", f"slipway {where} {outcome}".replace("  ", " ")))

    def report_hosts(self, stats):
        """The reports of a playbook that runs on many hosts, from its recap (``_ci/hosts.py``)."""
        rows = host_rows({host: stats.summarize(host) for host in stats.processed}, self.failures)
        job = detect(os.environ)
        document, texts = host_reports(
            os.path.abspath(os.environ.get("SLIPWAY_REPORTS_DIR") or "reports"), self.playbook,
            self.context or "unknown", rows, self.started, time.time(), check_mode=bool(cli_context.CLIARGS.get(
                "check")), ci=job.as_dict() if job else None, run_id=self.run_id)
        write_reports(texts)
        self.pipeline({"result": document})
