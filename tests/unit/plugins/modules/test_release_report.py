"""The release_report module's glue: bad input is refused before any request, an unreachable API fails cleanly."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.slipway.platform.plugins.modules import release_report


def run_main(capsys, args):
    with patch_module_args(args), pytest.raises(SystemExit):
        release_report.main()
    out = capsys.readouterr().out
    return json.loads(out), out


def test_a_negative_history_is_refused_before_any_request(capsys, tmp_path):
    # an API URL nothing listens on: had the module tried it, the message would say so
    result = run_main(capsys, {"dest": str(tmp_path / "r.html"), "history": -1, "api_url": "https://127.0.0.1:1"})[0]
    assert result["failed"] and result["msg"].startswith("history must be 0 (every release) or a positive number")
    assert not (tmp_path / "r.html").exists()


def test_an_unreachable_api_fails_cleanly_and_writes_nothing(capsys, tmp_path):
    result, out = run_main(capsys, {"dest": str(tmp_path / "r.html"), "api_url": "https://127.0.0.1:1",
                                    "validate_certs": False, "request_timeout": 2})
    assert result["failed"] and "cannot reach the Kubernetes API at https://127.0.0.1:1" in result["msg"]
    assert "Traceback" not in out and not (tmp_path / "r.html").exists()
