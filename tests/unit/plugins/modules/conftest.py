# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from unittest import mock

import pytest


@pytest.fixture
def action_for():
    """``action_for(plugin_module, args, transport, check_mode=False)``: an action plugin for a task with ``args`` on
    a connection of ``transport``, without Ansible around it."""

    def make(plugin_module, args, transport, check_mode=False):
        task = mock.MagicMock(args=args, check_mode=check_mode, diff=False, async_val=0)
        connection = mock.MagicMock(transport=transport)
        plugin = plugin_module.ActionModule(task, connection, mock.MagicMock(), mock.MagicMock(), mock.MagicMock(),
                                            mock.MagicMock())
        plugin._supports_async = True
        return plugin
    return make
