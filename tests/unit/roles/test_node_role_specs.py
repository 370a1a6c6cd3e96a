"""The node roles' contracts: every default is declared in meta/argument_specs.yml with the same value, and every
declared option has a default (these roles have no required input: the inventory's group vars feed them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[3] / "roles"


@pytest.mark.parametrize("role", ["node_prep", "container_runtime"])
def test_argument_specs_equal_the_defaults(role):
    defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())
    options = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"][
        "options"]
    assert {name: spec.get("default") for name, spec in options.items()} == defaults
    assert all(name.startswith(f"slipway_{role}_") for name in defaults)
