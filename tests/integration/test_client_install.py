"""The client-only install (hack/client-install.sh, docs/ci.md): a virtual environment without root, Docker or Go,
the collection built by ansible-galaxy and installed from its tarball, and playbooks run with that installed copy
(from outside the checkout's ansible.cfg, so that nothing reaches the checkout's own link)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from fixtures.deliver.support import ROOT

DEV_ONLY = ("tests", "hack", "bench", "examples", "molecule", ".teamcity", "Jenkinsfile", "Makefile",
            "requirements.txt", "ansible.cfg", "changelogs/fragments")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    target = tmp_path_factory.mktemp("client") / ".slipway"
    done = subprocess.run([str(ROOT / "hack" / "client-install.sh"), str(target)], cwd=ROOT, capture_output=True,
                          text=True, timeout=1200, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return target


def in_client(client, command, cwd):
    """Run a shell command with the client's env sourced, the way a pipeline step does."""
    return subprocess.run(["bash", "-c", f". {client}/env && {command}"], cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=False, env={k: v for k, v in os.environ.items()
                                                         if not k.startswith("ANSIBLE_")})


def test_the_collection_installs_from_its_tarball_without_dev_files(client, tmp_path):
    installed = client / "collections" / "ansible_collections" / "slipway" / "platform"
    manifest = json.loads((installed / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["name"] == "platform"
    assert [name for name in DEV_ONLY if (installed / name).exists()] == []
    assert (installed / "bin" / "slipway-ci").exists() and (installed / "meta" / "runtime.yml").exists()
    doc = in_client(client, "ansible-doc slipway.platform.pipeline_result", tmp_path)
    assert doc.returncode == 0 and str(installed / "plugins" / "modules" / "pipeline_result.py") in doc.stdout
    assert not (client / "bin" / "docker").exists()


def test_a_playbook_of_the_checkout_runs_with_the_installed_copy(client, tmp_path):
    reports = tmp_path / "reports"
    done = in_client(client, f"slipway-ci --reports {reports} -- -i {ROOT}/inventories/local "
                             f"{ROOT}/playbooks/test.yml", tmp_path)
    # no build report in a fresh reports folder: the test step fails as documented, with outcome and exit code
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    found = json.loads((reports / "result-local.json").read_text())
    assert found["outcome"] == "failed" and "run playbooks/build.yml" in found["msg"]


def test_the_client_runs_deliver_check_against_the_stack(client, stack, tmp_path):
    reports = tmp_path / "reports"
    done = in_client(client, f"slipway-ci --reports {reports} -- -i {ROOT}/inventories/local "
                             f"{ROOT}/playbooks/deliver.yml --check", tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    found = json.loads((reports / "result-local.json").read_text())
    assert found["check_mode"] is True and found["outcome"] in ("succeeded", "nothing_to_do")
    assert {row["system"] for row in found["systems"]} == {"backend", "worker", "frontend"}  # the inventory's
