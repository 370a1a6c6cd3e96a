#!/usr/bin/python
# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: context_lock
short_description: Hold a context's delivery lock across the steps of one job (build, test, deliver, merge)
version_added: 0.1.0
description:
  - Every delivery, rollback and canary step takes the context's lock (a C(coordination.k8s.io) Lease in
    C(slipway-system)) for its own run. An integration job runs several steps - rebase, build, test, deliver, roll
    back on failure, merge - and must not interleave with another job on the same context. This module holds the
    lock for the whole job.
  - O(state=held) takes the lock for O(holder), waiting up to O(lock_timeout) for another holder, and keeps it
    O(duration) seconds from now. Nothing renews it in the background; holding again renews it (a step that may
    run long can be preceded by one). A job killed between two steps loses it O(duration) seconds after its last
    hold.
  - While the job holds it, a M(slipway.platform.deliver), M(slipway.platform.rollback) or M(slipway.platform.canary)
    task with the same O(holder) runs inside the hold and hands the lock back to the job when it ends; one with any
    other holder waits for the job like for any delivery, and fails naming it after its own C(lock_timeout).
  - O(state=released) ends the hold. Releasing a lock that is free or expired changes nothing; releasing one held by
    another holder fails without changing it.
author: Slipway engineers (@slipway)
extends_documentation_fragment:
  - slipway.platform.kube
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reads the lock; O(state=held) fails in check mode when another holder has it, since a real run would
      wait for it.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in
      diff mode.
    support: full
    details: The lock's holder before and after.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
    support: full
    details: Holding again renews the hold (a write) but reports no change; releasing twice changes nothing.
options:
  context:
    description: The delivery context whose lock is held or released.
    type: str
    required: true
  state:
    description: Whether the job holds the lock (V(held)) or lets it go (V(released)).
    type: str
    choices: [held, released]
    default: held
  holder:
    description:
      - Who holds the lock, as the deliveries of the job name themselves with their own C(holder) option, for
        example C(integration {{ lookup('ansible.builtin.env', 'BUILD_TAG') }}).
      - The journal and the errors of other jobs show it.
    type: str
    required: true
  duration:
    description: Seconds the hold lasts after each O(state=held), at least 1. Choose the longest a step of the job
      may take; a killed job blocks the context that long.
    type: int
    default: 1800
  lock_timeout:
    description: Seconds to wait for another holder before failing with its name (O(state=held)).
    type: float
    default: 600.0
  journal_namespace:
    description: The namespace of Slipway's journal and locks.
    type: str
    default: slipway-system
seealso:
  - module: slipway.platform.deliver
  - module: slipway.platform.release_info
    description: Shows the lock's current holder.
"""

EXAMPLES = r"""
- name: Integrate one change into staging, with no other job in between
  vars:
    job: "integration {{ lookup('ansible.builtin.env', 'BUILD_TAG') }}"
  block:
    - name: Hold staging for this job
      slipway.platform.context_lock:
        context: staging
        holder: "{{ job }}"
        duration: 3600

    - name: Deliver inside the hold (rolls back by itself on failure)
      slipway.platform.deliver:
        context: staging
        holder: "{{ job }}"
        systems: [frontend, backend]
        ecosystem_root: "{{ slipway_ecosystem_root }}"
        on_failure: rollback
  always:
    - name: Let the next job in
      slipway.platform.context_lock:
        context: staging
        holder: "{{ job }}"
        state: released
"""

RETURN = r"""
holder:
  description: The holder named in O(holder).
  returned: always
  type: str
  sample: integration shop-main-1234
was:
  description: Who held the lock before the task (null when it was free or expired).
  returned: always
  type: str
  sample: integration shop-main-1233
expires_in:
  description: Seconds from now until the hold ends unless held again or released.
  returned: when O(state=held)
  type: int
  sample: 1800
"""

import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._kube.args import KUBE_CONNECTION_SPEC  # noqa: E402

try:
    from ansible_collections.slipway.platform.plugins.module_utils._kube.client import KubeClient
    from ansible_collections.slipway.platform.plugins.module_utils._kube.config import load_connection
    from ansible_collections.slipway.platform.plugins.module_utils._release.lease import hold, release_hold
    IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by main()
    IMPORT_ERROR = traceback.format_exc()

ARGUMENT_SPEC = dict(
    KUBE_CONNECTION_SPEC,
    context=dict(type="str", required=True),
    state=dict(type="str", choices=["held", "released"], default="held"),
    holder=dict(type="str", required=True),
    duration=dict(type="int", default=1800),
    lock_timeout=dict(type="float", default=600.0),
    journal_namespace=dict(type="str", default="slipway-system"),
)


def run(client, params, check_mode):
    if params["state"] == "released":
        return release_hold(client, params["context"], params["holder"], params["journal_namespace"], check_mode)
    return hold(client, params["context"], params["holder"], params["duration"], params["lock_timeout"],
                params["journal_namespace"], check_mode)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if IMPORT_ERROR:
        module.fail_json(msg="slipway.platform.context_lock could not load its libraries (urllib3 and PyYAML are "
                             "required)", exception=IMPORT_ERROR)
    params = module.params
    if not params["holder"].strip() or params["duration"] < 1 or params["lock_timeout"] < 0:
        module.fail_json(msg="holder must not be empty, duration must be at least 1 and lock_timeout at least 0")
    try:
        with KubeClient(load_connection(params)) as client:
            result = run(client, params, module.check_mode)
    except SlipwayError as exc:
        module.fail_json(**exc.to_result())
    after = None if params["state"] == "released" else params["holder"]
    if module._diff and result["changed"]:  # pylint: disable=protected-access
        where = f"lock of context {params['context']}"
        result["diff"] = {"before": f"holder: {result['was']}\n", "after": f"holder: {after}\n",
                          "before_header": where, "after_header": where}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
