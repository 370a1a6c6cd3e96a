#!/usr/bin/python
# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: showroom
short_description: Admit or retire a showroom (a branch shown with the rest of the ecosystem)
version_added: 0.1.0
description:
  - A showroom runs an ecosystem's systems in namespaces of its own, C(<namespace>-<showroom>), as a context of its
    own, C(showroom-<showroom>), whose journal, snapshots and lock live in O(journal_namespace). Its delivery is an
    ordinary M(slipway.platform.deliver) with the option C(showroom); this module does what the showroom's
    deployer may not, with an administrator's connection (C(playbooks/showroom.yml) runs both).
  - C(state=present) makes the name a DNS label (at most 30 characters, as P(slipway.platform.dns_label#filter)
    does), refuses a showroom whose namespaces are taken (a context's systems run there, according to any release
    in O(base_journal_namespace); or the namespace exists and is not this showroom's) before anything is written,
    reads what O(base_context) runs (its last good release), then creates the namespaces labelled
    C(slipway.io/showroom=<showroom>), gives O(deployer) in each of them and nowhere else the least-privilege
    rules the collection generates for deployers (Role C(slipway:showroom-deployer) - writes of O(deployer_kinds)
    and the engine's reads - as M(slipway.platform.deployer_identity) does; or the ClusterRole O(deployer_role) when
    one is named), and copies O(image_pull_secret) there. With O(built) it also says which systems are the branch's
    and which image each system runs (RV(images)).
  - C(state=absent) retires the showroom - deletes its namespaces (only those labelled as its own, with everything
    in them) and its journal, snapshots and lock; nothing else.
author: Slipway engineers (@slipway)
extends_documentation_fragment:
  - slipway.platform.kube
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - The same checks and reads as a real run; RV(created) or RV(removed) list what a real run would create or
        delete. Nothing is written.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in
      diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
    support: full
options:
  name:
    description:
      - The showroom's name as people give it (a branch name); made a DNS label of at most 30 characters.
      - A name with no letter or digit is refused before anything is written.
    type: str
    required: true
  state:
    description: C(present) admits the showroom, C(absent) retires it.
    type: str
    choices: [present, absent]
    default: present
  ecosystem_root:
    description: Folder holding one folder per system (read for the systems' namespaces and images). Required
      with C(state=present).
    type: path
  systems:
    description: The systems the showroom runs (the whole ecosystem). Required with C(state=present).
    type: list
    elements: str
    default: []
  base_context:
    description: The context whose last good release the showroom runs for the systems the branch does not change.
    type: str
    default: staging
  base_journal_namespace:
    description: Namespace of the contexts' journals (the base's, and those whose namespaces a showroom may not take).
    type: str
    default: slipway-system
  journal_namespace:
    description: Namespace of the showrooms' journals and locks (read for RV(untested_systems), written by the
      showroom's delivery, emptied by C(state=absent)).
    type: str
    default: slipway-showrooms
  deployer:
    description:
      - "The RBAC subject of the showroom context's deployer, bound in each showroom namespace (for example
        C({kind: User, name: slipway:showroom-deployer, apiGroup: rbac.authorization.k8s.io}))."
      - Required with C(state=present).
    type: dict
  deployer_kinds:
    description:
      - The kinds (C(plural.group), C(plural) for the core group) the deployer may write in each showroom namespace.
        Access rules (RBAC), admission objects and certificate requests are refused.
    type: list
    elements: str
    default: [configmaps, secrets, services, serviceaccounts, persistentvolumeclaims, deployments.apps,
              statefulsets.apps, jobs.batch, cronjobs.batch, poddisruptionbudgets.policy,
              horizontalpodautoscalers.autoscaling, networkpolicies.networking.k8s.io,
              httproutes.gateway.networking.k8s.io]
  deployer_role:
    description:
      - A ClusterRole to bind the deployer to in each showroom namespace instead of the generated rules (for example
        C(admin), what earlier versions did).
    type: str
  image_pull_secret:
    description: A registry pull secret (C({namespace, name})) copied into each showroom namespace and added to its
      default service account, for clusters whose nodes pull with the namespace's credentials.
    type: dict
  built:
    description: The build step's report for the showroom (image name to reference); with it, RV(images) and
      RV(branch_systems) are returned.
    type: dict
  branch_systems:
    description: The systems that are the branch's. By default, those whose built image differs from the base's.
    type: list
    elements: str
  domain:
    description: The showrooms' DNS domain; RV(hostname) is C(<showroom>.<domain>).
    type: str
seealso:
  - module: slipway.platform.showroom_info
  - module: slipway.platform.deliver
"""

EXAMPLES = r"""
- name: Admit the showroom of a branch (an administrator's connection)
  slipway.platform.showroom:
    name: feature/checkout
    ecosystem_root: "{{ slipway_ecosystem_root }}"
    systems: [backend, worker, frontend]
    base_context: staging
    deployer: {kind: User, name: "slipway:showroom-deployer", apiGroup: rbac.authorization.k8s.io}
    domain: showroom.local
    kubeconfig: ~/.kube/showroom-admin
  register: admitted

- name: Retire it
  slipway.platform.showroom:
    name: feature/checkout
    state: absent
    kubeconfig: ~/.kube/showroom-admin
"""

RETURN = r"""
showroom:
  description: The showroom's name, a DNS label.
  returned: always
  type: str
  sample: feature-checkout-1a2b3c4d
context:
  description: The showroom's context (its journal and lock).
  returned: always
  type: str
  sample: showroom-feature-x
namespaces:
  description: Each namespace of the ecosystem to the showroom's.
  returned: when O(state=present)
  type: dict
  sample: {shop: shop-feature-x}
hostname:
  description: The showroom's host name through the gateway.
  returned: when O(state=present) and O(domain) is given
  type: str
  sample: feature-x.showroom.local
base:
  description: The base context and the revision of its last good release (null when it has none).
  returned: when O(state=present)
  type: dict
  sample: {context: staging, revision: 12}
images:
  description: Image name to the reference the showroom runs (the branch's for its systems, the base's otherwise).
  returned: when O(built) is given
  type: dict
branch_systems:
  description: The systems that run the branch's images.
  returned: when O(built) is given
  type: list
  elements: str
untested_systems:
  description: The branch's systems whose images the showroom's last good release does not run yet (the others were
    tested before it was delivered).
  returned: when O(built) is given
  type: list
  elements: str
created:
  description: What admitting created or changed (or would).
  returned: when O(state=present)
  type: list
  elements: str
removed:
  description: What retiring deleted (or would).
  returned: when O(state=absent)
  type: list
  elements: str
"""

import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._kube.args import KUBE_CONNECTION_SPEC  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._security.identity import WORKLOAD_KINDS  # noqa: E402

try:
    from ansible_collections.slipway.platform.plugins.module_utils._kube.client import KubeClient
    from ansible_collections.slipway.platform.plugins.module_utils._kube.config import load_connection
    from ansible_collections.slipway.platform.plugins.module_utils._release.showroom import (
        showroom_context,
        showroom_name,
    )
    from ansible_collections.slipway.platform.plugins.module_utils._release.showroom_cluster import present, retire
    IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by main()
    IMPORT_ERROR = traceback.format_exc()

ARGUMENT_SPEC = dict(
    KUBE_CONNECTION_SPEC,
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    ecosystem_root=dict(type="path"),
    systems=dict(type="list", elements="str", default=[]),
    base_context=dict(type="str", default="staging"),
    base_journal_namespace=dict(type="str", default="slipway-system"),
    journal_namespace=dict(type="str", default="slipway-showrooms"),
    deployer=dict(type="dict"),
    deployer_kinds=dict(type="list", elements="str", default=list(WORKLOAD_KINDS)),
    deployer_role=dict(type="str"),
    image_pull_secret=dict(type="dict", no_log=False),  # where a pull secret is ({namespace, name}), not its value
    built=dict(type="dict"),
    branch_systems=dict(type="list", elements="str"),
    domain=dict(type="str"),
)


def run(client, params, check_mode):
    if params["state"] == "absent":
        name = showroom_name(params["name"])
        removed = retire(client, name, params["journal_namespace"], check_mode)
        return {"changed": bool(removed), "showroom": name, "context": showroom_context(name), "removed": removed}
    return present(client, params, check_mode)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           required_if=[("state", "present", ("ecosystem_root", "systems", "deployer"))])
    if IMPORT_ERROR:
        module.fail_json(msg="slipway.platform.showroom could not load its libraries (urllib3 and PyYAML are "
                             "required)", exception=IMPORT_ERROR)
    try:
        with KubeClient(load_connection(module.params)) as client:
            result = run(client, module.params, module.check_mode)
    except SlipwayError as exc:
        module.fail_json(**exc.to_result())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
