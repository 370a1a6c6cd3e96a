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

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.args import KUBE_CONNECTION_SPEC

DELIVER_SPEC = dict(
    KUBE_CONNECTION_SPEC,
    context=dict(type="str", required=True),
    systems=dict(type="list", elements="str", required=True),
    ecosystem_root=dict(type="path"),
    images=dict(type="dict", default={}),
    system_tags=dict(type="dict", default={}),
    registry=dict(type="str"),
    values=dict(type="dict", default={}),
    rendered=dict(type="list", elements="dict"),
    secret_data=dict(type="dict", default={}, no_log=True),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="float", default=300.0),
    concurrency=dict(type="int", default=8),
    prune=dict(type="bool", default=True),
    force_conflicts=dict(type="bool", default=False),
    reclaim_managers=dict(type="list", elements="str", default=["kubectl", "k9s", "Mozilla", "OpenLens"]),
    lock_timeout=dict(type="float", default=120.0),
    lock_duration=dict(type="int", default=30),
    holder=dict(type="str"),
    confirmed=dict(type="bool", default=False),
    progress_file=dict(type="path"),
    on_failure=dict(type="str", choices=["fail", "rollback"], default="fail"),
    retire=dict(type="list", elements="str", default=[]),
    retire_absent=dict(type="bool", default=False),
)

MIN_MASKED_LENGTH = 4  # shorter values would mask unrelated text everywhere (Ansible's own no_log rule)


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
    if params["concurrency"] < 1 or params["lock_duration"] < 1:
        raise SlipwayError("concurrency and lock_duration must be at least 1")
    return merge_secrets(params["rendered"], params["secret_data"])


def run_delivery(params, rendered, check_mode, diff, progress):
    """Deliver ``rendered`` (from :func:`prepared_systems`) as the validated ``params`` say; raises SlipwayError."""
    from ansible_collections.slipway.platform.plugins.module_utils._kube.client import KubeClient
    from ansible_collections.slipway.platform.plugins.module_utils._kube.config import load_connection
    from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Options
    from ansible_collections.slipway.platform.plugins.module_utils._release.rollback import deliver_or_roll_back

    options = Options(
        context=params["context"], check_mode=check_mode, diff=diff, wait=params["wait"],
        wait_timeout=params["wait_timeout"], concurrency=params["concurrency"], prune=params["prune"],
        force_conflicts=params["force_conflicts"], reclaim_managers=tuple(params["reclaim_managers"]),
        lock_timeout=params["lock_timeout"], lock_duration=params["lock_duration"], holder=params["holder"],
        confirmed=params["confirmed"], retire=tuple(params["retire"]), retire_absent=params["retire_absent"])
    with KubeClient(load_connection(params), max_connections=params["concurrency"] + 4) as client:
        return deliver_or_roll_back(client, rendered, options, on_failure=params["on_failure"], progress=progress)
