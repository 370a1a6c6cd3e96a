"""Stage: the standard-channel Gateway API CRDs, so Slipway's canary can route by weight and header.

The controller that implements them is the stack's gateway on the real node (``gateway.py``, docs/gateway.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from stacklib.config import GATEWAY_API_MODULE, GATEWAY_API_VERSION, HACK, LOGS, PKI, PORTS, STATE
from stacklib.gobuild import go_module_dir, require_go
from stacklib.kubeapi import https_json, kubectl
from stacklib.proc import step

GATEWAY_API_STAMP = STATE / "gateway-api" / "crds.json"  # {"version": ..., "crds": [names]} after an install
# The pinned module's standard CRDs in one file, as the project's releases publish them (standard-install.yaml): what
# the stack applies and what the lab's artifact source serves to provisioned clusters (roles/cluster_gateway).
GATEWAY_API_BUNDLE = STATE / "gateway-api" / f"standard-install-{GATEWAY_API_VERSION}.yaml"
# The gateway's RBAC and class, shared with roles/cluster_gateway (one source for the stack and provisioned clusters).
GATEWAY_SHARED = json.loads((HACK.parent / "roles" / "cluster_gateway" / "files" / "gateway.json").read_text())
# Namespace admins (the deployer is one in its namespaces) may edit routes: aggregated into admin and edit.
GATEWAY_API_ROLE = GATEWAY_SHARED["routes_role"]


def gateway_api_installed() -> bool:
    """Every CRD of the last install is there at the pinned bundle version, and HTTPRoute is served.

    Two small reads (CRD metadata only, ~16 KB instead of ~750 KB of schemas, and one discovery document), so a
    warm ``up`` stays fast; an HTTPRoute that is served implies its CRD is Established.
    """
    if not GATEWAY_API_STAMP.exists() or not (PKI / "ca.crt").exists():
        return False
    stamp = json.loads(GATEWAY_API_STAMP.read_text())
    if stamp.get("version") != GATEWAY_API_VERSION or not stamp.get("crds"):
        return False
    found = https_json(PORTS["apiserver"], "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                       accept="application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
    versions = {item["metadata"]["name"]: (item["metadata"].get("annotations") or {}).get(
        "gateway.networking.k8s.io/bundle-version") for item in (found or {}).get("items", [])}
    if any(versions.get(name) != GATEWAY_API_VERSION for name in stamp["crds"]):
        return False
    served = https_json(PORTS["apiserver"], "/apis/gateway.networking.k8s.io/v1") or {}
    return any(r.get("name") == "httproutes" for r in served.get("resources", []))


def gateway_api_bundle() -> Path:
    """The standard CRDs of the module hack/gateway-api/go.mod pins, joined into one YAML stream (written once)."""
    if GATEWAY_API_BUNDLE.exists():
        return GATEWAY_API_BUNDLE
    require_go()
    manifests = sorted((go_module_dir(GATEWAY_API_MODULE, "sigs.k8s.io/gateway-api") / "config" / "crd"
                        / "standard").glob("*.yaml"))
    documents = [path.read_text().strip().removeprefix("---").strip() for path in manifests]
    GATEWAY_API_BUNDLE.parent.mkdir(parents=True, exist_ok=True)
    partial = GATEWAY_API_BUNDLE.with_suffix(".partial")
    partial.write_text("".join(f"---\n{document}\n" for document in documents))
    partial.rename(GATEWAY_API_BUNDLE)
    return GATEWAY_API_BUNDLE


@step(f"Gateway API {GATEWAY_API_VERSION} CRDs (standard channel)")
def ensure_gateway_api() -> str:
    if gateway_api_installed():
        return "already installed"
    log = LOGS / "gateway-api.log"
    # captured, not logged: its "-o name" lines say which CRDs to wait for
    applied = kubectl("apply", "--server-side", "--field-manager=slipway-stack", "-o", "name",
                      f"--filename={gateway_api_bundle()}").stdout.decode()
    crds = sorted(line.split("/", 1)[1] for line in applied.split()
                  if line.startswith("customresourcedefinition"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{name}" for name in crds), log=log)
    kubectl("apply", "--server-side", "--field-manager=slipway-stack", "-f", "-",
            stdin=json.dumps(GATEWAY_API_ROLE).encode(), log=log)
    GATEWAY_API_STAMP.parent.mkdir(parents=True, exist_ok=True)
    GATEWAY_API_STAMP.write_text(json.dumps({"version": GATEWAY_API_VERSION, "crds": crds}, indent=2))
    return f"{len(crds)} CRDs established"
