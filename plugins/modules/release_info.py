#!/usr/bin/python
# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: release_info
short_description: Read a context's release journal
version_added: 0.1.0
description:
  - Reads the releases that M(slipway.platform.deliver) recorded for one context (one ConfigMap per release in
    C(slipway-system)), newest last, and the lock's current holder.
  - Secrets are never in the journal; systems are recorded by image references and a keyed manifest digest.
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
  context:
    description: The delivery context whose journal is read.
    type: str
    required: true
  revision:
    description: Return only this revision (fails clearly when it is not, or no longer, in the journal).
    type: int
  history:
    description: How many of the newest releases to return in RV(releases); 0 returns them all.
    type: int
    default: 10
  journal_namespace:
    description: Namespace of the journal and the lock.
    type: str
    default: slipway-system
  audit_log:
    description:
      - The API server's audit log (its C(--audit-log-path), JSON lines), on the host the task runs on; its rotated
        backups beside it (C(<name>-<time>.<ext>)) are read too. With it, RV(audit) lists what the identity that
        delivered the selected release (O(revision), else the newest) did in the release's time window.
      - The identity is the one the journal recorded at delivery (C(actor.kubernetes.username), from a
        SelfSubjectReview); releases recorded before Slipway did so cannot be matched and fail clearly.
      - Only what identifies each request is returned, never a request or response body (so never a Secret's value).
      - The log is usually readable by root only - run the task with C(become), delegated to the API server's host.
    type: path
"""

EXAMPLES = r"""
- name: Read what runs in the local context
  slipway.platform.release_info:
    context: local
    api_url: https://127.0.0.1:6443
    ca_cert: .stack/pki/ca.crt
    client_cert: .stack/pki/deployer.crt
    client_key: .stack/pki/deployer.key
  register: journal

- name: What the identity that delivered revision 7 did, from the API server's audit log
  slipway.platform.release_info:
    context: production
    revision: 7
    audit_log: /var/log/kubernetes/audit.log
    kubeconfig: ~/.kube/production
  delegate_to: "{{ groups['kube_control_plane'][0] }}"
  become: true
  register: journal

- name: Show the images of the last good release
  ansible.builtin.debug:
    msg: "{{ journal.last_good.systems | dict2items | map(attribute='value.images') | list }}"
"""

RETURN = r"""
latest:
  description: The newest release (whatever its outcome), or null for an empty journal.
  returned: always
  type: dict
  sample: {revision: 3, context: local, outcome: succeeded, systems: {backend: {images: {}, manifest_digest: "9f..."}}}
last_good:
  description: The newest release whose outcome is C(succeeded), or null.
  returned: always
  type: dict
release:
  description: The release asked for with O(revision).
  returned: when O(revision) is given
  type: dict
releases:
  description: The newest O(history) releases, oldest first.
  returned: always
  type: list
  elements: dict
audit:
  description:
    - The audit trail of the selected release, from O(audit_log) - the Kubernetes user that delivered it, the
      window searched (from C(started_at) to a few seconds after C(finished_at), which cover the journal's own
      writes), the files read, and one event per request that user made in it, oldest first.
    - Requests of other users in the same window are never included; the same user's other work in the window (a
      shared deployer used by two jobs at once) is.
  returned: when O(audit_log) is given
  type: dict
  contains:
    user:
      description: The Kubernetes user name the release was delivered as.
      type: str
      sample: "slipway:deployer"
    since:
      description: Start of the window searched (UTC).
      type: str
    until:
      description: End of the window searched (UTC).
      type: str
    files:
      description: The audit log files read.
      type: list
      elements: str
    events:
      description: Per request - C(timestamp), C(verb), C(api_group), C(resource) (with its subresource, for example
        C(services/proxy)), C(namespace), C(name), C(code) (the HTTP response code), C(uri) (only for requests
        that name no resource) and C(audit_id).
      type: list
      elements: dict
      sample: [{timestamp: "2026-01-01T10:00:01.123456Z", verb: patch, api_group: apps, resource: deployments,
                namespace: shop, name: backend, code: 200, uri: null, audit_id: "3f2c..."}]
lock:
  description: The context's lock, or null when it was never taken.
  returned: always
  type: dict
  sample: {holder: "ci@runner pid 42", acquired: "2026-01-01T00:00:00.000000Z", expired: false}
"""

import time  # noqa: E402
import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._kube.args import KUBE_CONNECTION_SPEC  # noqa: E402

try:
    from ansible_collections.slipway.platform.plugins.module_utils._kube.client import KubeClient
    from ansible_collections.slipway.platform.plugins.module_utils._kube.config import load_connection
    from ansible_collections.slipway.platform.plugins.module_utils._release.journal import (
        OUTCOME_LABEL,
        SUCCEEDED,
        Journal,
    )
    from ansible_collections.slipway.platform.plugins.module_utils._release.audit import audit_events
    from ansible_collections.slipway.platform.plugins.module_utils._release.lease import Lease, expired
    IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by main()
    IMPORT_ERROR = traceback.format_exc()


def read(client, params):
    journal = Journal(client, params["context"], params["journal_namespace"])
    # the index first (metadata only), then only the records shown: a long history stays cheap to read
    index = journal.index()
    shown = index[-params["history"]:] if params["history"] else index
    good = [e["revision"] for e in index if (e.get("labels") or {}).get(OUTCOME_LABEL) == SUCCEEDED]
    wanted = [e["revision"] for e in shown] + good[-1:] + ([params["revision"]] if params["revision"] else [])
    by_revision = {r["revision"]: r for r in journal.read(wanted)}
    records = [by_revision[e["revision"]] for e in shown if e["revision"] in by_revision]
    lease = Lease(client, params["context"], holder="", namespace=params["journal_namespace"]).peek()
    spec = (lease or {}).get("spec") or {}
    result = {
        "latest": records[-1] if records else None,
        "last_good": by_revision.get(good[-1]) if good else None,
        "releases": records,
        "lock": None if lease is None else {"holder": spec.get("holderIdentity"), "acquired": spec.get("acquireTime"),
                                            "renewed": spec.get("renewTime"),
                                            "expired": expired(lease, time.time())},
    }
    if params["revision"] is not None:
        result["release"] = by_revision.get(params["revision"]) or journal.get(params["revision"])
    if params.get("audit_log"):  # absent from callers that predate it
        selected = result["release"] if params["revision"] is not None else result["latest"]
        if selected is None:
            raise SlipwayError(f"context {params['context']} has no release to show the audit events of")
        result["audit"] = audit_events(params["audit_log"], selected)
    return result


def main():
    argument_spec = dict(
        KUBE_CONNECTION_SPEC,
        context=dict(type="str", required=True),
        revision=dict(type="int"),
        history=dict(type="int", default=10),
        journal_namespace=dict(type="str", default="slipway-system"),
        audit_log=dict(type="path"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if IMPORT_ERROR:
        module.fail_json(msg="slipway.platform.release_info could not load its libraries (urllib3 and PyYAML "
                             "are required)", exception=IMPORT_ERROR)
    try:
        with KubeClient(load_connection(module.params)) as client:
            result = read(client, module.params)
    except SlipwayError as exc:
        module.fail_json(**exc.to_result())
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
