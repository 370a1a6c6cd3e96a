"""Context inventories: every one loads without its vault password, and production asks for confirmation."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTEXTS = ["local", "showroom", "staging", "production"]


def _ansible(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(list(args), capture_output=True, text=True, cwd=ROOT, env=env, check=False, timeout=300)


@pytest.mark.parametrize("context", CONTEXTS)
def test_inventory_names_its_context(context):
    result = _ansible("ansible", "-i", f"inventories/{context}", "localhost", "-m", "ansible.builtin.debug",
                      "-a", "var=slipway_context")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'"slipway_context": "{context}"' in result.stdout


def test_production_refuses_to_deliver_without_confirmation():
    result = _ansible("ansible-playbook", "-i", "inventories/production", "playbooks/deliver.yml")
    assert result.returncode != 0
    assert "slipway_production_confirmed=true" in result.stdout
    # Refused before any secret was needed: no vault password was given, and none was asked for.
    assert "Attempting to decrypt" not in result.stdout + result.stderr
