"""cluster_bootstrap: the kubelets' bootstrap token and its RBAC, the slipway-system namespace, the least-privilege
deployer, and its credentials on the controller (readable by their owner only)."""

from __future__ import annotations

import json
import stat

from conftest import SCENARIO_STATE


def test_the_bootstrap_token_exists_and_may_only_ask_for_certificates(kubectl):
    tokens = json.loads(kubectl("-n", "kube-system", "get", "secrets", "--field-selector",
                                "type=bootstrap.kubernetes.io/token", "-o", "json"))["items"]
    assert len(tokens) == 1, [t["metadata"]["name"] for t in tokens]
    group = "system:bootstrappers:slipway:default-node-token"
    as_bootstrapper = ("--as=system:bootstrap:probe", f"--as-group={group}")
    assert kubectl("auth", "can-i", "create", "certificatesigningrequests", *as_bootstrapper) == "yes"
    assert kubectl("auth", "can-i", "get", "secrets", "-A", *as_bootstrapper, "||", "true") == "no"


def test_the_deployer_writes_in_its_namespaces_and_nothing_cluster_wide(kubectl):
    kubectl("get", "namespace", "slipway-system")
    kubectl("get", "namespace", "shop")  # converge.yml's slipway_cluster_bootstrap_deployer_namespaces
    deployer = ("--as=slipway:deployer", "--as-group=slipway:deployers")
    assert kubectl("auth", "can-i", "create", "deployments", "-n", "shop", *deployer) == "yes"
    # In slipway-system only its journal: records are ConfigMaps, the run's lock a Lease.
    assert kubectl("auth", "can-i", "create", "configmaps", "-n", "slipway-system", *deployer) == "yes"
    assert kubectl("auth", "can-i", "create", "deployments", "-n", "slipway-system", *deployer, "||", "true") == "no"
    assert kubectl("auth", "can-i", "create", "clusterroles", *deployer, "||", "true") == "no"
    assert kubectl("auth", "can-i", "create", "deployments", "-n", "kube-system", *deployer, "||", "true") == "no"


def test_the_controller_keeps_the_credentials_for_its_owner_only():
    credentials = SCENARIO_STATE / "credentials"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o700
    for name in ("deployer.kubeconfig", "admin.kubeconfig"):
        path = credentials / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
