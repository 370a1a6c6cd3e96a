# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``slipway.platform.deliver`` task: its argument spec and parameters -> engine, in one place.

Two callers share it: the module's ``main()`` (when the task runs on a remote host) and the action plugin,
which runs the engine in its own process when the task's connection is ``local`` -- no module
process, no arguments and result shipped as JSON, progress shown as it happens.

The engine's modules are imported when called: the spec must load even where urllib3 or PyYAML is missing,
so that the module can say what to install instead of failing with a traceback.
"""

from __future__ import annotations

import os

from ansible_collections.slipway.platform.plugins.module_utils._ci.detect import detect
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release.run_args import (
    RELEASE_RUN_SPEC,
    release_client,
    release_options,
)

DELIVER_SPEC = dict(
    RELEASE_RUN_SPEC,
    systems=dict(type="list", elements="str", required=True),
    ecosystem_root=dict(type="path"),
    images=dict(type="dict", default={}),
    system_tags=dict(type="dict", default={}),
    registry=dict(type="str"),
    values=dict(type="dict", default={}),
    rendered=dict(type="list", elements="dict"),
    secret_data=dict(type="dict", default={}, no_log=True),
    prune=dict(type="bool", default=True),
    force_conflicts=dict(type="bool", default=False),
    reclaim_managers=dict(type="list", elements="str", default=["kubectl", "k9s", "Mozilla", "OpenLens"]),
    progress_file=dict(type="path"),
    on_failure=dict(type="str", choices=["fail", "rollback", "auto"], default="fail"),
    retire=dict(type="list", elements="str", default=[]),
    retire_absent=dict(type="bool", default=False),
    network_policy=dict(type="str", choices=["off", "audit", "enforce"], default="off"),
    network_peers=dict(type="dict", default={}),
    showroom=dict(type="dict"),
)

MIN_MASKED_LENGTH = 4  # shorter values would mask unrelated text everywhere (Ansible's own no_log rule)


def resolved_on_failure(on_failure, environ):
    """``auto`` made ``rollback`` in a CI job (``environ`` is the controller's) and ``fail`` elsewhere."""
    if on_failure != "auto":
        return on_failure
    return "rollback" if detect(environ) else "fail"


def masked_values(rendered):
    """Secret values of the rendered documents, to be masked wherever they might surface."""
    from ansible_collections.slipway.platform.plugins.module_utils._kube.normalize import secret_values

    found = set()
    for system in rendered or []:
        for document in system.get("documents") or []:
            if isinstance(document.get("content"), dict):
                found |= secret_values(document["content"])
    return {value for value in found if len(value) >= MIN_MASKED_LENGTH}


def prepared_systems(params):
    """The rendered systems with their Secret values merged back, after the checks no spec can express."""
    from ansible_collections.slipway.platform.plugins.module_utils._kube.objects import merge_secrets

    if params["rendered"] is None:
        raise SlipwayError("nothing rendered: run slipway.platform.deliver as a task (its action plugin renders the "
                           "systems from ecosystem_root), or give rendered")
    names = [system.get("name") for system in params["rendered"]]
    if sorted(names) != sorted(params["systems"]):
        raise SlipwayError(f"rendered systems {names} do not match systems {params['systems']}")
    systems = merge_secrets(params["rendered"], params["secret_data"])
    if params.get("showroom"):
        from ansible_collections.slipway.platform.plugins.module_utils._release.showroom import showroom_systems

        systems = showroom_systems(systems, params["showroom"])
    return systems


def _showroom_record(params):
    from ansible_collections.slipway.platform.plugins.module_utils._release.showroom import showroom_record

    return showroom_record(params["showroom"]) if params.get("showroom") else None


def run_delivery(params, rendered, check_mode, diff, progress, deferred=None):
    """Deliver ``rendered`` (from :func:`prepared_systems`) as the validated ``params`` say; raises SlipwayError.
    ``deferred``: how systems given without documents are rendered (``_release/deferred.py``; the action plugin's)."""
    from ansible_collections.slipway.platform.plugins.module_utils._release.rollback import deliver_or_roll_back

    options = release_options(params, check_mode, diff, prune=params["prune"],
                              force_conflicts=params["force_conflicts"],
                              reclaim_managers=tuple(params["reclaim_managers"]), retire=tuple(params["retire"]),
                              retire_absent=params["retire_absent"], showroom=_showroom_record(params))
    with release_client(params) as client:
        return deliver_or_roll_back(client, rendered, options, progress=progress,
                                    on_failure=resolved_on_failure(params["on_failure"], os.environ),
                                    deferred=deferred)
