#!/usr/bin/python
# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deployer_identity
short_description: Generate a context's least-privilege deployer and read-only role from what its systems deliver
version_added: 0.1.0
description:
  - Renders the context's systems as C(slipway.platform.deliver) does (the action plugin, on the controller), reads
    the kinds their manifests hold per namespace (custom kinds resolved through API discovery) and applies, with an
    admin's credentials, the deployer's access rules - C(Role) and C(RoleBinding) C(slipway:deployer:<context>) in
    each of those namespaces allowing exactly those kinds, plus what the delivery engine itself needs (reads of pods,
    ReplicaSets and Events for the waits, C(services/proxy) for HTTP health gates), the journal's records, snapshots
    and lock in O(journal_namespace), and cluster-wide only reads of namespaces and CRDs.
  - No deployer may write access rules (RBAC), admission policies, certificate requests or cluster-wide objects; a
    system whose manifests hold one is refused, naming the object, before anything is written.
  - People in O(viewer_groups) get the built-in C(view) role (which leaves Secrets out) in the systems' namespaces,
    never in the journal's.
  - Objects are labelled C(slipway.io/identity-of=<context>); those the context no longer needs (a namespace its
    systems left, a viewer group removed) are deleted.
author: Slipway engineers (@slipway)
extends_documentation_fragment:
  - slipway.platform.kube
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on
      the controller.
    support: full
    details: The action plugin renders the systems' templates with the task's variables, like deliver's.
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Every write is sent as a server-side dry-run.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in
      diff mode.
    support: full
    details: The rules, subjects and role reference of each object written or removed, before and after.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
    support: full
options:
  context:
    description: The delivery context; it names the roles and labels them.
    type: str
    required: true
  subject:
    description:
      - Who the deployer is, as an RBAC subject - C(kind) (C(User), C(Group) or C(ServiceAccount)), C(name), and for
        a ServiceAccount its C(namespace).
    type: dict
    required: true
  viewer_groups:
    description: Groups of people (for example an SSO group claim) given read-only access to the systems' namespaces.
    type: list
    elements: str
    default: []
  journal_namespace:
    description: The namespace of the context's journal and lock; no system may deliver into it.
    type: str
    default: slipway-system
  systems:
    description: The context's systems (C(slipway_systems)).
    type: list
    elements: str
    required: true
  ecosystem_root:
    description: Folder holding one folder per system, each with a C(slipway.yml) (C(slipway_ecosystem_root)).
    type: path
    required: true
  network_policy:
    description: The context's network policy mode; with C(enforce) the generated NetworkPolicies count as delivered.
    type: str
    choices: ["off", audit, enforce]
    default: "off"
  rendered:
    description: The rendered systems. Filled by the action plugin; give it only to use documents rendered elsewhere.
    type: list
    elements: dict
notes:
  - Run it with an admin's connection (C(slipway_security_kube_connection) in C(playbooks/security.yml)), again when
    systems, their kinds or their namespaces change.
seealso:
  - module: slipway.platform.security_baseline
  - module: slipway.platform.deliver
"""

EXAMPLES = r"""
- name: Generate the local context's deployer for the shop's systems, and let the developers group read
  slipway.platform.deployer_identity:
    context: local
    subject: {kind: User, name: "slipway:deployer"}
    viewer_groups: [developers]
    systems: [backend, worker, frontend]
    ecosystem_root: "{{ playbook_dir }}/../examples/shop"
    kubeconfig: .stack/kube/admin.kubeconfig
  diff: true
"""

RETURN = r"""
applied:
  description: The objects written (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["Role shop/slipway:deployer:local", "RoleBinding shop/slipway:deployer:local"]
removed:
  description: Objects labelled for the context that it no longer needs, deleted (or that would be).
  returned: always
  type: list
  elements: str
namespaces:
  description: Per namespace, the kinds (C(plural.group)) the deployer may write there.
  returned: always
  type: dict
  sample: {shop: [configmaps, deployments.apps, services]}
"""

import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._kube.args import KUBE_CONNECTION_SPEC  # noqa: E402

try:
    from ansible_collections.slipway.platform.plugins.module_utils._kube.client import KubeClient
    from ansible_collections.slipway.platform.plugins.module_utils._kube.config import load_connection
    from ansible_collections.slipway.platform.plugins.module_utils._security.access import apply_identities
    IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by main()
    IMPORT_ERROR = traceback.format_exc()

ARGUMENT_SPEC = dict(
    KUBE_CONNECTION_SPEC,
    context=dict(type="str", required=True),
    subject=dict(type="dict", required=True),
    viewer_groups=dict(type="list", elements="str", default=[]),
    journal_namespace=dict(type="str", default="slipway-system"),
    systems=dict(type="list", elements="str", required=True),
    ecosystem_root=dict(type="path", required=True),
    network_policy=dict(type="str", choices=["off", "audit", "enforce"], default="off"),
    rendered=dict(type="list", elements="dict"),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if IMPORT_ERROR:
        module.fail_json(msg="slipway.platform.deployer_identity could not load its libraries (urllib3 and PyYAML "
                             "are required)", exception=IMPORT_ERROR)
    params = module.params
    if params["rendered"] is None:
        module.fail_json(msg="rendered is missing: run this module through its action plugin (as a task), which "
                             "renders the systems")
    try:
        with KubeClient(load_connection(params)) as client:
            result = apply_identities(client, params["context"], params["subject"], params["rendered"],
                                      params["journal_namespace"], params["viewer_groups"], module.check_mode)
    except SlipwayError as exc:
        module.fail_json(**exc.to_result())
    diff = result.pop("diff")
    if module._diff and result["changed"]:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
