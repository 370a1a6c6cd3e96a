# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json
from unittest import mock

import pytest
from ansible_collections.slipway.platform.plugins.action import rollback as action
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release import rollback as engine
from ansible_collections.slipway.platform.plugins.module_utils._release import rollback_task
from ansible_collections.slipway.platform.plugins.module_utils._release.options import DetailLine
from ansible_collections.slipway.platform.plugins.plugin_utils._release_display import progress_printer, summary_lines

TOKEN = "SENTINEL-token-5678"  # noqa: S105


def test_a_local_rollback_runs_in_process_shows_progress_and_masks_no_log_values(monkeypatch, action_for):
    seen, shown = {}, []

    def fake_rollback(client, options, revision, systems, reason, progress):
        seen.update(revision=revision, systems=systems, check_mode=options.check_mode, context=options.context)
        progress("app: ready (changed, 1.0s)")
        progress(DetailLine("app: update Deployment shop/app"))
        return {"changed": True, "echo": f"token {TOKEN} leaked", "systems": []}

    monkeypatch.setattr(engine, "rollback", fake_rollback)
    monkeypatch.setattr(action.display, "display", shown.append)
    monkeypatch.setattr(action.display, "v", lambda line: shown.append(f"-v {line}"))
    args = {"context": "unit", "revision": 3, "api_url": "https://127.0.0.1:1", "api_token": TOKEN}
    plugin = action_for(action, args, "local", check_mode=True)
    monkeypatch.setattr(plugin, "_execute_module", lambda **kw: pytest.fail("no module process for a local task"))
    result = plugin.roll_back_here(dict(plugin._task.args))
    assert seen == {"revision": 3, "systems": None, "check_mode": True, "context": "unit"}
    assert shown == ["  slipway: app: ready (changed, 1.0s)", "-v   slipway: app: update Deployment shop/app"]
    assert TOKEN not in json.dumps(result) and result["changed"]


def test_a_local_rollback_reports_bad_arguments_and_engine_errors_as_failures(monkeypatch, action_for):
    plugin = action_for(action, {}, "local")
    assert "missing required arguments: context" in plugin.roll_back_here({"revision": 2})["msg"]
    assert "revision" in plugin.roll_back_here({"context": "unit", "revision": "two"})["msg"]

    def refused(*_args, **_kwargs):
        raise SlipwayError("cannot roll back context unit to revision 9: it is not in the journal", available=[1, 2])

    monkeypatch.setattr(engine, "rollback", refused)
    result = plugin.roll_back_here({"context": "unit", "revision": 9, "api_url": "https://127.0.0.1:1"})
    assert result["failed"] and "revision 9" in result["msg"] and result["available"] == [1, 2]


def test_a_remote_rollback_ships_the_module_with_the_tasks_arguments(monkeypatch, action_for):
    sent = {}
    plugin = action_for(action, {"context": "unit", "revision": 2}, "ssh")
    monkeypatch.setattr(plugin, "_execute_module", lambda module_name, module_args, task_vars: sent.update(
        module_args, name=module_name) or {"changed": False})
    monkeypatch.setattr(plugin, "roll_back_here", lambda args: pytest.fail("a remote task runs the module"))
    with mock.patch("ansible.plugins.action.ActionBase.run", return_value={}):
        result = plugin.run(task_vars={})
    assert sent == {"context": "unit", "revision": 2, "name": "slipway.platform.rollback"}
    assert result == {"changed": False}


def test_the_task_options_reach_the_rollback(monkeypatch):
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    seen = {}
    monkeypatch.setattr(engine, "rollback", lambda client, options, **kw: seen.update(kw, options=options) or {})
    params = ArgumentSpecValidator(rollback_task.ROLLBACK_SPEC).validate(
        {"context": "unit", "api_url": "https://127.0.0.1:1", "systems": ["app"], "reason": "bad release",
         "force_conflicts": True, "concurrency": 3}).validated_parameters
    rollback_task.run_rollback(params, check_mode=False, diff=True, progress=print)
    options = seen.pop("options")
    assert seen == {"revision": None, "systems": ["app"], "reason": "bad release", "progress": print}
    assert (options.force_conflicts, options.concurrency, options.diff, options.check_mode) == (True, 3, True, False)


def test_the_closing_table_lists_each_system_with_its_image_revision_result_and_time():
    lines = summary_lines({"revision": 7, "context": "local", "summary": "1 changed, 1 ok", "systems": [
        {"system": "frontend", "images": {"frontend": "reg/frontend:v2"}, "revision": 7, "result": "changed",
         "seconds": 1.26},
        {"system": "db", "images": {}, "revision": None, "result": "ok", "seconds": 0}]})
    assert lines[0] == "slipway: release 7 of local: 1 changed, 1 ok"
    assert lines[1].split() == ["system", "image", "revision", "result", "seconds"]
    assert lines[2].split() == ["frontend", "reg/frontend:v2", "7", "changed", "1.3"]
    assert lines[3].split() == ["db", "-", "-", "ok", "0.0"]
    assert summary_lines({"failed": True, "msg": "no systems"}) == []


def test_progress_lines_from_several_threads_are_whole_lines():
    import threading

    shown = []
    display = mock.MagicMock(display=shown.append, v=shown.append)
    progress = progress_printer(display)
    threads = [threading.Thread(target=lambda i=i: [progress(f"s{i}: line {n}") for n in range(50)]) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(shown) == sorted(f"  slipway: s{i}: line {n}" for i in range(4) for n in range(50))
