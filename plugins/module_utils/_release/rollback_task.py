# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``slipway.platform.rollback`` task: its argument spec and parameters -> ``rollback()``, in one place.

Two callers share it, as for ``deliver_task.py``: the module's ``main()`` (a task run on another host) and the
action plugin, which runs the rollback in its own process for a ``local`` connection and shows its progress as it
happens. The engine is imported when called, so that the spec loads where urllib3 is missing.
"""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._release.run_args import (
    RELEASE_RUN_SPEC,
    release_client,
    release_options,
)

ROLLBACK_SPEC = dict(
    RELEASE_RUN_SPEC,
    revision=dict(type="int"),
    systems=dict(type="list", elements="str"),
    reason=dict(type="str"),
    force_conflicts=dict(type="bool", default=False),
)


def run_rollback(params, check_mode, diff, progress=None):
    """Roll back as the validated ``params`` say; returns the module result, raises SlipwayError."""
    from ansible_collections.slipway.platform.plugins.module_utils._release.rollback import rollback

    options = release_options(params, check_mode, diff, force_conflicts=params["force_conflicts"])
    with release_client(params) as client:
        return rollback(client, options, revision=params["revision"], systems=params["systems"],
                        reason=params["reason"], progress=progress)
