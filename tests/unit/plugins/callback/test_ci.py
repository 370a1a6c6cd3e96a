"""The ci callback: TeamCity service messages, escaped as TeamCity parses them, and silence outside TeamCity.

Each message is checked twice: against JetBrains' own writer (the ``teamcity-messages`` package, byte for byte
once its timestamp is left out) and by parsing it back with TeamCity's documented grammar.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ansible_collections.slipway.platform.plugins.callback import ci
from ansible_collections.slipway.platform.plugins.module_utils._ci import teamcity
from teamcity.messages import TeamcityServiceMessages

ROOT = Path(__file__).resolve().parents[4]
ODD = "sh'op|[eu]\nwest\r"  # every character TeamCity escapes
VALUE = r"'(?:[^'|\[\]\n\r]|\|.)*'"  # an unescaped quote, bracket, bar or line break would end it early
MESSAGE = re.compile(rf"^##teamcity\[(?P<name>[A-Za-z][\w.]*)(?P<props>(?: [A-Za-z][\w.]*={VALUE})*)\]$")
PROPERTY = re.compile(r" ([A-Za-z][\w.]*)='((?:[^'|]|\|.)*)'")
UNESCAPE = {"|": "|", "'": "'", "[": "[", "]": "]", "n": "\n", "r": "\r", "x": "\u0085", "l": "\u2028",
            "p": "\u2029"}


def parse(line):
    """``(name, {key: value})`` of one service message, or an AssertionError saying why TeamCity would not read it."""
    match = MESSAGE.match(line)
    assert match, f"not a well-formed service message: {line!r}"
    props = {}
    for key, raw in PROPERTY.findall(match["props"]):
        props[key] = re.sub(r"\|(.)", lambda m: UNESCAPE[m[1]], raw)
    return match["name"], props


def jetbrains(message, /, **props):
    out = io.StringIO()
    TeamcityServiceMessages(out, now=lambda: 0.0, encoding=None).message(message, **props)
    return re.sub(r" timestamp='[^']*'", "", out.getvalue().rstrip("\n"))


@pytest.mark.parametrize(("message", "props"), [
    ("progressMessage", {"value": ODD}),
    ("blockOpened", {"name": f"deliver {ODD}"}),
    ("buildStatisticValue", {"key": "slipway.deliver.created", "value": "3"}),
    ("buildProblem", {"description": f"system {ODD} failed", "identity": "slipway deliver local failed"}),
])
def test_messages_equal_jetbrains_writer_and_parse_back(message, props):
    line = teamcity.service_message(message, **props)
    assert line == jetbrains(message, **props)
    assert parse(line) == (message, props)


class Recorder:
    def __init__(self):
        self.lines = []

    def display(self, line, *args, **kwargs):
        self.lines.append(line)


class Result:
    def __init__(self, action, result, host="localhost"):
        self._task = type("Task", (), {"action": action})()
        self._result = result
        self._host = type("Host", (), {"get_name": lambda self: host})()


def callback(monkeypatch, teamcity_version="2025.03"):
    if teamcity_version:
        monkeypatch.setenv("TEAMCITY_VERSION", teamcity_version)
    else:
        monkeypatch.delenv("TEAMCITY_VERSION", raising=False)
    plugin = ci.CallbackModule()
    plugin._display = Recorder()
    return plugin


def test_a_delivery_reports_each_system_and_its_counts_with_odd_names_intact(monkeypatch):
    plugin = callback(monkeypatch)
    plugin.v2_runner_on_ok(Result("slipway.platform.deliver", {
        "revision": 7, "summary": {"created": 2, "updated": 1, "unchanged": 9, "pruned": 0},
        "systems": [{"system": ODD, "result": "failed", "reason": "CrashLoopBackOff [web]"}]}))
    messages = [parse(line) for line in plugin._display.lines]
    assert messages[0] == ("progressMessage", {"value": f"deliver {ODD}: failed (CrashLoopBackOff [web])"})
    stats = {props["key"]: props["value"] for name, props in messages if name == "buildStatisticValue"}
    assert stats == {"slipway.deliver.created": "2", "slipway.deliver.updated": "1",
                     "slipway.deliver.unchanged": "9", "slipway.deliver.pruned": "0", "slipway.deliver.revision": "7"}


def test_the_outcome_becomes_status_statistics_and_a_build_problem(monkeypatch):
    plugin = callback(monkeypatch)
    plugin.v2_runner_on_ok(Result("slipway.platform.pipeline_result", {"result": {
        "playbook": "deliver", "context": "staging", "outcome": "lock_not_obtained", "exit_code": 14,
        "durations": {"deliver": 120.5, "total": 121.0}}}))
    plugin.v2_runner_on_failed(Result("ansible.builtin.fail", {"msg": f"context staging is locked by {ODD}"}))
    stats = type("Stats", (), {"processed": {"localhost": 1},
                               "summarize": lambda self, host: {"failures": 1, "unreachable": 0}})()
    plugin.v2_playbook_on_stats(stats)
    messages = [parse(line) for line in plugin._display.lines]
    assert ("buildStatisticValue", {"key": "slipway.seconds.deliver", "value": "120.5"}) in messages
    assert ("buildStatisticValue", {"key": "slipway.exit_code", "value": "14"}) in messages
    assert ("buildStatus", {"text": "slipway deliver staging: lock_not_obtained; {build.status.text}"}) in messages
    assert messages[-1] == ("buildProblem", {"description": f"localhost: context staging is locked by {ODD}",
                                             "identity": "slipway deliver staging lock_not_obtained"})


def test_outside_teamcity_it_is_disabled(monkeypatch):
    assert callback(monkeypatch, teamcity_version=None).disabled
    assert not callback(monkeypatch).disabled


def run_playbook(tmp_path, env):
    playbook = tmp_path / "odd.yml"
    playbook.write_text(textwrap.dedent(f"""\
        - name: Odd {ODD.strip()!r} play
          hosts: localhost
          gather_facts: false
          tasks:
            - name: "Say |it's [odd]|"
              ansible.builtin.debug:
                msg: hello
            - name: Fail
              ansible.builtin.fail:
                msg: "broken |[x]|"
        """))
    env = dict({key: value for key, value in os.environ.items() if key != "TEAMCITY_VERSION"},
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_CALLBACKS_ENABLED="slipway.platform.ci", **env)
    ansible_playbook = Path(sys.executable).with_name("ansible-playbook")
    done = subprocess.run([str(ansible_playbook), "-i", "localhost,", "-c", "local", str(playbook)], cwd=ROOT,
                          env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 2, done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith("##teamcity")]


def test_a_real_playbook_run_under_teamcity_prints_parseable_messages(tmp_path):
    lines = run_playbook(tmp_path, {"TEAMCITY_VERSION": "2025.03"})
    messages = [parse(line) for line in lines]
    assert messages[0] == ("blockOpened", {"name": "slipway odd.yml"})
    assert ("progressMessage", {"value": "Say |it's [odd]|"}) in messages
    assert messages[-1] == ("buildProblem", {"description": "localhost: broken |[x]|",
                                             "identity": "slipway failed"})
    opened = [props["name"] for name, props in messages if name == "blockOpened"]
    closed = [props["name"] for name, props in messages if name == "blockClosed"]
    assert sorted(opened) == sorted(closed)


def test_a_real_playbook_run_elsewhere_prints_no_message(tmp_path):
    assert run_playbook(tmp_path, {}) == []
