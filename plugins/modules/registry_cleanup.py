#!/usr/bin/python
# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: registry_cleanup
short_description: Delete the images of a registry that no release in any context's journal references
version_added: 0.1.0
description:
  - Reads every release journal in O(journal_namespaces) (every context's and every showroom's, every record the
    history keeps, so a rollback target stays) and collects the image references their systems and canary steps
    list. Every tagged manifest of O(registry) (in O(repositories), when given) that none of them references - by
    digest, or by a tag pointing at it - is deleted through the Registry API (C(DELETE /v2/<name>/manifests/<digest>),
    which also removes its tags).
  - Only tagged manifests are listed by the registry's API; untagged ones, and the blobs deleted manifests leave,
    are freed by the registry's garbage collection (C(registry garbage-collect)), which must run while the
    registry is read-only or stopped. C(playbooks/registry_cleanup.yml) runs it when asked.
  - A manifest whose image was built less than O(keep_younger_than) minutes ago is kept, so that an image pushed
    for a delivery still running is not deleted before its release is recorded.
author: Slipway engineers (@slipway)
extends_documentation_fragment:
  - slipway.platform.kube
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Lists what would be deleted (RV(deleted)) and deletes nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in
      diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
    support: full
    details: What the first run deleted is no longer listed; the second finds nothing to delete.
options:
  registry:
    description: The registry's C(host[:port]), as the cleanup reaches it.
    type: str
    required: true
  registry_username:
    description: A registry identity allowed to delete; leave out for an anonymous registry.
    type: str
  registry_password:
    description: The identity's password.
    type: str
  registry_scheme:
    description: C(http) or C(https); by default plain HTTP for a loopback registry only, as the Docker Engine
      does.
    type: str
    choices: [http, https]
  names:
    description: Other names the releases use for this registry (for example its in-cluster Service name), so that
      their references count as this registry's.
    type: list
    elements: str
    default: []
  repositories:
    description: Repositories (or prefixes ending a path component, C(team/) or C(team)) to clean; others are not
      touched. Empty cleans every repository the registry lists.
    type: list
    elements: str
    default: []
  keep_younger_than:
    description: Keep an image built less than this many minutes ago (its config's C(created)) even when no
      release references it; V(0) keeps none for its age.
    type: int
    default: 60
  journal_namespaces:
    description: Namespaces whose journals are read - the contexts' and the showrooms'. One that does not exist
      holds none; one the identity may not read fails the cleanup (deleting on a partial view would delete live
      images).
    type: list
    elements: str
    default: [slipway-system, slipway-showrooms]
notes:
  - C(htpasswd) authentication knows users, not groups or rights - every user it accepts may push and delete. A
    registry with rights per identity needs token authentication.
seealso:
  - module: slipway.platform.release_info
"""

EXAMPLES = r"""
- name: List what the cleanup would delete from the catalogue's registry
  slipway.platform.registry_cleanup:
    registry: 10.77.0.1:5000
    registry_scheme: http
    registry_username: pusher
    registry_password: "{{ slipway_catalogue_registry_pusher_password }}"
    names: [registry.registry.svc:5000]
    kubeconfig: .stack/kube/admin.kubeconfig
  check_mode: true
"""

RETURN = r"""
deleted:
  description: The manifests deleted (in check mode, that would be), each with its repository, digest and tags.
  returned: always
  type: list
  elements: dict
  sample: [{repository: shop/backend, digest: "sha256:9f86d081884c7d65...", tags: ["3f2a"]}]
kept:
  description: The manifests kept, each with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{repository: shop/backend, digest: "sha256:2c26b46b68ffc68f...", tags: ["4b1c"],
            reason: a release references it by digest}]
contexts:
  description: The contexts whose journals were read.
  returned: always
  type: list
  elements: str
  sample: [local, ops, showroom-feature-x]
live_references:
  description: How many distinct image references the journals list.
  returned: always
  type: int
  sample: 42
"""

import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._kube.args import KUBE_CONNECTION_SPEC  # noqa: E402

try:
    from ansible_collections.slipway.platform.plugins.module_utils._image.registry import Registry
    from ansible_collections.slipway.platform.plugins.module_utils._kube.client import KubeClient
    from ansible_collections.slipway.platform.plugins.module_utils._kube.config import load_connection
    from ansible_collections.slipway.platform.plugins.module_utils._release.registry_cleanup import registry_cleanup
    IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by main()
    IMPORT_ERROR = traceback.format_exc()

ARGUMENT_SPEC = dict(
    KUBE_CONNECTION_SPEC,
    registry=dict(type="str", required=True),
    registry_username=dict(type="str"),
    registry_password=dict(type="str", no_log=True),
    registry_scheme=dict(type="str", choices=["http", "https"]),
    names=dict(type="list", elements="str", default=[]),
    repositories=dict(type="list", elements="str", default=[]),
    keep_younger_than=dict(type="int", default=60),
    journal_namespaces=dict(type="list", elements="str", default=["slipway-system", "slipway-showrooms"]),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if IMPORT_ERROR:
        module.fail_json(msg="slipway.platform.registry_cleanup could not load its libraries (urllib3 and PyYAML "
                             "are required)", exception=IMPORT_ERROR)
    params = module.params
    try:
        registry = Registry(params["registry"], params["registry_username"], params["registry_password"],
                            scheme=params["registry_scheme"])
        with KubeClient(load_connection(params)) as client:
            result = registry_cleanup(client, registry, module.check_mode, names=params["names"],
                                      repositories=params["repositories"],
                                      keep_younger_than=params["keep_younger_than"],
                                      journal_namespaces=params["journal_namespaces"])
    except SlipwayError as exc:
        module.fail_json(**exc.to_result())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
