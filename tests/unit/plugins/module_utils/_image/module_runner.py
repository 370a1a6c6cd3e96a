"""Run a module's main() in-process with arguments and read its JSON result (for tests/unit/plugins/modules)."""

from __future__ import annotations

import json

import pytest


def run_module(capsys, main, args, check_mode=False):
    """``(result dict, raw stdout)`` of ``main()`` run with ``args`` (exit_json and fail_json alike)."""
    from ansible.module_utils.testing import patch_module_args

    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args), pytest.raises(SystemExit):
        main()
    out = capsys.readouterr().out
    return json.loads(out), out
