# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The generated identities: exactly the delivered kinds, the engine's own needs, nothing that grants more."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._security.identity import (
    CLUSTER_RULES,
    JOURNAL_RULES,
    WORKLOAD_KINDS,
    deployer_objects,
    identity_objects,
    journal_deployer_objects,
    parse_resource,
    resource_name,
    viewer_objects,
    write_rules,
)

USER = {"kind": "User", "name": "slipway:deployer"}


def by_key(objects):
    return {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects}


def test_a_role_per_namespace_allows_exactly_the_delivered_kinds_plus_the_engine_reads():
    objects = by_key(deployer_objects("local", USER, {"shop": {("apps", "deployments"), ("", "services"),
                                                               ("", "configmaps")}}, "slipway-system"))
    role = objects[("Role", "shop", "slipway:deployer:local")]
    writes = [rule for rule in role["rules"] if "create" in rule["verbs"]]
    found = [(rule["apiGroups"], rule["resources"]) for rule in writes]
    assert found == [([""], ["configmaps", "services"]), (["apps"], ["deployments"])]
    assert writes[0]["verbs"] == ["get", "list", "watch", "create", "update", "patch", "delete"]
    reads = [rule for rule in role["rules"] if "create" not in rule["verbs"]]
    assert {r for rule in reads for r in rule["resources"]} == {"pods", "events", "replicasets", "services/proxy"}
    assert objects[("Role", "slipway-system", "slipway:deployer:local")]["rules"] == JOURNAL_RULES
    binding = objects[("RoleBinding", "shop", "slipway:deployer:local")]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "slipway:deployer:local"}
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                    "name": "slipway:deployer"}]
    cluster = objects[("ClusterRole", None, "slipway:deployer:local")]
    assert all(rule["verbs"] == ["get", "list", "watch"] for rule in cluster["rules"])
    assert all(o["metadata"]["labels"] == {"slipway.io/identity-of": "local"} for o in objects.values())


def test_a_service_account_subject_keeps_its_namespace():
    sa = {"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}
    binding = deployer_objects("ci", sa, {"app": {("", "services")}}, "slipway-system")[1]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}]


@pytest.mark.parametrize("resources, message", [
    ({("rbac.authorization.k8s.io", "rolebindings")}, r"may not write access rules \(RBAC\)"),
    ({("admissionregistration.k8s.io", "validatingadmissionpolicies")}, "admission policies"),
])
def test_kinds_that_would_grant_more_are_refused(resources, message):
    with pytest.raises(SlipwayError, match=message):
        deployer_objects("local", USER, {"shop": resources}, "slipway-system")


@pytest.mark.parametrize("subject", [None, {"kind": "Robot", "name": "x"}, {"kind": "User"},
                                     {"kind": "ServiceAccount", "name": "x"}])
def test_a_malformed_subject_is_refused(subject):
    with pytest.raises(SlipwayError, match="subject"):
        deployer_objects("local", subject, {"shop": {("", "services")}}, "slipway-system")


def test_systems_in_the_journal_namespace_or_none_at_all_are_refused():
    with pytest.raises(SlipwayError, match="journal's namespace"):
        deployer_objects("local", USER, {"slipway-system": {("", "services")}}, "slipway-system")
    with pytest.raises(SlipwayError, match="deliver nothing"):
        deployer_objects("local", USER, {}, "slipway-system")


def test_viewers_read_the_systems_namespaces_but_never_the_journal():
    objects = identity_objects("local", USER, {"shop": {("", "services")}}, "slipway-system", ["developers"])
    viewers = [o for o in objects if o["metadata"]["name"] == "slipway:viewer:local"]
    assert [(o["metadata"]["namespace"], o["roleRef"]["name"]) for o in viewers] == [("shop", "view")]
    assert viewers[0]["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                       "name": "developers"}]
    assert viewer_objects("local", [], ["shop"]) == []


def test_a_deployer_whose_namespaces_come_later_has_only_the_cluster_reads_and_its_journal():
    objects = by_key(journal_deployer_objects("showrooms", USER, "slipway-showrooms"))
    assert sorted(objects) == [("ClusterRole", None, "slipway:deployer:showrooms"),
                               ("ClusterRoleBinding", None, "slipway:deployer:showrooms"),
                               ("Role", "slipway-showrooms", "slipway:deployer:showrooms"),
                               ("RoleBinding", "slipway-showrooms", "slipway:deployer:showrooms")]
    assert objects[("ClusterRole", None, "slipway:deployer:showrooms")]["rules"] == CLUSTER_RULES
    assert objects[("Role", "slipway-showrooms", "slipway:deployer:showrooms")]["rules"] == JOURNAL_RULES


@pytest.mark.parametrize(("name", "resource"), [("configmaps", ("", "configmaps")),
                                                ("deployments.apps", ("apps", "deployments")),
                                                ("httproutes.gateway.networking.k8s.io",
                                                 ("gateway.networking.k8s.io", "httproutes"))])
def test_resource_names_read_back_as_they_are_written(name, resource):
    assert parse_resource(name) == resource
    assert resource_name(*resource) == name


def test_the_usual_workload_kinds_are_one_list_wherever_a_deployer_is_made_before_its_systems_are_known():
    root = Path(__file__).resolve().parents[5]
    defaults = yaml.safe_load((root / "roles" / "cluster_bootstrap" / "defaults" / "main.yml").read_text())
    assert defaults["slipway_cluster_bootstrap_deployer_kinds"] == list(WORKLOAD_KINDS)
    showroom = yaml.safe_load(importlib.import_module(
        "ansible_collections.slipway.platform.plugins.modules.showroom").DOCUMENTATION)
    assert showroom["options"]["deployer_kinds"]["default"] == list(WORKLOAD_KINDS)
    assert write_rules({parse_resource(kind) for kind in WORKLOAD_KINDS})  # none that a deployer may not hold
