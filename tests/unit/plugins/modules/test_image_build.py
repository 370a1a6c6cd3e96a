"""slipway.platform.image_build as Ansible runs it: docs match the spec, clean failures, no secret leaks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "module_utils" / "_image"))

from ansible_collections.slipway.platform.plugins.doc_fragments.registry import ModuleDocFragment
from ansible_collections.slipway.platform.plugins.module_utils._image import bases
from ansible_collections.slipway.platform.plugins.module_utils._image.registry import Registry
from ansible_collections.slipway.platform.plugins.modules import image_build, image_test
from fake_registry import FakeRegistry
from module_runner import run_module

SHOP = str(Path(__file__).resolve().parents[4] / "examples" / "shop")
SENTINEL = "Sentinel-9f3b-never-print"


@pytest.mark.parametrize("module", [image_build, image_test])
def test_documentation_matches_the_argument_spec(module, monkeypatch):
    captured = {}

    class Capture(Exception):
        pass

    def fake_module(argument_spec, supports_check_mode):
        captured.update(argument_spec=argument_spec, check=supports_check_mode)
        raise Capture

    monkeypatch.setattr(module, "AnsibleModule", fake_module)
    with pytest.raises(Capture):
        module.main()
    spec = captured["argument_spec"]
    docs = yaml.safe_load(module.DOCUMENTATION)
    documented = dict(yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"], **docs.get("options", {}))
    assert set(documented) == set(spec)
    for name, option in spec.items():
        assert documented[name].get("type", "str") == option.get("type", "str"), name
        assert documented[name].get("default") == option.get("default"), name
        assert bool(documented[name].get("required")) == bool(option.get("required")), name
    assert spec["registry_password"]["no_log"] is True
    assert captured["check"] is True
    assert set(docs["attributes"]) == {"check_mode", "diff_mode", "idempotent"}
    assert "slipway.platform.registry" in docs["extends_documentation_fragment"]
    for task in yaml.safe_load(module.EXAMPLES):
        action = [key for key in task if key not in ("name", "register")]
        assert len(action) == 1 and action[0].startswith(("slipway.platform.", "ansible.builtin.")), task


def test_invalid_input_fails_cleanly_before_anything(capsys):
    result, out = run_module(capsys, image_build.main, {"ecosystem_root": SHOP, "systems": ["ghost"],
                                                        "registry": "127.0.0.1:1"})
    assert result["failed"] and "ghost" in result["msg"] and "does not exist" in result["msg"]
    assert "Traceback" not in result.get("exception", "") and "module_stderr" not in result
    result, out = run_module(capsys, image_build.main, {"ecosystem_root": SHOP, "systems": ["backend"],
                                                        "registry": "http://nope", "workers": 0})
    assert result["failed"] and "workers must be at least 1" in result["msg"]


def test_wrong_credentials_fail_clearly_without_the_password(capsys):
    registry = FakeRegistry(password="the-right-one")
    try:
        result, raw = run_module(capsys, image_build.main, {
            "ecosystem_root": SHOP, "systems": ["backend", "worker", "frontend"], "registry": registry.address,
            "registry_username": "slipway", "registry_password": SENTINEL}, check_mode=True)
    finally:
        registry.close()
    assert result["failed"] and "refused user 'slipway'" in result["msg"]
    assert SENTINEL not in raw


def test_check_mode_predicts_without_an_engine_from_a_registry_that_has_the_base(capsys, monkeypatch):
    """The tag covers the base image; with no engine to ask, the registry that serves the base answers."""
    registry = FakeRegistry()
    config = b'{"config": {"digest": "sha256:' + b"c" * 64 + b'"}}'
    registry.manifests[("slipway/debian", "bookworm")] = ("sha256:" + "d" * 64, config)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(bases, "Registry", lambda host: Registry(registry.address, "slipway", registry.password))
    try:
        result, raw = run_module(capsys, image_build.main, {
            "ecosystem_root": SHOP, "systems": ["backend", "worker"], "registry": registry.address,
            "registry_username": "slipway", "registry_password": registry.password,
            "docker_host": "unix:///nonexistent/docker.sock"}, check_mode=True)
    finally:
        registry.close()
    assert result["changed"] is True
    assert [i["action"] for i in result["images"]] == ["would_build", "would_build"]
    assert [i["bases"] for i in result["images"]] == [{"slipway/debian:bookworm": "sha256:" + "c" * 64}] * 2
    assert result["references"] == {}
    assert registry.password not in raw


def test_check_mode_fails_naming_a_base_nobody_can_resolve_and_the_command_that_builds_it(capsys, monkeypatch):
    registry = FakeRegistry()
    monkeypatch.setattr(bases, "Registry", lambda host: Registry(registry.address, "slipway", registry.password))
    try:
        result, raw = run_module(capsys, image_build.main, {
            "ecosystem_root": SHOP, "systems": ["frontend"], "registry": registry.address,
            "registry_username": "slipway", "registry_password": registry.password,
            "docker_host": "unix:///nonexistent/docker.sock"}, check_mode=True)
    finally:
        registry.close()
    assert result["failed"] and "Traceback" not in raw
    assert "base image slipway/busybox:stable cannot be resolved" in result["msg"]
    assert "slipway/busybox:stable is built by the local stack: `make up`" in result["msg"]
    assert [i["action"] for i in result["images"]] == ["failed"]
