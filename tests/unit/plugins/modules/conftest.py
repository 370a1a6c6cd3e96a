from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "module_utils", "_image"))


@pytest.fixture
def run_module(capsys):
    """Run a module's main() with arguments; returns its JSON result (exit_json or fail_json)."""
    from ansible.module_utils.testing import patch_module_args

    def run(main, args, check_mode=False):
        if check_mode:
            args = dict(args, _ansible_check_mode=True)
        with patch_module_args(args), pytest.raises(SystemExit):
            main()
        out = capsys.readouterr().out
        return json.loads(out), out
    return run
