"""The context_lock module's glue: bad input is refused before any request, an unreachable API fails cleanly."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.slipway.platform.plugins.modules import context_lock


def run_main(capsys, args):
    with patch_module_args(args), pytest.raises(SystemExit):
        context_lock.main()
    out = capsys.readouterr().out
    return json.loads(out), out


@pytest.mark.parametrize("bad", [{"holder": "  "}, {"duration": 0}, {"lock_timeout": -1}])
def test_bad_input_is_refused_before_any_request(capsys, bad):
    # an API URL nothing listens on: had the module tried it, the message would say so
    result = run_main(capsys, dict({"context": "unit", "holder": "job 1", "api_url": "https://127.0.0.1:1"}, **bad))[0]
    assert result["failed"]
    assert result["msg"] == "holder must not be empty, duration must be at least 1 and lock_timeout at least 0"


def test_an_unreachable_api_fails_cleanly(capsys):
    result, out = run_main(capsys, {"context": "unit", "holder": "job 1", "state": "released",
                                    "api_url": "https://127.0.0.1:1", "validate_certs": False, "request_timeout": 2})
    assert result["failed"] and "cannot reach the Kubernetes API at https://127.0.0.1:1" in result["msg"]
    assert "Traceback" not in out
