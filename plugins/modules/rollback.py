#!/usr/bin/python
# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rollback
short_description: Roll a context (or some of its systems) back to a recorded release, config and secrets included
version_added: 0.1.0
description:
  - Restores every object of every system of a recorded release - Deployments, StatefulSets, Jobs, Services,
    ConfigMaps, Secrets, anything that release applied - exactly as it was applied, and prunes what was added
    after it. Systems the release did not have are removed.
  - Each release recorded by M(slipway.platform.deliver) keeps the objects it applied beside its journal record
    (non-secret objects compressed in the journal ConfigMap, Secrets in a companion Secret
    C(slipway-release-<context>-<revision>) in C(slipway-system)).
  - A rollback runs like a delivery - the same per-context Lease, server-side dry-run of everything before the
    first write, ordered apply, prune, parallel fail-fast wait - and records a new journal entry
    C(rollback to N) with who ran it and why (O(reason)).
  - "Which release: O(revision) when given; otherwise the newest B(succeeded) release before the current one
    whose content (images and manifest digest of the systems concerned) differs from the current one."
  - "Rollback of a rollback: the rollback is a release of its own. A default rollback right after a rollback goes
    one distinct good release further back; to undo a rollback, roll back to the revision it started from (its
    journal entry's C(action.from))."
  - An unknown revision, one pruned from the kept history, or one recorded before snapshots existed is refused with
    the list of the revisions available.
  - Workloads whose pod templates use a ConfigMap or Secret of the same delivery carry the annotation
    C(slipway.io/config-digest) (a keyed hash), so restoring the config also rolls the pods onto it.
  - A rollback checks the health gates recorded with the release it restores, on the systems it changes; a system
    retired since that release comes back.
author: Slipway engineers (@slipway)
extends_documentation_fragment:
  - slipway.platform.kube
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Every object that would change is sent as a server-side dry-run; prunes are reported. Nothing is written,
        not even the lock or the journal.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in
      diff mode.
    support: full
    details:
      - Shows only the fields that change, per object; Secret values appear as keyed hashes only.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
    support: full
    details:
      - Rolling back to the release that is already in place changes nothing and records nothing.
      - A rollback killed half-way is completed by running it again (the killed run's Lease expires and is
        taken over).
options:
  context:
    description:
      - The delivery context (inventory) name whose journal is read, for example C(local), as for
        M(slipway.platform.deliver).
      - The kubeconfig context is O(kube_context).
    type: str
    required: true
  revision:
    description: The journal revision to restore. Default, the previous distinct succeeded release (see above).
    type: int
  systems:
    description:
      - Roll back only these systems (an "undo" for one service); the other systems stay as they are.
      - A named system the target release did not have is removed.
    type: list
    elements: str
  reason:
    description: "Why, recorded in the journal entry (C(rollback to N: <reason>))."
    type: str
  wait:
    description: Wait for every restored workload to be ready (failing fast with the reason).
    type: bool
    default: true
  wait_timeout:
    description: Seconds a system may take to become ready.
    type: float
    default: 300
  concurrency:
    description: How many API requests run at once.
    type: int
    default: 8
  force_conflicts:
    description: Take every conflicting field from its other owner (see M(slipway.platform.deliver)).
    type: bool
    default: false
  lock_timeout:
    description: Seconds to wait for another delivery or rollback of the context to release its lock.
    type: float
    default: 120
  lock_duration:
    description: Seconds the lock outlives its last renewal.
    type: int
    default: 30
  holder:
    description: Who holds the lock, shown to anyone waiting; defaults to C(user@host pid N) plus a CI job id.
    type: str
  confirmed:
    description: Must be true to roll back the C(production) context.
    type: bool
    default: false
  journal_namespace:
    description: Namespace of the journal, the snapshots and the lock.
    type: str
    default: slipway-system
notes:
  - Immutable fields (a Job's template, a selector) that differ between the releases fail the dry-run with the field
    named; nothing is written.
seealso:
  - module: slipway.platform.deliver
  - module: slipway.platform.release_info
  - module: slipway.platform.canary
"""

EXAMPLES = r"""
- name: Roll the local context back to its previous good release
  slipway.platform.rollback:
    context: local
    reason: "checkout broken since release 7"
    kubeconfig: "{{ lookup('ansible.builtin.env', 'SLIPWAY_DEPLOYER_KUBECONFIG') }}"

- name: Predict a rollback of the backend alone to revision 3
  slipway.platform.rollback:
    context: staging
    revision: 3
    systems: [backend]
    kubeconfig: ~/.kube/staging
  check_mode: true
  diff: true
"""

RETURN = r"""
rollback:
  description: What was rolled back.
  returned: always
  type: dict
  sample: {to: 2, from: 3, removed: [newcomer], reason: "ticket 42", target_outcome: succeeded}
revision:
  description: The journal revision this rollback recorded, or the current one when nothing changed.
  returned: always
  type: int
  sample: 4
recorded:
  description: Whether a new journal entry was recorded.
  returned: always
  type: bool
summary:
  description: Object counts.
  returned: always
  type: dict
  sample: {created: 0, updated: 3, unchanged: 1, pruned: 1}
systems:
  description: One row per restored system.
  returned: always
  type: list
  elements: dict
objects:
  description: Objects created or updated (or predicted to be), with the changed field paths.
  returned: always
  type: list
  elements: dict
pruned:
  description: Objects deleted (or that would be) because the target release did not have them.
  returned: always
  type: list
  elements: str
writes:
  description: Mutating API requests made (zero in check mode).
  returned: always
  type: int
progress:
  description: The progress lines, in order.
  returned: always
  type: list
  elements: str
lock_taken_over_from:
  description: The holder of an expired lock (for example a killed rollback) that this run took over.
  returned: when a stale lock was taken over
  type: str
"""

import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._kube.args import KUBE_CONNECTION_SPEC  # noqa: E402

try:
    from ansible_collections.slipway.platform.plugins.module_utils._kube.client import KubeClient
    from ansible_collections.slipway.platform.plugins.module_utils._kube.config import load_connection
    from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Options
    from ansible_collections.slipway.platform.plugins.module_utils._release.rollback import rollback
    IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by main()
    IMPORT_ERROR = traceback.format_exc()


def main():
    argument_spec = dict(
        KUBE_CONNECTION_SPEC,
        context=dict(type="str", required=True),
        revision=dict(type="int"),
        systems=dict(type="list", elements="str"),
        reason=dict(type="str"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="float", default=300.0),
        concurrency=dict(type="int", default=8),
        force_conflicts=dict(type="bool", default=False),
        lock_timeout=dict(type="float", default=120.0),
        lock_duration=dict(type="int", default=30),
        holder=dict(type="str"),
        confirmed=dict(type="bool", default=False),
        journal_namespace=dict(type="str", default="slipway-system"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if IMPORT_ERROR:
        module.fail_json(msg="slipway.platform.rollback could not load its libraries (urllib3 is required)",
                         exception=IMPORT_ERROR)
    params = module.params
    if params["concurrency"] < 1 or params["lock_duration"] < 1:
        module.fail_json(msg="concurrency and lock_duration must be at least 1")
    options = Options(
        context=params["context"], check_mode=module.check_mode, diff=module._diff, wait=params["wait"],
        wait_timeout=params["wait_timeout"], concurrency=params["concurrency"],
        force_conflicts=params["force_conflicts"], lock_timeout=params["lock_timeout"],
        lock_duration=params["lock_duration"], holder=params["holder"], confirmed=params["confirmed"],
        journal_namespace=params["journal_namespace"])
    try:
        with KubeClient(load_connection(params), max_connections=params["concurrency"] + 4) as client:
            result = rollback(client, options, revision=params["revision"], systems=params["systems"],
                              reason=params["reason"])
    except SlipwayError as exc:
        module.fail_json(**exc.to_result())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
