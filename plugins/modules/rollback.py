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
  - A canary routed through an HTTPRoute (M(slipway.platform.canary) with O(slipway.platform.canary#module:route))
    that the restored release did not have is removed like an O(slipway.platform.canary#module:action=abort) would;
    the route gets its rules back before the canary's Service goes, and the journal entry lists it in
    C(action.routes_restored).
  - With a C(local) connection (every Slipway inventory) the rollback runs in the controller's process and shows
    one line per system as it becomes ready (one per object with C(-v)), then a table of the systems, as
    M(slipway.platform.deliver) does; on another host the module runs there and its lines arrive with the result
    (RV(progress)).
author: Slipway engineers (@slipway)
extends_documentation_fragment:
  - slipway.platform.kube
  - slipway.platform.release_run
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
  force_conflicts:
    description: Take every conflicting field from its other owner (see M(slipway.platform.deliver)).
    type: bool
    default: false
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

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._release.rollback_task import (  # noqa: E402
    ROLLBACK_SPEC,
    run_rollback,
)


def main():
    module = AnsibleModule(argument_spec=ROLLBACK_SPEC, supports_check_mode=True)
    try:
        result = run_rollback(module.params, module.check_mode, module._diff)
    except ImportError as exc:
        module.fail_json(msg=f"slipway.platform.rollback could not load its libraries (urllib3 is required): {exc}")
    except SlipwayError as exc:
        module.fail_json(**exc.to_result())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
