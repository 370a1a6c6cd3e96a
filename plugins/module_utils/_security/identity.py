# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A context's identities, generated from its systems: the least-privilege deployer and a read-only role for people.

The deployer may write exactly the kinds its systems' manifests hold, in exactly their namespaces; besides that it gets
what the delivery engine itself reads and writes (listed below, each with why) and nothing cluster-wide but reads of
namespaces and API discovery. It cannot touch access rules (RBAC), admission objects, or Secrets outside its
namespaces. People get the built-in ``view`` role (no Secrets) in the systems' namespaces; the journal's namespace is
readable only by the deployer and admins.

Objects are labelled ``slipway.io/identity-of=<context>`` so the ones a context no longer needs (a namespace its
systems left) are found and removed.
"""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError

RBAC_API = "rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"
LABEL = "slipway.io/identity-of"
WRITE_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
READ_VERBS = ["get", "list", "watch"]
# What the engine needs in every namespace it delivers to, beyond the kinds it applies:
SYSTEM_NAMESPACE_RULES = [
    # waits: a rollout is judged from its ReplicaSets and pods, a failure explained by the pods' Events
    {"apiGroups": [""], "resources": ["pods", "events"], "verbs": READ_VERBS},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": READ_VERBS},
    # HTTP health gates go through the API server's service proxy (no route to the pods needed)
    {"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get"]},
]
# ... and in the journal's namespace: the release records (ConfigMaps), the snapshots of Secrets (Secrets), the lock.
JOURNAL_RULES = [
    {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": WRITE_VERBS},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": WRITE_VERBS},
]
CLUSTER_RULES = [
    # discovery of custom kinds and whether a namespace exists; nothing else cluster-wide
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": READ_VERBS},
    {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": READ_VERBS},
]
# Kinds no deployer may hold, whatever a system's manifests say: they would let it grant itself more.
REFUSED_GROUPS = {RBAC_GROUP: "access rules (RBAC)", "admissionregistration.k8s.io": "admission policies",
                  "certificates.k8s.io": "certificate signing"}
SUBJECT_KINDS = ("User", "Group", "ServiceAccount")
# What a deployer may write where its systems are not known yet (a showroom's namespaces; a cluster being
# provisioned, in roles/cluster_bootstrap's defaults): the kinds systems usually deliver, as plural.group.
WORKLOAD_KINDS = ("configmaps", "secrets", "services", "serviceaccounts", "persistentvolumeclaims", "deployments.apps",
                  "statefulsets.apps", "jobs.batch", "cronjobs.batch", "poddisruptionbudgets.policy",
                  "horizontalpodautoscalers.autoscaling", "networkpolicies.networking.k8s.io",
                  "httproutes.gateway.networking.k8s.io")


def role_name(context):
    return f"slipway:deployer:{context}"


def viewer_name(context):
    return f"slipway:viewer:{context}"


def check_subject(subject, what):
    """The subject as an RBAC subject; a clear error for a malformed one."""
    if not isinstance(subject, dict) or subject.get("kind") not in SUBJECT_KINDS or not subject.get("name"):
        raise SlipwayError(f"{what} must be a mapping with kind ({', '.join(SUBJECT_KINDS)}) and name, got {subject!r}")
    if subject["kind"] == "ServiceAccount":
        if not subject.get("namespace"):
            raise SlipwayError(f"{what}: a ServiceAccount subject needs its namespace")
        return {"kind": "ServiceAccount", "name": subject["name"], "namespace": subject["namespace"]}
    return {"apiGroup": RBAC_GROUP, "kind": subject["kind"], "name": subject["name"]}


def resource_name(group, plural):
    """``plural.group`` (``plural`` for the core group), the way people and ``kubectl`` name a resource."""
    return f"{plural}.{group}" if group else plural


def parse_resource(name):
    """``(group, plural)`` from ``plural.group`` (``plural`` alone: the core group)."""
    plural, _dot, group = name.partition(".")
    return group, plural


def write_rules(resources):
    """One rule per API group for ``resources`` (``{(group, plural)}``), sorted so the object is stable."""
    by_group = {}
    for group, plural in resources:
        if group in REFUSED_GROUPS:
            raise SlipwayError(f"a system delivers {plural}.{group}: a deployer may not write {REFUSED_GROUPS[group]}; "
                               f"apply such objects with an admin's credentials (playbooks/security.yml), not as a "
                               f"system")
        by_group.setdefault(group, set()).add(plural)
    return [{"apiGroups": [group], "resources": sorted(plurals), "verbs": WRITE_VERBS}
            for group, plurals in sorted(by_group.items())]


def namespace_rules(resources):
    """A deployer's rules in one of its systems' namespaces: writes of exactly ``resources`` (``{(group, plural)}``),
    and what the engine reads there."""
    return write_rules(resources) + SYSTEM_NAMESPACE_RULES


def _meta(context, name, namespace=None):
    meta = {"name": name, "labels": {LABEL: context}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _binding(context, kind, name, namespace, role_kind, role, subjects):
    return {"apiVersion": RBAC_API, "kind": kind, "metadata": _meta(context, name, namespace),
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": role_kind, "name": role}, "subjects": subjects}


def deployer_objects(context, subject, resources_by_namespace, journal_namespace):
    """The deployer's ClusterRole (cluster reads), and per namespace a Role and its RoleBinding.

    ``resources_by_namespace``: ``{namespace: {(group, plural)}}``, the kinds the context's systems deliver there.
    """
    if not resources_by_namespace:
        raise SlipwayError("the context's systems deliver nothing: there is no deployer to generate (check "
                           "slipway_systems and the systems' manifests)")
    if journal_namespace in resources_by_namespace:
        raise SlipwayError(f"a system delivers into {journal_namespace}, the journal's namespace: keep systems out of "
                           f"it, so that only the deployer and admins can read the release records")
    namespaced = dict(sorted((ns, namespace_rules(resources)) for ns, resources in resources_by_namespace.items()))
    return _deployer(context, subject, namespaced, journal_namespace)


def declared_deployer_objects(context, subject, kinds_by_namespace, journal_namespace):
    """:func:`deployer_objects` from kinds declared by name (``{namespace: ["deployments.apps", ...]}``), where the
    systems are not at hand to read them from (a cluster being provisioned, the local stack). No namespace: the
    deployer of its journal only, until namespaces are given."""
    if not isinstance(kinds_by_namespace, dict) or not all(
            isinstance(names, list) and all(isinstance(name, str) and name for name in names)
            for names in kinds_by_namespace.values()):
        raise SlipwayError(f"the deployer's kinds must map each namespace to a list of plural.group names "
                           f"(deployments.apps, configmaps), got {kinds_by_namespace!r}")
    if not kinds_by_namespace:
        return journal_deployer_objects(context, subject, journal_namespace)
    resources = {namespace: {parse_resource(name) for name in names}
                 for namespace, names in kinds_by_namespace.items()}
    return deployer_objects(context, subject, resources, journal_namespace)


def journal_deployer_objects(context, subject, journal_namespace):
    """A deployer whose systems' namespaces are granted elsewhere, as each appears (the showrooms', when a showroom
    is admitted): the cluster-wide reads and its journal, nothing else."""
    return _deployer(context, subject, {}, journal_namespace)


def _deployer(context, subject, namespaced, journal_namespace):
    subjects = [check_subject(subject, "the deployer subject")]
    name = role_name(context)
    objects = [{"apiVersion": RBAC_API, "kind": "ClusterRole", "metadata": _meta(context, name),
                "rules": CLUSTER_RULES},
               _binding(context, "ClusterRoleBinding", name, None, "ClusterRole", name, subjects)]
    for namespace, rules in {**namespaced, journal_namespace: JOURNAL_RULES}.items():
        objects.append({"apiVersion": RBAC_API, "kind": "Role", "metadata": _meta(context, name, namespace),
                        "rules": rules})
        objects.append(_binding(context, "RoleBinding", name, namespace, "Role", name, subjects))
    return objects


def viewer_objects(context, groups, namespaces):
    """Read-only access for people (``groups``, e.g. an SSO group claim) to the systems' namespaces: the built-in
    ``view`` role, which leaves Secrets out. Never the journal's namespace."""
    if not groups:
        return []
    subjects = [check_subject({"kind": "Group", "name": group}, "a viewer group") for group in groups]
    return [_binding(context, "RoleBinding", viewer_name(context), namespace, "ClusterRole", "view", subjects)
            for namespace in sorted(namespaces)]


def identity_objects(context, subject, resources_by_namespace, journal_namespace, viewer_groups=()):
    return (deployer_objects(context, subject, resources_by_namespace, journal_namespace)
            + viewer_objects(context, list(viewer_groups), resources_by_namespace))
