#!/usr/bin/python
# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: showroom_info
short_description: List the showrooms of a cluster, and those past their time to live
version_added: 0.1.0
description:
  - "Lists every showroom (see M(slipway.platform.showroom)) - those with namespaces labelled
    C(slipway.io/showroom) and those with a journal in O(journal_namespace) - with what its journal says: name,
    branch, who delivered it, its systems and their images, its URL, its last delivery and its age."
  - With O(ttl), also lists in RV(stale) those whose last recorded delivery (or, never delivered, whose namespaces'
    creation) is older than O(ttl) seconds; C(playbooks/showroom_expire.yml) retires them.
  - Needs only reads (namespaces cluster-wide, ConfigMaps in O(journal_namespace)); the showroom deployer may run it.
author: Slipway engineers (@slipway)
extends_documentation_fragment:
  - slipway.platform.kube
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Only reads.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in
      diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
    support: full
    details: Only reads.
options:
  name:
    description: List only this showroom (as people name it; made a label as M(slipway.platform.showroom) does).
    type: str
  ttl:
    description: Seconds without a delivery after which a showroom is stale (RV(stale)).
    type: int
  journal_namespace:
    description: Namespace of the showrooms' journals.
    type: str
    default: slipway-showrooms
seealso:
  - module: slipway.platform.showroom
"""

EXAMPLES = r"""
- name: List the showrooms, and those idle for a week
  slipway.platform.showroom_info:
    ttl: 604800
    kubeconfig: ~/.kube/showroom
  register: listed
"""

RETURN = r"""
showrooms:
  description:
    - One entry per showroom, oldest first. C(idle_seconds) counts from the last recorded delivery.
    - A delivery that changes nothing records nothing, so it does not renew a showroom's time to live.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: feature-x, context: showroom-feature-x, namespaces: [shop-feature-x], branch: feature/x,
       base: local, url: "http://feature-x.showroom.local/", who: alice,
       systems: {frontend: {frontend: "127.0.0.1:5001/frontend@sha256:..."}}, revision: 2, outcome: succeeded,
       last_delivery: "2026-11-30T15:00:00Z", created: "2026-11-29T09:12:00Z", age_seconds: 107880,
       idle_seconds: 3600}
stale:
  description: The names of the showrooms idle for longer than O(ttl).
  returned: when O(ttl) is given
  type: list
  elements: str
"""

import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._kube.args import KUBE_CONNECTION_SPEC  # noqa: E402

try:
    from ansible_collections.slipway.platform.plugins.module_utils._kube.client import KubeClient
    from ansible_collections.slipway.platform.plugins.module_utils._kube.config import load_connection
    from ansible_collections.slipway.platform.plugins.module_utils._release.showroom import showroom_name
    from ansible_collections.slipway.platform.plugins.module_utils._release.showroom_cluster import showrooms, stale
    IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by main()
    IMPORT_ERROR = traceback.format_exc()

ARGUMENT_SPEC = dict(
    KUBE_CONNECTION_SPEC,
    name=dict(type="str"),
    ttl=dict(type="int"),
    journal_namespace=dict(type="str", default="slipway-showrooms"),
)


def run(client, params):
    listed = showrooms(client, params["journal_namespace"])
    if params["name"] is not None:
        wanted = showroom_name(params["name"])
        listed = [s for s in listed if s["name"] == wanted]
    result = {"changed": False, "showrooms": listed}
    if params["ttl"] is not None:
        result["stale"] = [s["name"] for s in stale(listed, params["ttl"])]
    return result


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if IMPORT_ERROR:
        module.fail_json(msg="slipway.platform.showroom_info could not load its libraries (urllib3 and PyYAML are "
                             "required)", exception=IMPORT_ERROR)
    try:
        with KubeClient(load_connection(module.params)) as client:
            result = run(client, module.params)
    except SlipwayError as exc:
        module.fail_json(**exc.to_result())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
