"""ComposeProject and find_compose against a stand-in compose binary (a shell script that logs its argv)."""

from __future__ import annotations

import os

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._image.compose import ComposeProject, find_compose

SCRIPT = """#!/bin/sh
echo "$SLIPWAY_IMAGE_API $*" >> "{log}"
case "$*" in
  "version --short") echo "{version}" ;;
  *"config --services"*) printf 'api\\ndb\\n' ;;
  *" up "*) [ -n "$COMPOSE_SLEEP" ] && sleep "$COMPOSE_SLEEP"; [ -n "$COMPOSE_FAIL" ] && {{ echo boom >&2; exit 3; }} ;;
esac
exit 0
"""


def fake_compose(tmp_path, version="2.40.3"):
    log = tmp_path / "argv.log"
    script = tmp_path / "docker-compose"
    script.write_text(SCRIPT.format(log=log, version=version))
    script.chmod(0o755)
    return str(script), log


def test_argv_and_environment(tmp_path):
    script, log = fake_compose(tmp_path)
    project = ComposeProject([script], str(tmp_path / "compose.yml"), "slipway-test-api-1",
                             {"SLIPWAY_IMAGE_API": "ref@sha256:1"}, timeout=30)
    assert project.services() == ["api", "db"]
    project.up(["db"])
    project.up([])  # nothing to start: compose is not called
    project.down()
    lines = log.read_text().splitlines()
    assert len(lines) == 3 and all(line.startswith("ref@sha256:1 -p slipway-test-api-1 -f ") for line in lines)
    assert "up --detach --wait --wait-timeout 30 --no-build --pull never db" in lines[1]
    assert lines[2].endswith("down --volumes --remove-orphans --timeout 5")
    assert project.network == "slipway-test-api-1_default"


def test_failure_and_timeout_are_clean_errors(tmp_path):
    script, log = fake_compose(tmp_path)
    project = ComposeProject([script], str(tmp_path / "compose.yml"), "p", {"COMPOSE_FAIL": "1"}, timeout=30)
    with pytest.raises(SlipwayError, match="failed") as caught:
        project.up(["db"])
    assert caught.value.details["stderr"] == "boom" and "--wait" in caught.value.details["command"]
    slow = ComposeProject([script], str(tmp_path / "compose.yml"), "p", {"COMPOSE_SLEEP": "5"}, timeout=1)
    with pytest.raises(SlipwayError, match="did not finish"):
        slow._run("up", "x", timeout=1)


def test_find_compose_wants_version_2(tmp_path):
    script, log = fake_compose(tmp_path)
    assert find_compose([script]) == [script]
    old = tmp_path / "old"
    old.mkdir()
    legacy, legacy_log = fake_compose(old, version="1.29.2")
    with pytest.raises(SlipwayError, match="Compose v2 is needed"):
        find_compose([legacy])
    assert os.access(script, os.X_OK)
