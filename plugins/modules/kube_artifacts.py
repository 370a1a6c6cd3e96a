#!/usr/bin/python
# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kube_artifacts
short_description: Install binaries from the artifact source on a host, each verified by its sha256 first
version_added: 0.1.0
description:
  - Every binary in O(names) is downloaded by the host from its URL in O(artifacts) into O(staging_dir), under the
    name C(<name>-<sha256>), and its sha256 is checked while it arrives. Only when every download matched is any of
    them installed, as a link C(O(install_dir)/<name>) to the verified file, replaced in one rename. A checksum that
    does not match therefore fails the task before anything is installed, and names what the URL served.
  - A staged file exists only after a matching download, so a second run neither downloads nor hashes anything and
    reports no change. A new sha256 in the inventory is a new staged file and a changed link, which the caller
    turns into a restart (RV(installed), or C(notify) on the task).
  - The roles that install cluster binaries (etcd, control_plane, kubelet, kube_proxy, network_policy,
    cluster_gateway) call it once each; the P(slipway.platform.kube_artifacts#role) role is the same for a play.
    One task instead of six per role is one round trip to the host instead of six on every re-run.
author: Slipway engineers (@slipway)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reports what would be downloaded and linked; downloads and writes nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in
      diff mode.
    support: full
    details: The links before and after (their targets name the sha256).
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
    support: full
options:
  artifacts:
    description:
      - The artifact source, as air-gapped sites keep it (kubespray's offline "files repo"), usually the
        inventory's C(slipway_artifacts).
      - "C({name: {url: ..., sha256: ...}}); the URL is fetched by the target host."
    type: dict
    required: true
  names:
    description: Keys of O(artifacts) to install on this host.
    type: list
    elements: str
    required: true
  staging_dir:
    description: Where verified downloads wait before they are installed (mode 0755, like its parent).
    type: path
    default: /var/cache/slipway/artifacts
  install_dir:
    description: Where the binaries are installed, as links to the verified files (mode 0755).
    type: path
    default: /usr/local/bin
  timeout:
    description: Seconds to wait for each URL to answer.
    type: int
    default: 60
  validate_certs:
    description: Verify the artifact source's TLS certificate (HTTPS URLs).
    type: bool
    default: true
notes:
  - Runs on the target host; it needs Python's standard library only.
seealso:
  - module: ansible.builtin.get_url
    description: What the role used before, one task per step.
"""

EXAMPLES = r"""
- name: Install the kubelet from the inventory's artifact source; a new one restarts it
  slipway.platform.kube_artifacts:
    artifacts: "{{ slipway_artifacts }}"
    names: [kubelet]
  notify: Restart kubelet

- name: Install the control plane's binaries
  slipway.platform.kube_artifacts:
    artifacts: "{{ slipway_artifacts }}"
    names: [kube-apiserver, kube-controller-manager, kube-scheduler, kubectl]
  register: control_plane_binaries
"""

RETURN = r"""
installed:
  description: The names whose link was (or in check mode would be) replaced - new binaries the caller restarts
    services for.
  returned: always
  type: list
  elements: str
  sample: [kubelet]
downloaded:
  description: The names that were (or would be) downloaded and verified.
  returned: always
  type: list
  elements: str
  sample: [kubelet]
failed_names:
  description: The names whose download failed or did not match its sha256 (nothing was installed then).
  returned: failure
  type: list
  elements: str
  sample: [kubelet]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.urls import open_url  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._provision.artifacts import install  # noqa: E402

ARGUMENT_SPEC = dict(
    artifacts=dict(type="dict", required=True),
    names=dict(type="list", elements="str", required=True),
    staging_dir=dict(type="path", default="/var/cache/slipway/artifacts"),
    install_dir=dict(type="path", default="/usr/local/bin"),
    timeout=dict(type="int", default=60),
    validate_certs=dict(type="bool", default=True),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params

    def fetch(url, timeout):
        return open_url(url, timeout=timeout, validate_certs=params["validate_certs"], follow_redirects="safe")

    try:
        result = install(params["artifacts"], params["names"], params["staging_dir"], params["install_dir"], fetch,
                         timeout=params["timeout"], check_mode=module.check_mode)
    except SlipwayError as exc:
        failure = exc.to_result()
        failure["failed_names"] = failure.pop("failed", None) or failure.pop("unusable", None) or []
        module.fail_json(**failure)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
