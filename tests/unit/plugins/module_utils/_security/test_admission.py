# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The admission baseline: the policy's shape, Pod Security levels, and the Python twin of its CEL rules."""

from __future__ import annotations

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._security.admission import (
    admission_objects,
    namespace_labels,
    namespace_levels,
    rejections,
)

REGISTRY = "127.0.0.1:5001"
DIGEST = "@sha256:" + "a" * 64


def pod(*containers, **spec):
    return {"kind": "Pod", "metadata": {"name": "p"},
            "spec": dict(spec, containers=[dict({"name": f"c{i}"}, **c) for i, c in enumerate(containers)])}


def test_policy_and_binding_name_the_context_and_deny_in_its_labelled_namespaces():
    policy, binding = admission_objects("local", REGISTRY)
    assert policy["kind"] == "ValidatingAdmissionPolicy"
    assert policy["metadata"]["name"] == binding["metadata"]["name"] == "slipway-admission-local"
    assert policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert policy["spec"]["failurePolicy"] == "Fail"
    resources = {r for rule in policy["spec"]["matchConstraints"]["resourceRules"] for r in rule["resources"]}
    assert {"pods", "pods/ephemeralcontainers", "deployments", "statefulsets", "daemonsets", "jobs",
            "cronjobs"} <= resources
    assert binding["spec"] == {"policyName": "slipway-admission-local", "validationActions": ["Deny"],
                               "matchResources": {"namespaceSelector": {"matchLabels": {
                                   "slipway.io/admission": "local"}}}}
    expressions = " ".join(v["expression"] for v in policy["spec"]["validations"])
    assert 'startsWith("127.0.0.1:5001/")' in expressions
    assert "@sha256:" in expressions and "privileged" in expressions and "hostPID" in expressions
    for validation in policy["spec"]["validations"]:  # every message names the policy
        assert "slipway-admission-local" in (validation.get("message") or validation["messageExpression"])


def test_a_registry_that_is_a_prefix_of_another_does_not_admit_it():
    assert rejections(pod({"image": "127.0.0.1:50011/x" + DIGEST}), REGISTRY)


@pytest.mark.parametrize("subject, reason", [
    (pod({"image": f"{REGISTRY}/shop/backend{DIGEST}"}), None),
    (pod({"image": f"{REGISTRY}/shop/backend:1.0"}), "referenced by digest"),
    (pod({"image": f"docker.io/library/busybox{DIGEST}"}), "must come from 127.0.0.1:5001/"),
    (pod({"image": f"{REGISTRY}/x{DIGEST}", "securityContext": {"privileged": True}}), "privileged containers"),
    (pod({"image": f"{REGISTRY}/x{DIGEST}", "securityContext": {"privileged": False}}), None),
    (pod({"image": f"{REGISTRY}/x{DIGEST}"}, hostNetwork=True), "hostNetwork"),
    (pod({"image": f"{REGISTRY}/x{DIGEST}"}, hostPID=True), "hostNetwork, hostPID"),
    (dict(pod({"image": f"{REGISTRY}/x{DIGEST}"}),
          spec={"containers": [{"name": "a", "image": f"{REGISTRY}/x{DIGEST}"}],
                "initContainers": [{"name": "i", "image": "busybox"}]}), "must come from"),
    ({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "nginx"}]}}}},
     "must come from"),
    ({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "a", "image": f"{REGISTRY}/x:latest"}]}}}}}}, "referenced by digest"),
])
def test_rejections_mirror_the_policy(subject, reason):
    found = rejections(subject, REGISTRY, "slipway-admission-local")
    if reason is None:
        assert found == []
    else:
        assert any(reason in line and line.startswith("slipway-admission-local: ") for line in found), found


def test_namespaces_are_restricted_unless_a_system_says_why_baseline():
    levels = namespace_levels({
        "backend": {"namespace": "shop"},
        "legacy": {"namespace": "old", "security": {"pod_security": "baseline", "reason": "runs as root until v2"}},
        "other": {"namespace": "old"},
    })
    assert levels == {"shop": {"level": "restricted", "reasons": []},
                      "old": {"level": "baseline", "reasons": ["legacy: runs as root until v2"]}}
    labels = namespace_labels("local", "baseline")
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["slipway.io/admission"] == "local"


@pytest.mark.parametrize("security, message", [
    ({"pod_security": "baseline"}, "needs a reason"),
    ({"pod_security": "privileged", "reason": "x"}, "privileged is never given"),
    ({"level": "baseline"}, "must be a mapping with pod_security"),
])
def test_bad_security_declarations_say_how_to_fix(security, message):
    with pytest.raises(SlipwayError, match=message):
        namespace_levels({"a": {"namespace": "x", "security": security}})


def test_the_context_must_be_a_label():
    with pytest.raises(SlipwayError, match="DNS-1123"):
        admission_objects("Prod_1", REGISTRY)
