# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turning a context's admission baseline on: the policy, its binding, the namespaces' labels (admin credentials).

Applied server-side under the field manager ``slipway-security``, which owns only what it sets: the namespaces'
other labels and fields stay their owners'. Check mode sends the same applies as server-side dry-runs and lists the
running pods the policy would reject, since admission judges only what is created or updated after it is on.
"""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._kube.client import api_path
from ansible_collections.slipway.platform.plugins.module_utils._kube.normalize import subset_mismatches
from ansible_collections.slipway.platform.plugins.module_utils._security.admission import (
    FIELD_MANAGER,
    admission_objects,
    namespace_labels,
    namespace_levels,
    policy_name,
    rejections,
)

ADMISSION_API = "admissionregistration.k8s.io/v1"
# kind -> (group/version, plural): the built-in kinds the baseline writes, addressed without discovery
RESOURCES = {"ValidatingAdmissionPolicy": (ADMISSION_API, "validatingadmissionpolicies"),
             "ValidatingAdmissionPolicyBinding": (ADMISSION_API, "validatingadmissionpolicybindings"),
             "Namespace": ("v1", "namespaces")}


def desired_objects(context, registry, descriptions):
    """``(objects, levels)``: what the baseline applies, in order (the policy before the labels that switch it on)."""
    levels = namespace_levels(descriptions)
    namespaces = [{"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": namespace, "labels": namespace_labels(context, entry["level"])}}
                  for namespace, entry in sorted(levels.items())]
    return admission_objects(context, registry) + namespaces, levels


def _path(obj):
    return api_path(*RESOURCES[obj["kind"]], name=obj["metadata"]["name"])


def would_reject(client, context, registry, namespaces):
    """``[{pod, reasons}]``: running pods of ``namespaces`` that the policy would reject if they were created now."""
    name = policy_name(context)
    found = []
    for namespace in sorted(namespaces):
        pods = client.get(api_path("v1", "pods", namespace), ok_missing=True) or {}
        for pod in pods.get("items") or []:
            pod.setdefault("kind", "Pod")
            reasons = rejections(pod, registry, name)
            if reasons:
                found.append({"pod": f"{namespace}/{pod['metadata']['name']}", "reasons": reasons})
    return found


def apply_baseline(client, context, registry, descriptions, check_mode):
    """Apply (or dry-run) the baseline; the result says what changed and what the policy would reject."""
    objects, levels = desired_objects(context, registry, descriptions)
    changed = []
    for obj in objects:
        live = client.get(_path(obj), ok_missing=True)
        want = {"metadata": {"labels": obj["metadata"]["labels"]}, "spec": obj.get("spec")}
        if live is not None and not subset_mismatches({k: v for k, v in want.items() if v is not None}, live):
            continue
        query = {"fieldManager": FIELD_MANAGER, "force": "true"}
        if check_mode:
            query["dryRun"] = "All"
        client.request("PATCH", _path(obj), body=obj, query=query, content_type="application/apply-patch+yaml")
        changed.append(f"{obj['kind']} {obj['metadata']['name']}")
    return {"changed": bool(changed), "applied": changed, "policy": policy_name(context),
            "namespaces": levels, "would_reject": would_reject(client, context, registry, levels)}
