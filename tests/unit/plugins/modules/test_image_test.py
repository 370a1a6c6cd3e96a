"""slipway.platform.image_test as Ansible runs it: input validation and check mode, no engine needed."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "module_utils" / "_image"))

from ansible_collections.slipway.platform.plugins.modules import image_test
from module_runner import run_module

SHOP = str(Path(__file__).resolve().parents[4] / "examples" / "shop")
REF = "127.0.0.1:5001/{}@sha256:" + "0" * 64


def args(**extra):
    base = {"ecosystem_root": SHOP, "systems": ["backend", "frontend"], "registry": "127.0.0.1:5001",
            "images": {"backend": REF.format("backend"), "frontend": REF.format("frontend")}}
    base.update(extra)
    return base


def test_check_mode_lists_what_would_run(capsys):
    result, out = run_module(capsys, image_test.main, args(), check_mode=True)
    assert result["changed"] is False and result["passed"] is True
    backend = result["images"][0]
    assert backend["verdict"] == "planned" and backend["reference"] == REF.format("backend")
    assert [t["category"] for t in backend["tests"]] == ["unit", "functional", "style", "duplication", "outdated",
                                                         "licences"]


def test_references_must_be_by_digest(capsys):
    result, out = run_module(capsys, image_test.main, args(images={"backend": "127.0.0.1:5001/backend:latest"}))
    assert result["failed"] and "not a reference by digest" in result["msg"]


def test_an_unbuilt_image_is_named(capsys):
    result, out = run_module(capsys, image_test.main, args(images={"backend": REF.format("backend")}), check_mode=True)
    assert result["failed"] and "frontend" in result["msg"] and "build step" in result["msg"]


def test_unknown_category_is_refused(capsys):
    result, out = run_module(capsys, image_test.main, args(categories=["unit", "speed"]), check_mode=True)
    assert result["failed"] and "speed" in result["msg"]
