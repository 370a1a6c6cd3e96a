#!/usr/bin/python
# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: security_baseline
short_description: Turn a context's admission baseline on - image, privilege and host-namespace rules and Pod Security
version_added: 0.1.0
description:
  - Applies, with credentials allowed to write cluster-wide admission objects (an admin's, once per context), the
    ValidatingAdmissionPolicy C(slipway-admission-<context>) and its binding (C(validationActions=[Deny])). In every
    namespace labelled C(slipway.io/admission=<context>) the API server then rejects a Pod, or a workload whose pod
    template, runs an image not from O(registry) or not referenced by digest (C(@sha256:)), a privileged container,
    or C(hostNetwork), C(hostPID) or C(hostIPC). The rejection message names the policy.
  - Labels the namespace of each of O(systems) (read from its C(slipway.yml) under O(ecosystem_root))
    C(slipway.io/admission=<context>) and with the Pod Security labels - C(enforce=restricted), or C(baseline) when a
    system of the namespace declares C(security.pod_security=baseline) with a C(reason); C(warn) and C(audit) stay
    C(restricted). A namespace that does not exist is created.
  - Applied server-side under the field manager C(slipway-security), which owns only the fields it sets.
author: Slipway engineers (@slipway)
extends_documentation_fragment:
  - slipway.platform.kube
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - The same comparison decides; every object that would change is sent as a server-side dry-run.
      - RV(would_reject) lists the pods now running in those namespaces that the policy would reject if they were
        created again (admission judges only new and updated objects), so the baseline can be turned on knowing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in
      diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
    support: full
    details: An object whose live labels and spec already contain what the baseline declares is not written.
options:
  context:
    description: The delivery context (C(local), C(production), ...); it names the policy and the namespace label.
    type: str
    required: true
  registry:
    description: The only registry the context's pods may pull from (C(slipway_registry)), without a trailing C(/).
    type: str
    required: true
  systems:
    description: The context's systems; their namespaces get the labels.
    type: list
    elements: str
    required: true
  ecosystem_root:
    description: Folder holding one folder per system, each with a C(slipway.yml).
    type: path
    required: true
notes:
  - The deployer of a context cannot run this (it may not write admission objects or namespaces); give an admin's
    connection, for example through C(slipway_security_kube_connection) in C(playbooks/security.yml).
seealso:
  - module: slipway.platform.deliver
"""

EXAMPLES = r"""
- name: See what the baseline would reject among the running pods, without turning it on
  slipway.platform.security_baseline:
    context: local
    registry: 127.0.0.1:5001
    systems: [backend, worker, frontend]
    ecosystem_root: "{{ playbook_dir }}/../examples/shop"
    kubeconfig: .stack/kube/admin.kubeconfig
  check_mode: true
"""

RETURN = r"""
policy:
  description: The name of the ValidatingAdmissionPolicy and of its binding.
  returned: always
  type: str
  sample: slipway-admission-local
applied:
  description: The objects written (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["ValidatingAdmissionPolicy slipway-admission-local", "Namespace shop"]
namespaces:
  description: Each namespace's Pod Security level and the reasons systems gave for C(baseline).
  returned: always
  type: dict
  sample: {shop: {level: restricted, reasons: []}}
would_reject:
  description: Pods running now in those namespaces that the policy would reject, with the policy's reasons.
  returned: always
  type: list
  elements: dict
  sample: [{pod: shop/debug, reasons: ["slipway-admission-local: images must be referenced by digest ..."]}]
"""

import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._kube.args import KUBE_CONNECTION_SPEC  # noqa: E402

try:
    from ansible_collections.slipway.platform.plugins.module_utils._kube.client import KubeClient
    from ansible_collections.slipway.platform.plugins.module_utils._kube.config import load_connection
    from ansible_collections.slipway.platform.plugins.module_utils._security.baseline import apply_baseline
    from ansible_collections.slipway.platform.plugins.module_utils._system import read_description
    IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by main()
    IMPORT_ERROR = traceback.format_exc()

ARGUMENT_SPEC = dict(
    KUBE_CONNECTION_SPEC,
    context=dict(type="str", required=True),
    registry=dict(type="str", required=True),
    systems=dict(type="list", elements="str", required=True),
    ecosystem_root=dict(type="path", required=True),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if IMPORT_ERROR:
        module.fail_json(msg="slipway.platform.security_baseline could not load its libraries (urllib3 and PyYAML "
                             "are required)", exception=IMPORT_ERROR)
    params = module.params
    try:
        descriptions = {name: read_description(params["ecosystem_root"], name)[1] for name in params["systems"]}
        with KubeClient(load_connection(params)) as client:
            result = apply_baseline(client, params["context"], params["registry"], descriptions, module.check_mode)
    except SlipwayError as exc:
        module.fail_json(**exc.to_result())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
