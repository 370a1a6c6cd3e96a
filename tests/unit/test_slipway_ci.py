"""bin/slipway-ci: exits with the outcome's code from the result file its own run wrote, else as ansible-playbook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WRAPPER = Path(__file__).resolve().parents[2] / "bin" / "slipway-ci"

# stands in for ansible-playbook (the boundary): writes the result file a playbook would, then exits as told
FAKE = """#!{python}
import json, os, sys
extra = json.loads(sys.argv[sys.argv.index("-e") + 1])
outcome, exit_code, detailed, rc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with open(os.path.join(extra["slipway_reports_dir"], "env.json"), "w") as out:
    json.dump({{key: os.environ.get(key) for key in ("ANSIBLE_CALLBACKS_ENABLED", "SLIPWAY_REPORTS_DIR")}}, out)
if outcome != "none":
    with open(os.path.join(extra["slipway_reports_dir"], "result-local.json"), "w") as out:
        json.dump({{"run_id": os.environ["SLIPWAY_CI_RUN_ID"], "outcome": outcome, "exit_code": exit_code,
                   "detailed_exit_code": detailed, "playbook": "deliver", "context": "local"}}, out)
sys.exit(rc)
"""


@pytest.fixture
def fake(tmp_path):
    path = tmp_path / "ansible-playbook"
    path.write_text(FAKE.format(python=sys.executable))
    path.chmod(0o755)
    return path


def run(fake, reports, *args, detailed=False, env=None):
    command = [sys.executable, str(WRAPPER), "--reports", str(reports), "--ansible-playbook", str(fake)]
    command += ["--detailed-exitcode"] if detailed else []
    return subprocess.run([*command, "--", *args], capture_output=True, text=True, check=False, cwd=reports,
                          env=dict(os.environ, SLIPWAY_CI_RUN_ID="not-this-one", **(env or {})))


@pytest.mark.parametrize(("args", "detailed", "code"), [
    (("delivery_failed_rolled_back", "12", "12", "2"), False, 12),
    (("nothing_to_do", "0", "10", "0"), False, 0),
    (("nothing_to_do", "0", "10", "0"), True, 10),
    (("succeeded", "0", "0", "4"), False, 4),  # ansible-playbook failed after the step: never a success
    (("none", "0", "0", "99"), False, 99),  # interrupted before any result: ansible-playbook's own code
])
def test_exit_code(fake, tmp_path, args, detailed, code):
    done = run(fake, tmp_path, *args, detailed=detailed)
    assert done.returncode == code, done.stderr


def test_a_result_file_of_another_run_is_not_read(fake, tmp_path):
    (tmp_path / "result-staging.json").write_text(json.dumps({"run_id": "old", "exit_code": 13,
                                                              "detailed_exit_code": 13}))
    done = run(fake, tmp_path, "none", "0", "0", "2")
    assert done.returncode == 2 and "no result file of this run" in done.stderr


def test_without_playbook_arguments_it_says_how_to_call_it(tmp_path):
    done = subprocess.run([sys.executable, str(WRAPPER), "--reports", str(tmp_path)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2 and "give the ansible-playbook arguments after --" in done.stderr


def test_the_ci_callback_is_enabled_beside_the_configured_ones_and_the_reports_folder_is_exported(fake, tmp_path):
    (tmp_path / "ansible.cfg").write_text("[defaults]\ncallbacks_enabled = ansible.posix.profile_tasks\n")
    done = run(fake, tmp_path, "none", "0", "0", "0", env={"ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg")})
    assert done.returncode == 0, done.stderr
    seen = json.loads((tmp_path / "env.json").read_text())
    assert seen == {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks,slipway.platform.ci",
                    "SLIPWAY_REPORTS_DIR": str(tmp_path)}
    again = run(fake, tmp_path, "none", "0", "0", "0", env={"ANSIBLE_CALLBACKS_ENABLED": "slipway.platform.ci,x.y.z"})
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "env.json").read_text())["ANSIBLE_CALLBACKS_ENABLED"] == "slipway.platform.ci,x.y.z"
