"""The pipeline_result module's glue: it writes the reports (not in check mode) and names the CI job it runs under."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.slipway.platform.plugins.modules import pipeline_result


def run_main(capsys, args):
    with patch_module_args(args), pytest.raises(SystemExit):
        pipeline_result.main()
    return json.loads(capsys.readouterr().out)


def test_writes_the_result_file_with_the_ci_job(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TEAMCITY_VERSION", "2025.03")
    monkeypatch.setenv("BUILD_NUMBER", "118")
    failure = {"failed": True, "msg": "context local is locked by job A", "cause": "lock_not_obtained"}
    out = run_main(capsys, {"context": "local", "playbook": "deliver", "results": {"deliver": failure},
                            "marks": {"deliver": 1.0}, "started": 1.0, "failure": failure,
                            "reports_dir": str(tmp_path)})
    assert not out["changed"] and (out["outcome"], out["exit_code"]) == ("lock_not_obtained", 14)
    written = json.loads((tmp_path / "result-local.json").read_text())
    assert written["ci"]["server"] == "teamcity" and written["ci"]["build_number"] == "118"
    assert (tmp_path / "junit-deliver-local.xml").exists()


def test_check_mode_writes_nothing(capsys, tmp_path):
    out = run_main(capsys, {"context": "local", "playbook": "build", "started": 1.0, "reports_dir": str(tmp_path),
                            "results": {"build": {"changed": True}}, "_ansible_check_mode": True})
    assert out["outcome"] == "succeeded" and list(tmp_path.iterdir()) == []
