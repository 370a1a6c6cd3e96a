# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: dns_label
short_description: Make a name people chose (a git branch) into a DNS-1123 label
version_added: 0.1.0
author: Slipway engineers (@slipway)
description:
  - Returns a label Kubernetes accepts as a namespace, Service or showroom name, and a host name part
    (lowercase letters, digits and C(-), a letter or digit at both ends, at most 63 characters).
  - A name that is already such a label is returned unchanged.
  - Any other name is lowercased, accented letters lose their accents, every run of other characters becomes one
    C(-), and C(-) at either end goes. The result then ends in C(-) and the first 8 hex characters of the
    SHA-256 of the whole original name, cut before that suffix to fit O(max_length). So two names that sanitise
    alike (C(Feature/X), C(feature_x) and C(feature-x)), or two long names that share their beginning, give two
    labels; the same name always gives the same label.
  - A name with no letter or digit, or that is not a string, fails with an error naming this filter.
positional: max_length
options:
  _input:
    description: The name, for example a git branch.
    type: str
    required: true
  max_length:
    description:
      - The longest label to return, from 10 to 63. Leave room for what is joined to it later, for example
        C(-canary).
    type: int
    default: 63
seealso:
  - plugin: slipway.platform.showroom_namespace
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Name the showroom after the branch
  ansible.builtin.set_fact:
    slipway_showroom: "{{ lookup('ansible.builtin.env', 'GIT_BRANCH') | slipway.platform.dns_label }}"
  # main -> main; feature/Checkout -> feature-checkout-<8 hex>

- name: A label short enough for a host name part with a suffix
  ansible.builtin.debug:
    msg: "{{ 'renovate/all-minor-patch-dependencies-of-the-frontend' | slipway.platform.dns_label(32) }}.showroom.local"
"""

RETURN = r"""
_value:
  description: The DNS-1123 label.
  type: str
  sample: feature-checkout-3f1c9a2b
"""

from ansible_collections.slipway.platform.plugins.module_utils._names import dns_label  # noqa: E402
from ansible_collections.slipway.platform.plugins.plugin_utils._filter import as_filter  # noqa: E402


class FilterModule:
    def filters(self):
        return as_filter("dns_label", dns_label)
