# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options every release run takes (deliver, rollback, canary; documented by ``slipway.platform.release_run``).

A release run holds the context's Lease, applies, waits and records; these options tune that and are turned
into engine ``Options`` here, once. The engine is imported when called, so that a module's spec loads even
where urllib3 is missing and the module can say what to install.
"""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.args import KUBE_CONNECTION_SPEC

RELEASE_RUN_SPEC = dict(
    KUBE_CONNECTION_SPEC,
    context=dict(type="str", required=True),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="float", default=300.0),
    concurrency=dict(type="int", default=8),
    lock_timeout=dict(type="float", default=120.0),
    lock_duration=dict(type="int", default=30),
    holder=dict(type="str"),
    confirmed=dict(type="bool", default=False),
    journal_namespace=dict(type="str", default="slipway-system"),
    history_max=dict(type="int", default=20),
    prometheus_url=dict(type="str"),
)


def release_options(params, check_mode, diff, **more):
    """Engine ``Options`` from a release run's validated parameters (``more``: a module's own engine options)."""
    from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Options

    if params["concurrency"] < 1 or params["lock_duration"] < 1:
        raise SlipwayError("concurrency and lock_duration must be at least 1")
    if params.get("history_max", 20) < 0:
        raise SlipwayError("history_max must be 0 (keep every release) or more")
    return Options(context=params["context"], check_mode=check_mode, diff=diff, wait=params["wait"],
                   wait_timeout=params["wait_timeout"], concurrency=params["concurrency"],
                   lock_timeout=params["lock_timeout"], lock_duration=params["lock_duration"],
                   holder=params["holder"], confirmed=params["confirmed"],
                   journal_namespace=params["journal_namespace"], history_max=params.get("history_max", 20),
                   prometheus_url=params.get("prometheus_url"),
                   **more)


def release_client(params):
    """The API client for a release run: one connection per concurrent request, plus room for the waiters."""
    from ansible_collections.slipway.platform.plugins.module_utils._kube.client import KubeClient
    from ansible_collections.slipway.platform.plugins.module_utils._kube.config import load_connection

    return KubeClient(load_connection(params), max_connections=params["concurrency"] + 4)
