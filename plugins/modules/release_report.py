#!/usr/bin/python
# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: release_report
short_description: Write one self-contained HTML page of every context's releases, their diffs and failures
version_added: 0.1.0
description:
  - Reads every release journal in O(journal_namespaces) that the connection can read - every context and every
    showroom (showrooms are contexts too, C(showroom-<name>), journaled by M(slipway.platform.showroom) in
    C(slipway-showrooms)) - plus the contexts named in O(contexts), and writes one HTML page to O(dest). A
    namespace the identity may not read, or that does not exist, is named on the page with the reason.
  - Per context and showroom the page shows what runs there (system, namespace, image references by digest, git
    commit, the revision that last changed the system, when, by whom, its outcome), the history of its releases,
    the diff of each release against the one before it, and, folded in C(<details>), against every earlier
    release shown - systems added and removed, images changed, and the manifest changes as unified diffs of the
    objects the releases stored (their snapshots).
  - Secret values never appear; a Secret's values are shown as keyed hashes (the cluster's digest key, as in a
    delivery's diff), so a changed value still shows as a change. The journal itself never holds a secret.
  - Failed deliveries are listed with their reasons - failed journal records and, from O(results_dir), the
    pipeline results (C(result-<context>.json)) of runs that failed before they could record anything.
  - The page is self-contained - inline styles, no script, no external address, a Content-Security-Policy that
    refuses any load - so it reads the same offline and without JavaScript. Every value is HTML-escaped.
  - Rendered with the Jinja2 that Ansible requires on the controller; run it on the controller.
author: Slipway engineers (@slipway)
extends_documentation_fragment:
  - slipway.platform.kube
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The page is read from the cluster and rendered in full; only the write is left out, and C(changed)
      says whether O(dest) would change.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in
      diff mode.
    support: full
    details: The old and the new page text.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
    support: full
    details: The page depends only on what it reads (it states the time of the newest release, not the time it
      was written), so an unchanged journal gives the same bytes and O(dest) is not written.
options:
  dest:
    description: Where to write the page; missing folders are created. The file is replaced atomically.
    type: path
    required: true
  contexts:
    description: Contexts to show even when their journal is empty (the inventory's C(slipway_context)).
    type: list
    elements: str
    default: []
  all_contexts:
    description: Show every context that has a journal in O(journal_namespaces); V(false) shows only O(contexts).
    type: bool
    default: true
  history:
    description: How many of the newest releases of each context to show (and to compare with each other);
      V(0) shows them all.
    type: int
    default: 20
  manifests:
    description: Read the objects each release stored and show the manifest changes; V(false) compares releases
      by their journal records only (systems, images, object digests).
    type: bool
    default: true
  results_dir:
    description: A folder of pipeline result files (C(result-<context>.json), written by every step playbook);
      their failures that never reached a journal are listed too. Leave it out to read the journals only.
    type: path
  title:
    description: The page's title.
    type: str
    default: Slipway releases
  journal_namespaces:
    description: Namespaces whose journals are read - the contexts' and the showrooms'.
    type: list
    elements: str
    default: [slipway-system, slipway-showrooms]
notes:
  - The identity needs to list ConfigMaps in O(journal_namespaces), and to read their Secrets for the Secrets a
    release stored (a context's deployer may, in its own journal namespace); a release whose objects cannot be
    read is compared by its journal record only, and the page says why. To see the showrooms beside the local
    stack's contexts, give an identity that may read both (C(playbooks/report.yml) takes
    C(slipway_report_kube_connection)).
seealso:
  - module: slipway.platform.release_info
  - plugin: slipway.platform.release_diff
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Write the release report of the local stack
  slipway.platform.release_report:
    dest: "{{ playbook_dir }}/../reports/releases.html"
    contexts: [local]
    results_dir: "{{ playbook_dir }}/../reports"
    kubeconfig: .stack/kube/deployer.kubeconfig

- name: See whether the page would change, and how, without writing it
  slipway.platform.release_report:
    dest: reports/releases.html
    history: 5
  check_mode: true
  diff: true
"""

RETURN = r"""
dest:
  description: The page's path.
  returned: always
  type: str
  sample: /ci/work/reports/releases.html
size:
  description: The page's size in bytes.
  returned: always
  type: int
  sample: 48213
contexts:
  description: Per context and showroom shown, its newest release, how many releases the page shows and how many
    failures.
  returned: always
  type: list
  elements: dict
  sample: [{name: local, showroom: false, revision: 7, outcome: succeeded, releases: 7, failures: 1}]
failures:
  description: How many failed deliveries the page lists.
  returned: always
  type: int
  sample: 1
"""

import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._kube.args import KUBE_CONNECTION_SPEC  # noqa: E402

try:
    from ansible_collections.slipway.platform.plugins.module_utils._kube.client import KubeClient
    from ansible_collections.slipway.platform.plugins.module_utils._kube.config import load_connection
    from ansible_collections.slipway.platform.plugins.module_utils._release.report import report
    IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by main()
    IMPORT_ERROR = traceback.format_exc()

ARGUMENT_SPEC = dict(
    KUBE_CONNECTION_SPEC,
    dest=dict(type="path", required=True),
    contexts=dict(type="list", elements="str", default=[]),
    all_contexts=dict(type="bool", default=True),
    history=dict(type="int", default=20),
    manifests=dict(type="bool", default=True),
    results_dir=dict(type="path"),
    title=dict(type="str", default="Slipway releases"),
    journal_namespaces=dict(type="list", elements="str", default=["slipway-system", "slipway-showrooms"]),
)
OPTIONS = ("contexts", "all_contexts", "history", "manifests", "results_dir", "title")


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if IMPORT_ERROR:
        module.fail_json(msg="slipway.platform.release_report could not load its libraries (urllib3 and PyYAML "
                             "are required)", exception=IMPORT_ERROR)
    params = module.params
    try:
        with KubeClient(load_connection(params)) as client:
            result = report(client, params["dest"], module.check_mode, namespaces=params["journal_namespaces"],
                            **{name: params[name] for name in OPTIONS})
    except SlipwayError as exc:
        module.fail_json(**exc.to_result())
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
