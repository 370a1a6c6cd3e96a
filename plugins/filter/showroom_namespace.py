# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: showroom_namespace
short_description: The namespace a showroom runs a system in
version_added: 0.1.0
author: Slipway engineers (@slipway)
description:
  - Returns C(<namespace>-<showroom>), the namespace in which a showroom runs the systems that the system
    description (C(slipway.yml)) puts in O(_input), so that several showrooms run side by side.
  - When C(<namespace>-<showroom>) is longer than 63 characters it is cut to 54 and ends in C(-) and the first
    8 hex characters of its SHA-256, as M(slipway.platform.dns_label) does, so two long showroom names give two
    namespaces.
  - Both parts must already be DNS-1123 labels; make the showroom name from a branch with
    P(slipway.platform.dns_label#filter) first. Anything else fails with an error naming this filter.
  - Whether the namespace is free (not a context's own namespace) is for the playbook to check.
positional: showroom
options:
  _input:
    description: The system's namespace, as in its C(slipway.yml) (for example C(shop)).
    type: str
    required: true
  showroom:
    description: The showroom's name, a DNS-1123 label.
    type: str
    required: true
seealso:
  - plugin: slipway.platform.dns_label
    plugin_type: filter
"""

EXAMPLES = r"""
- name: The namespace of the shop in the showroom of the current branch
  ansible.builtin.debug:
    msg: "{{ 'shop' | slipway.platform.showroom_namespace('feature/checkout' | slipway.platform.dns_label) }}"
  # shop-feature-checkout-<8 hex>
"""

RETURN = r"""
_value:
  description: The namespace, a DNS-1123 label.
  type: str
  sample: shop-feature-x
"""

from ansible_collections.slipway.platform.plugins.module_utils._names import showroom_namespace  # noqa: E402
from ansible_collections.slipway.platform.plugins.plugin_utils._filter import as_filter  # noqa: E402


class FilterModule:
    def filters(self):
        return as_filter("showroom_namespace", showroom_namespace)
