"""Talking to the stack's API server (and the controllers' health ports) as one of the stack's identities."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from stacklib.config import BIN, KUBECONFIGS, PKI, PORTS
from stacklib.proc import run


def kubectl(*args: str, identity: str = "admin", check: bool = True, stdin: bytes | None = None,
            log: Path | None = None) -> subprocess.CompletedProcess:
    binary = BIN / "kubectl"
    if not check and not binary.exists():
        # A status probe on a fresh state folder (kubectl not built yet) while something else holds a stack port:
        # "not up", not a traceback that stops `up` before it starts.
        return subprocess.CompletedProcess([str(binary), *args], 127, b"", f"{binary} is not built yet".encode())
    return run([str(binary), f"--kubeconfig={KUBECONFIGS / f'{identity}.kubeconfig'}", *args],
               check=check, stdin=stdin, log=log)


def grant_cluster_role(user: str, rules: list[dict], log: Path) -> None:
    """A ClusterRole named after the stack's ``user`` with ``rules``, bound to that user (applied server-side)."""
    rbac = "rbac.authorization.k8s.io"
    role = {"apiVersion": f"{rbac}/v1", "kind": "ClusterRole", "metadata": {"name": user}, "rules": rules}
    binding = {"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": user},
               "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": user},
               "subjects": [{"apiGroup": rbac, "kind": "User", "name": user}]}
    kubectl("apply", "--server-side", "--field-manager=slipway-stack", "-f", "-", log=log,
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [role, binding]}).encode())


def tls_context(identity: str) -> ssl.SSLContext:
    """Trust the stack's CA only, and present ``identity``'s client certificate."""
    context = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
    context.load_cert_chain(str(PKI / f"{identity}.crt"), str(PKI / f"{identity}.key"))
    return context


def https_ok(port: int, path: str, identity: str = "admin") -> bool:
    context = tls_context(identity)
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", context=context, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def https_json(port: int, path: str, identity: str = "admin", accept: str = "application/json") -> dict | None:
    context = tls_context(identity)
    request = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as resp:  # noqa: S310 - https, local
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ssl.SSLError, ValueError):
        return None


def apiserver_ready() -> bool:
    return https_ok(PORTS["apiserver"], "/readyz")


def nodes_ready() -> int:
    result = kubectl("get", "nodes", "-o", "json", check=False)
    if result.returncode != 0:
        return 0
    count = 0
    for node in json.loads(result.stdout).get("items", []):
        for condition in node.get("status", {}).get("conditions", []):
            if condition.get("type") == "Ready" and condition.get("status") == "True":
                count += 1
    return count
