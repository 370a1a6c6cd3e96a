# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of ``slipway.platform.rollback``: with a ``local`` connection (every Slipway inventory) the
rollback runs in this process and shows its progress as it happens, one line per system, as a delivery does; a
rollback of a thousand systems is otherwise a long silence. Elsewhere the module is shipped to the task's host
like any other. Both call the same ``rollback_task`` code."""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release.rollback_task import (
    ROLLBACK_SPEC,
    run_rollback,
)
from ansible_collections.slipway.platform.plugins.plugin_utils._release_display import progress_printer, show_summary

display = Display()

MODULE = "slipway.platform.rollback"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if self._connection.transport == "local":
            outcome = self.roll_back_here(dict(self._task.args))
        else:
            outcome = self._execute_module(module_name=MODULE, module_args=self._task.args, task_vars=task_vars)
        show_summary(display, outcome)
        result.update(outcome)
        return result

    def roll_back_here(self, args):
        """What the module would do, in this process: the same spec, the same code, progress as it happens."""
        validated = ArgumentSpecValidator(ROLLBACK_SPEC).validate(args)
        if validated.error_messages:
            return {"failed": True, "msg": "; ".join(validated.error_messages)}
        hidden = set(validated._no_log_values)  # pylint: disable=protected-access  # the spec's no_log values
        try:
            outcome = run_rollback(validated.validated_parameters, bool(self._task.check_mode),
                                   bool(self._task.diff), progress_printer(display))
        except SlipwayError as exc:
            outcome = dict(exc.to_result(), failed=True)
        except ImportError as exc:
            outcome = {"failed": True, "msg": f"{MODULE} could not load its libraries (urllib3 is required): {exc}"}
        return remove_values(outcome, hidden)
