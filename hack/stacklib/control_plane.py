"""Stage: etcd and the Kubernetes control plane (kube-apiserver, kube-controller-manager, kube-scheduler)."""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request

from stacklib.config import BIN, ETCD_VERSION, KUBECONFIGS, LOGS, PKI, PORTS, ROOT, SECRETS, STATE
from stacklib.kubeapi import apiserver_ready, https_ok
from stacklib.proc import StepFailed, running_command, running_pid, start_daemon, step, wait_until
from stacklib.secrets import generated_secret, write_private
from stacklib.sso import AUTHENTICATION_CONFIG, write_authentication_config


def etcd_answers() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORTS['etcd-client']}/health", timeout=1) as resp:
            return b"true" in resp.read()
    except (urllib.error.URLError, OSError):
        return False


@step("etcd")
def ensure_etcd() -> str:
    if running_pid("etcd") and etcd_answers():
        return "already running"
    data, stamp = STATE / "etcd", STATE / "etcd.VERSION"
    if data.exists() and (not stamp.exists() or stamp.read_text().strip() != ETCD_VERSION):
        raise StepFailed(f"{data} was written by another etcd version than {ETCD_VERSION}; the local cluster's "
                         f"state cannot be carried over: run hack/stack.py down, remove {data}, then up again")
    stamp.write_text(ETCD_VERSION)
    client = f"http://127.0.0.1:{PORTS['etcd-client']}"
    peer = f"http://127.0.0.1:{PORTS['etcd-peer']}"
    start_daemon("etcd", [
        str(BIN / "etcd"), "--name", "slipway", "--data-dir", str(data),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"slipway={peer}", "--listen-metrics-urls", "http://127.0.0.1:23810",
        "--quota-backend-bytes", str(4 * 1024**3), "--snapshot-count", "10000",
    ], env={"ETCD_LOG_LEVEL": "warn"})
    wait_until(etcd_answers, "etcd", LOGS / "etcd.log", timeout=30, daemon="etcd")
    return f"started on {client}"


AUDIT_POLICY = STATE / "audit-policy.yaml"
ENCRYPTION_CONFIG = SECRETS / "encryption-config.yaml"
# The policy provisioned clusters get (roles/control_plane): Secrets as metadata only, access rules and workloads
# whole, the control plane's own writes without bodies.
SHARED_AUDIT_POLICY = ROOT / "roles" / "control_plane" / "files" / "audit-policy.yaml"
COMPONENTS = "system:kube-proxy]"


def audit_policy() -> str:
    """The shared policy, with kwok (the stack's simulated kubelets) counted among the components."""
    text = SHARED_AUDIT_POLICY.read_text()
    if COMPONENTS not in text:
        raise StepFailed(f"{SHARED_AUDIT_POLICY} no longer lists the components as '[..., {COMPONENTS}': "
                         "update audit_policy() in hack/stacklib/control_plane.py with it")
    return text.replace(COMPONENTS, "system:kube-proxy, kwok-controller]")


def encryption_config() -> dict:
    """Secrets encrypted at rest with secretbox; ``identity`` last so Secrets written before stay readable."""
    key = generated_secret("encryption-key", lambda: base64.b64encode(os.urandom(32)).decode())
    return {
        "apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
        "resources": [{"resources": ["secrets"], "providers": [
            {"secretbox": {"keys": [{"name": "stack-1", "secret": key}]}},
            {"identity": {}},
        ]}],
    }


def apiserver_command() -> list[str]:
    return [
        str(BIN / "kube-apiserver"),
        "--bind-address=127.0.0.1", f"--secure-port={PORTS['apiserver']}", "--advertise-address=127.0.0.1",
        f"--etcd-servers=http://127.0.0.1:{PORTS['etcd-client']}",
        f"--tls-cert-file={PKI / 'apiserver.crt'}", f"--tls-private-key-file={PKI / 'apiserver.key'}",
        f"--client-ca-file={PKI / 'ca.crt'}",
        f"--service-account-key-file={PKI / 'sa.pub'}", f"--service-account-signing-key-file={PKI / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc",
        "--authorization-mode=Node,RBAC", "--anonymous-auth=false",
        "--service-cluster-ip-range=10.96.0.0/16", "--endpoint-reconciler-type=none",
        "--allow-privileged=true", "--enable-priority-and-fairness=false",
        f"--audit-policy-file={AUDIT_POLICY}", f"--audit-log-path={LOGS / 'audit.log'}",
        "--audit-log-maxsize=200", "--audit-log-maxbackup=2",
        f"--encryption-provider-config={ENCRYPTION_CONFIG}",
        # People: ID tokens of the stack's dex (stacklib/sso.py), users and groups prefixed oidc:
        f"--authentication-config={AUTHENTICATION_CONFIG}",
        f"--kubelet-client-certificate={PKI / 'admin.crt'}", f"--kubelet-client-key={PKI / 'admin.key'}",
        # Reach kubelets (logs, exec, port-forward) by InternalIP: node names do not resolve here.
        "--kubelet-preferred-address-types=InternalIP,Hostname",
    ]


def apiserver_up() -> bool:
    """The API server is ready and runs with the command line this version of the stack starts it with."""
    return apiserver_ready() and running_command("kube-apiserver") == apiserver_command()


@step("kube-apiserver")
def ensure_apiserver() -> str:
    if running_pid("kube-apiserver") and apiserver_up():
        return "already running"
    restarted = "restarted with a new command line" if running_pid("kube-apiserver") else "started"
    AUDIT_POLICY.write_text(audit_policy())
    write_private(ENCRYPTION_CONFIG, json.dumps(encryption_config()))
    write_authentication_config()
    start_daemon("kube-apiserver", apiserver_command())
    wait_until(apiserver_ready, "kube-apiserver /readyz", LOGS / "kube-apiserver.log", timeout=120,
               daemon="kube-apiserver")
    return f"{restarted}; ready at https://127.0.0.1:{PORTS['apiserver']}"


def ensure_controller(component: str, extra_args: list[str]) -> str:
    """Start kube-<component> with its own client identity and a serving certificate from the stack's CA."""
    name, port = f"kube-{component}", PORTS[component]
    if running_pid(name) and https_ok(port, "/healthz"):
        return "already running"
    kubeconfig = KUBECONFIGS / f"{component}.kubeconfig"
    start_daemon(name, [
        str(BIN / name),
        f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1", f"--secure-port={port}", "--leader-elect=false",
        f"--tls-cert-file={PKI / f'{component}-serving.crt'}",
        f"--tls-private-key-file={PKI / f'{component}-serving.key'}",
        "--kube-api-qps=200", "--kube-api-burst=400",
        *extra_args,
    ])
    wait_until(lambda: https_ok(port, "/healthz"), name, LOGS / f"{name}.log", timeout=60, daemon=name)
    return "running"


@step("kube-controller-manager")
def ensure_controller_manager() -> str:
    return ensure_controller("controller-manager", [
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={PKI / 'sa.key'}", f"--root-ca-file={PKI / 'ca.crt'}",
        f"--cluster-signing-cert-file={PKI / 'ca.crt'}", f"--cluster-signing-key-file={PKI / 'ca.key'}",
        "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller",
        "--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
        # On two busy cores a node Lease renewal (kwok's or the real kubelet's) can come late; past the
        # default 50 s grace the node lifecycle controller marks every pod of the node NotReady, and kwok never
        # makes them Ready again.
        "--node-monitor-grace-period=180s",
    ])


@step("kube-scheduler")
def ensure_scheduler() -> str:
    return ensure_controller("scheduler", [])
