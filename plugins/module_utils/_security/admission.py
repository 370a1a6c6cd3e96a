# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Admission baseline of a context: a ValidatingAdmissionPolicy (CEL, in the API server, no webhook) and Pod Security.

In every namespace labelled ``slipway.io/admission=<context>`` the policy ``slipway-admission-<context>`` rejects a
Pod, or a workload's pod template, that runs an image not from the context's registry or not referenced by digest, a
privileged container, or host namespaces (hostNetwork, hostPID, hostIPC). The namespaces of the context's systems get
that label and the Pod Security labels: ``restricted`` enforced, or ``baseline`` where a system's ``slipway.yml``
says why (``security: {pod_security: baseline, reason: ...}``); ``warn`` and ``audit`` stay ``restricted`` so the
gap keeps showing.

:func:`rejections` says in Python what the CEL says, so that check mode can list the running pods the policy would
reject before it is turned on (the policy, like every admission check, judges only new and updated objects).
"""

from __future__ import annotations

import json

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._system import DNS_LABEL

ADMISSION_LABEL = "slipway.io/admission"
POD_SECURITY = "pod-security.kubernetes.io"
LEVELS = ("restricted", "baseline")
FIELD_MANAGER = "slipway-security"
WORKLOADS = {  # resource -> API group; CEL finds the pod spec by kind
    "pods": "", "replicationcontrollers": "", "deployments": "apps", "statefulsets": "apps", "daemonsets": "apps",
    "replicasets": "apps", "jobs": "batch", "cronjobs": "batch",
}


def policy_name(context):
    if not isinstance(context, str) or not DNS_LABEL.match(context):
        raise SlipwayError(f"context {context!r} must be a DNS-1123 label to name its admission policy")
    return f"slipway-admission-{context}"


def _cel_string(text):
    return json.dumps(text)  # a JSON string literal is a valid CEL string literal


def admission_objects(context, registry):
    """The ValidatingAdmissionPolicy and its binding (Deny) for ``context``, whose images come from ``registry``."""
    if not isinstance(registry, str) or not registry.strip("/"):
        raise SlipwayError("registry (slipway_registry) is required: the policy admits only its images")
    name = policy_name(context)
    prefix = _cel_string(registry.rstrip("/") + "/")
    groups = sorted(set(WORKLOADS.values()))
    rules = [{"apiGroups": [group], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
              "resources": sorted(r for r, g in WORKLOADS.items() if g == group)
              + (["pods/ephemeralcontainers"] if group == "" else [])} for group in groups]
    spec = ("object.kind == 'Pod' ? object.spec : object.kind == 'CronJob' ? "
            "object.spec.jobTemplate.spec.template.spec : object.spec.template.spec")
    containers = ("variables.spec.containers"
                  " + (has(variables.spec.initContainers) ? variables.spec.initContainers : [])"
                  " + (has(variables.spec.ephemeralContainers) ? variables.spec.ephemeralContainers : [])")
    validations = [
        {"expression": f"variables.containers.all(c, c.image.startsWith({prefix}))",
         "messageExpression": f"'{name}: images must come from ' + {prefix} + ': ' + "
                              f"variables.containers.filter(c, !c.image.startsWith({prefix})).map(c, c.image)"
                              ".join(', ')",
         "reason": "Forbidden"},
        {"expression": "variables.containers.all(c, c.image.contains('@sha256:'))",
         "messageExpression": f"'{name}: images must be referenced by digest (@sha256:...), not by tag: ' + "
                              "variables.containers.filter(c, !c.image.contains('@sha256:')).map(c, c.image)"
                              ".join(', ')",
         "reason": "Forbidden"},
        {"expression": "variables.containers.all(c, !has(c.securityContext) || !has(c.securityContext.privileged)"
                       " || !c.securityContext.privileged)",
         "messageExpression": f"'{name}: privileged containers are not allowed: ' + variables.containers.filter(c, "
                              "has(c.securityContext) && has(c.securityContext.privileged) && "
                              "c.securityContext.privileged).map(c, c.name).join(', ')",
         "reason": "Forbidden"},
        {"expression": " && ".join(f"!(has(variables.spec.{f}) && variables.spec.{f})"
                                   for f in ("hostNetwork", "hostPID", "hostIPC")),
         "message": f"{name}: hostNetwork, hostPID and hostIPC are not allowed",
         "reason": "Forbidden"},
    ]
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "slipway", ADMISSION_LABEL: context}},
        "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": rules},
                 "variables": [{"name": "spec", "expression": spec}, {"name": "containers", "expression": containers}],
                 "validations": validations},
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "slipway", ADMISSION_LABEL: context}},
        "spec": {"policyName": name, "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": {"matchLabels": {ADMISSION_LABEL: context}}}},
    }
    return [policy, binding]


def pod_security_level(name, description):
    """``(level, reason)`` a system asks for its namespace; SlipwayError says how to fix a bad ``security:``."""
    raw = description.get("security")
    if raw is None:
        return "restricted", None
    where = f"system {name}: security"
    if not isinstance(raw, dict) or set(raw) - {"pod_security", "reason"}:
        raise SlipwayError(f"{where} must be a mapping with pod_security (restricted or baseline) and reason")
    level = raw.get("pod_security", "restricted")
    if level not in LEVELS:
        raise SlipwayError(f"{where}.pod_security is {level!r}; use restricted, or baseline with a reason "
                           "(privileged is never given to a system)")
    reason = raw.get("reason")
    if level == "baseline" and not (isinstance(reason, str) and reason.strip()):
        raise SlipwayError(f"{where}: pod_security baseline needs a reason (why restricted cannot do), for review")
    return level, reason


def namespace_levels(descriptions):
    """``{namespace: {level, reasons}}`` over the systems: a namespace is baseline when one of its systems says why."""
    found = {}
    for name, description in sorted(descriptions.items()):
        namespace = description.get("namespace")
        if not isinstance(namespace, str) or not DNS_LABEL.match(namespace):
            raise SlipwayError(f"system {name}: namespace {namespace!r} must be a DNS-1123 label (in its slipway.yml)")
        level, reason = pod_security_level(name, description)
        entry = found.setdefault(namespace, {"level": "restricted", "reasons": []})
        if level == "baseline":
            entry["level"] = "baseline"
            entry["reasons"].append(f"{name}: {reason}")
    return found


def namespace_labels(context, level):
    return {ADMISSION_LABEL: context,
            f"{POD_SECURITY}/enforce": level, f"{POD_SECURITY}/enforce-version": "latest",
            f"{POD_SECURITY}/warn": "restricted", f"{POD_SECURITY}/warn-version": "latest",
            f"{POD_SECURITY}/audit": "restricted", f"{POD_SECURITY}/audit-version": "latest"}


def _pod_spec(obj):
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    return ((spec.get("template") or {}).get("spec") or {})


def rejections(obj, registry, name="the policy"):
    """What the admission policy would say about a Pod or workload: the same rules as the CEL, in Python."""
    spec = _pod_spec(obj)
    containers = [c for key in ("containers", "initContainers", "ephemeralContainers")
                  for c in spec.get(key) or [] if isinstance(c, dict)]
    prefix = registry.rstrip("/") + "/"
    found = []
    foreign = [c.get("image", "") for c in containers if not str(c.get("image", "")).startswith(prefix)]
    if foreign:
        found.append(f"{name}: images must come from {prefix}: {', '.join(foreign)}")
    tagged = [c.get("image", "") for c in containers if "@sha256:" not in str(c.get("image", ""))]
    if tagged:
        found.append(f"{name}: images must be referenced by digest (@sha256:...), not by tag: {', '.join(tagged)}")
    privileged = [c.get("name", "") for c in containers if (c.get("securityContext") or {}).get("privileged")]
    if privileged:
        found.append(f"{name}: privileged containers are not allowed: {', '.join(privileged)}")
    if any(spec.get(field) for field in ("hostNetwork", "hostPID", "hostIPC")):
        found.append(f"{name}: hostNetwork, hostPID and hostIPC are not allowed")
    return found
