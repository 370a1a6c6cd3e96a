"""Stage: the cluster's bootstrap objects: the deliverable namespaces and the deployer's least-privilege RBAC."""

from __future__ import annotations

import json
import time

from stacklib.config import (
    DEPLOYER_NAMESPACES,
    DEPLOYER_USER,
    LOGS,
    SHOWROOM_DEPLOYER_USER,
    SHOWROOM_JOURNAL_NAMESPACE,
)
from stacklib.kubeapi import kubectl
from stacklib.proc import step


@step("cluster bootstrap (namespaces, deployer RBAC)")
def ensure_bootstrap() -> str:
    objects = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
               for ns in [*DEPLOYER_NAMESPACES, SHOWROOM_JOURNAL_NAMESPACE]]
    objects.append({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "slipway:deployer"},
        "rules": [
            # Discovery and namespace reads are cluster-wide; writes stay in the bound namespaces.
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
             "verbs": ["get", "list", "watch"]},
        ],
    })
    objects.append({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "slipway:deployer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "slipway:deployer"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": DEPLOYER_USER}],
    })
    for namespace in DEPLOYER_NAMESPACES:
        objects.append({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "slipway:deployer", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": DEPLOYER_USER}],
        })
    # The showroom deployer: the same cluster-wide reads, its journal namespace; each showroom's namespaces are
    # bound by playbooks/showroom.yml when it admits the showroom (docs/showrooms.md).
    showroom_deployer = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": SHOWROOM_DEPLOYER_USER}
    objects.append({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "slipway:showroom-deployer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "slipway:deployer"},
        "subjects": [showroom_deployer],
    })
    objects.append({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "slipway:showroom-deployer", "namespace": SHOWROOM_JOURNAL_NAMESPACE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
        "subjects": [showroom_deployer],
    })
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}).encode()
    for _attempt in range(2):
        # An etcd that was just restarted under a running API server times the first writes out: try again.
        if kubectl("apply", "--server-side", "--field-manager=slipway-stack", "-f", "-", stdin=body,
                   log=LOGS / "bootstrap.log", check=False).returncode == 0:
            break
        time.sleep(3)
    else:
        kubectl("apply", "--server-side", "--field-manager=slipway-stack", "-f", "-", stdin=body,
                log=LOGS / "bootstrap.log")
    return (f"deployer {DEPLOYER_USER!r} may write in {', '.join(DEPLOYER_NAMESPACES)}; "
            f"{SHOWROOM_DEPLOYER_USER!r} in {SHOWROOM_JOURNAL_NAMESPACE} and the showrooms'")
