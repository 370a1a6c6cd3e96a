"""Stage: the stack's CA, the certificates of every component and identity, and their kubeconfigs."""

from __future__ import annotations

import json

from stacklib.config import DEPLOYER_USER, KUBECONFIGS, LOGS, PKI, PORTS, SHOWROOM_DEPLOYER_USER
from stacklib.proc import run, step


def openssl(*args: str) -> None:
    run(["openssl", *args], log=LOGS / "pki.log")


def issue_certificate(name: str, subject: str, *, server_names: list[str] | None = None,
                      client: bool = True) -> None:
    key, crt = PKI / f"{name}.key", PKI / f"{name}.crt"
    if crt.exists() and key.exists():
        return
    csr, ext = PKI / f"{name}.csr", PKI / f"{name}.ext"
    usages = ["clientAuth"] if client else []
    lines = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment"]
    if server_names:
        usages.append("serverAuth")
        alt = [f"IP:{n}" if n.replace(".", "").isdigit() else f"DNS:{n}" for n in server_names]
        lines.append("subjectAltName=" + ",".join(alt))
    lines.append("extendedKeyUsage=" + ",".join(usages))
    ext.write_text("\n".join(lines) + "\n")
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", subject)
    openssl("x509", "-req", "-in", str(csr), "-CA", str(PKI / "ca.crt"), "-CAkey", str(PKI / "ca.key"),
            "-CAcreateserial", "-days", "3650", "-out", str(crt), "-extfile", str(ext))
    key.chmod(0o600)
    csr.unlink()
    ext.unlink()


@step("certificates and kubeconfigs")
def ensure_pki() -> str:
    PKI.mkdir(parents=True, exist_ok=True)
    if not (PKI / "ca.crt").exists():
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-keyout",
                str(PKI / "ca.key"), "-out", str(PKI / "ca.crt"), "-subj", "/CN=slipway-local-ca")
    if not (PKI / "sa.key").exists():
        openssl("genrsa", "-out", str(PKI / "sa.key"), "2048")
        openssl("rsa", "-in", str(PKI / "sa.key"), "-pubout", "-out", str(PKI / "sa.pub"))
    issue_certificate("apiserver", "/CN=kube-apiserver", client=False,
                      server_names=["127.0.0.1", "localhost", "kubernetes", "kubernetes.default",
                                    "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"])
    identities = {
        "admin": "/O=system:masters/CN=slipway-admin",
        "controller-manager": "/CN=system:kube-controller-manager",
        "scheduler": "/CN=system:kube-scheduler",
        "kwok": "/O=system:masters/CN=kwok-controller",
        "deployer": f"/O=slipway:deployers/CN={DEPLOYER_USER}",
        "showroom-deployer": f"/O=slipway:showroom-deployers/CN={SHOWROOM_DEPLOYER_USER}",
    }
    for name, subject in identities.items():
        issue_certificate(name, subject)
        write_kubeconfig(name)
    for component in ("controller-manager", "scheduler"):
        # Serving certificates from the stack's CA, so health checks verify TLS instead of skipping it.
        issue_certificate(f"{component}-serving", f"/CN={component}", client=False,
                          server_names=["127.0.0.1", "localhost"])
    return f"CA at {PKI / 'ca.crt'}; kubeconfigs in {KUBECONFIGS}"


def write_kubeconfig(name: str) -> None:
    KUBECONFIGS.mkdir(parents=True, exist_ok=True)
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "slipway-local", "cluster": {
            "server": f"https://127.0.0.1:{PORTS['apiserver']}", "certificate-authority": str(PKI / "ca.crt")}}],
        "users": [{"name": name, "user": {
            "client-certificate": str(PKI / f"{name}.crt"), "client-key": str(PKI / f"{name}.key")}}],
        "contexts": [{"name": f"slipway-local-{name}", "context": {"cluster": "slipway-local", "user": name}}],
        "current-context": f"slipway-local-{name}",
    }
    path = KUBECONFIGS / f"{name}.kubeconfig"
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)
