"""kube_artifacts after converge (kubectl) and a refused wrong checksum (side effect): kubectl is a link to the
verified file named after its sha256, which matches the artifact source; nothing of the refused run is installed
or staged under the wrong name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

STAGING = "/var/cache/slipway/artifacts"


@pytest.fixture(scope="module")
def artifacts() -> dict:
    inventory = Path(os.environ.get("SLIPWAY_STACK_DIR", ".stack")) / "lab-artifact" / "inventory"
    return yaml.safe_load((inventory / "group_vars" / "all" / "artifacts.yml").read_text())["slipway_artifacts"]


def test_kubectl_is_a_link_to_the_verified_file(host, artifacts):
    expected = artifacts["kubectl"]["sha256"]
    link = host.file("/usr/local/bin/kubectl")
    assert link.is_symlink and link.linked_to == f"{STAGING}/kubectl-{expected}"
    staged = host.file(f"{STAGING}/kubectl-{expected}")
    assert (staged.user, staged.mode) == ("root", 0o755)
    assert staged.sha256sum == expected
    assert "Client Version" in host.check_output("/usr/local/bin/kubectl version --client")


def test_the_refused_run_installed_nothing(host, artifacts):
    assert not host.file("/usr/local/bin/kube-proxy").exists
    assert not host.file(f"{STAGING}/kubectl-{'0' * 64}").exists
    staged = host.check_output(f"ls {STAGING}").split()
    # kube-proxy's own download matched and may stay staged for the next run; it is not installed.
    verified = {f"{name}-{artifacts[name]['sha256']}" for name in ("kubectl", "kube-proxy")}
    assert set(staged) <= verified, staged
