# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: deployer_rbac
short_description: A context's least-privilege deployer from the kinds it may write per namespace
version_added: 0.1.0
author: Slipway engineers (@slipway)
description:
  - Returns the access rules M(slipway.platform.deployer_identity) generates (the same code), from kinds declared by
    name instead of read from the systems' manifests - for a cluster being provisioned, before any system is known.
  - A C(Role) and C(RoleBinding) C(slipway:deployer:<context>) in each namespace allowing exactly the given kinds
    plus what the delivery engine reads (pods, ReplicaSets, Events, C(services/proxy)); the journal's records,
    snapshots and lock in O(journal_namespace); cluster-wide only reads of namespaces and CRDs. All labelled
    C(slipway.io/identity-of=<context>).
  - Kinds that would let the deployer grant itself more (RBAC, admission, certificates), a namespace that is the
    journal's, or a malformed subject fail with an error naming this filter.
positional: context, subject, journal_namespace
options:
  _input:
    description: >-
      Per namespace, the kinds the deployer may write there, as C(plural.group) (C(plural) for the core group), for
      example C({"shop": ["deployments.apps", "services", "configmaps"]}).
    type: dict
    required: true
  context:
    description: The delivery context; it names and labels the objects.
    type: str
    required: true
  subject:
    description: The deployer as an RBAC subject - C(kind) (User, Group or ServiceAccount), C(name) (and C(namespace)).
    type: dict
    required: true
  journal_namespace:
    description: The namespace of the context's journal and lock.
    type: str
    default: slipway-system
seealso:
  - module: slipway.platform.deployer_identity
"""

EXAMPLES = r"""
- name: The deployer's access rules, to apply with an admin's credentials
  ansible.builtin.set_fact:
    deployer_rbac: >-
      {{ {'shop': ['deployments.apps', 'services', 'configmaps']}
         | slipway.platform.deployer_rbac(context='production', subject={'kind': 'User', 'name': 'slipway:deployer'}) }}
"""

RETURN = r"""
_value:
  description: The ClusterRole, ClusterRoleBinding, Roles and RoleBindings, as Kubernetes objects.
  type: list
  elements: dict
"""

from ansible_collections.slipway.platform.plugins.module_utils._security.identity import (  # noqa: E402
    declared_deployer_objects,
)
from ansible_collections.slipway.platform.plugins.plugin_utils._filter import as_filter  # noqa: E402


def deployer_rbac(kinds_by_namespace, context, subject, journal_namespace="slipway-system"):
    return declared_deployer_objects(context, subject, kinds_by_namespace, journal_namespace)


class FilterModule:
    def filters(self):
        return as_filter("deployer_rbac", deployer_rbac)
