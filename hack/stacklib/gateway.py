"""Stage: the stack's gateway, Traefik v3 as the Gateway API implementation, on the real node.

Traefik is built from the module pinned by hack/traefik/go.mod (CGO off, cached by version and build inputs in
.stack/bin), wrapped ``FROM scratch`` and pushed to the stack's registry; it runs as a Deployment in
``slipway-gateway`` on the real node with the host's network, so its listener is ``127.0.0.1:<port>`` on this
machine and it reaches pods over the node's bridge. A stack component, not a delivered system: a gateway needs
cluster-scoped objects (a GatewayClass, a ClusterRole to read routes in every namespace) that no context's deployer
may write. See docs/gateway.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import time
import urllib.error
import urllib.request

from stacklib.config import BIN, HACK, LOGS, PORTS, REGISTRY_USER, STATE
from stacklib.docker import docker, docker_host
from stacklib.gateway_api import GATEWAY_SHARED
from stacklib.gobuild import edit_copied_source, go_env, go_module_dir, require_go
from stacklib.kubeapi import kubectl
from stacklib.proc import port_open, run, step, wait_until
from stacklib.realnode.layout import NODE_LABELS, NODE_TAINT
from stacklib.realnode.up import pull_secret
from stacklib.registry import registry_password

TRAEFIK_MODULE = HACK / "traefik"
TRAEFIK_VERSION = "v3.7.13"  # keep equal to hack/traefik/go.mod
NAMESPACE = "slipway-gateway"
NAME = "slipway"  # the Gateway, its GatewayClass, the Deployment and the service account
CONTROLLER = GATEWAY_SHARED["controller"]
PORT = int(os.environ.get("SLIPWAY_GATEWAY_PORT", "18090"))  # the HTTP listener, on 127.0.0.1
PING_PORT = PORT + 1  # Traefik's ping endpoint, for the readiness probe (127.0.0.1 too)
IMAGE = f"127.0.0.1:{PORTS['registry']}/slipway/traefik:{TRAEFIK_VERSION}"
LOG = LOGS / "gateway.log"
BUILD = STATE / "build" / f"traefik-{TRAEFIK_VERSION}"

# Traefik's ACME provider imports every lego DNS provider, and its basic/digest auth middlewares a Containous fork of
# go-http-auth; a dozen of those modules are not on the module proxy. The gateway uses neither, so the build drops
# them: one import and one call edited in place, two files replaced by hack/traefik/overlay/ (refusing stubs).
SOURCE_EDITS = {
    "pkg/provider/acme/provider.go": [
        ('\t"github.com/go-acme/lego/v5/providers/dns"\n', ""),
        ("dns.NewDNSChallengeProviderByName(p.DNSChallenge.Provider)",
         'nil, fmt.Errorf("DNS challenge provider %s: not built into Slipway\'s Traefik", p.DNSChallenge.Provider)'),
    ],
}
SOURCE_OVERLAY = {
    "pkg/middlewares/auth/basic_auth.go": "overlay/basic_auth.go",
    "pkg/middlewares/auth/digest_auth.go": "overlay/digest_auth.go",
    # a module of Traefik's repository that its go.mod replaces with this folder; not in the v3 module's zip
    "pkg/config/dynamic/ext/go.mod": "dynamic-ext/go.mod",
    "pkg/config/dynamic/ext/ext.go": "dynamic-ext/ext.go",
}

# What Traefik's kubernetesGateway provider reads in every namespace and whose status it writes (the reasons are in
# the shared file, roles/cluster_gateway/files/gateway.json, which provisioned clusters apply too).
RBAC_RULES = GATEWAY_SHARED["gateway_rules"]


def build_inputs_digest() -> str:
    """The version and every file of hack/traefik: a change to the pin or an overlay rebuilds."""
    digest = hashlib.sha256(TRAEFIK_VERSION.encode())
    for path in sorted(p for p in TRAEFIK_MODULE.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(TRAEFIK_MODULE)).encode() + b"\0" + path.read_bytes())
    for relative, edits in sorted(SOURCE_EDITS.items()):
        digest.update(json.dumps([relative, edits]).encode())
    return digest.hexdigest()[:16]


def traefik_stamp() -> str:
    return f"{TRAEFIK_VERSION} {build_inputs_digest()}"


def prepare_source() -> None:
    """A writable copy of the pinned Traefik module in .stack/build, with the edits and overlay applied."""
    pristine = go_module_dir(TRAEFIK_MODULE, "github.com/traefik/traefik/v3")
    if BUILD.exists():
        shutil.rmtree(BUILD)
    shutil.copytree(pristine, BUILD, ignore=shutil.ignore_patterns("docs", "integration", "webui"))
    shutil.copytree(pristine / "webui" / "static", BUILD / "webui" / "static")
    shutil.copy2(pristine / "webui" / "embed.go", BUILD / "webui" / "embed.go")
    edit_copied_source(BUILD, SOURCE_EDITS, f"Traefik {TRAEFIK_VERSION}", f"SOURCE_EDITS of {__file__}")
    for relative, ours in SOURCE_OVERLAY.items():
        (BUILD / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TRAEFIK_MODULE / ours, BUILD / relative)


@step(f"gateway: traefik {TRAEFIK_VERSION} binary")
def ensure_traefik_binary() -> str:
    stamp = BIN / "traefik.VERSION"
    if (BIN / "traefik").exists() and stamp.exists() and stamp.read_text().strip() == traefik_stamp():
        return "cached"
    require_go()
    prepare_source()
    begin = time.monotonic()
    ldflags = f"-s -w -X github.com/traefik/traefik/v3/pkg/version.Version={TRAEFIK_VERSION.lstrip('v')}"
    run(["go", "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(BIN / "traefik"), "./cmd/traefik"],
        log=LOGS / "go-build.log", cwd=BUILD, env=go_env())
    stamp.write_text(traefik_stamp())
    shutil.rmtree(BUILD)
    return f"built in {time.monotonic() - begin:.0f}s"


def registry_has(reference: str) -> str | None:
    """The registry's manifest digest of ``host/repository:tag``, or ``None``."""
    host, _, rest = reference.partition("/")
    repository, _, tag = rest.rpartition(":")
    token = base64.b64encode(f"{REGISTRY_USER}:{registry_password()}".encode()).decode()
    request = urllib.request.Request(f"http://{host}/v2/{repository}/manifests/{tag}", method="HEAD", headers={
        "Authorization": f"Basic {token}",
        "Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - fixed http://127.0.0.1 URL
            return response.headers.get("Docker-Content-Digest")
    except (urllib.error.URLError, OSError):
        return None


@step(f"gateway: image {IMAGE}")
def ensure_traefik_image() -> str:
    stamp = STATE / "gateway" / "image.stamp"  # the binary the pushed image holds
    if registry_has(IMAGE) and stamp.exists() and stamp.read_text().strip() == traefik_stamp():
        return "pushed already"
    context = STATE / "build" / "traefik-image"
    context.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BIN / "traefik", context / "traefik")
    (context / "Dockerfile").write_text(
        'FROM scratch\nCOPY traefik /traefik\nUSER 65532:65532\nENTRYPOINT ["/traefik"]\n')
    docker("build", "-q", "-t", IMAGE, str(context), log=LOG)
    # A login of its own (DOCKER_CONFIG under .stack): never root's ~/.docker, which the kubelet would read.
    config = STATE / "gateway" / "docker-config"
    config.mkdir(parents=True, exist_ok=True)
    env = {"DOCKER_HOST": docker_host(), "DOCKER_CONFIG": str(config)}
    run(["docker", "login", "--username", REGISTRY_USER, "--password-stdin", IMAGE.split("/")[0]],
        stdin=registry_password().encode(), env=env, log=LOG)
    run(["docker", "push", "-q", IMAGE], env=env, log=LOG)
    stamp.write_text(traefik_stamp())
    return f"built and pushed ({registry_has(IMAGE)})"


def traefik_args() -> list[str]:
    return [
        f"--entryPoints.web.address=127.0.0.1:{PORT}",
        f"--entryPoints.ping.address=127.0.0.1:{PING_PORT}",
        "--ping=true", "--ping.entryPoint=ping",
        "--providers.kubernetesGateway=true",
        # what the Gateway's status.addresses say: where the listener answers
        "--providers.kubernetesGateway.statusAddress.ip=127.0.0.1",
        "--global.checkNewVersion=false", "--global.sendAnonymousUsage=false",
        "--log.level=INFO", "--log.noColor=true",
    ]


def gateway_objects() -> list[dict]:
    labels = {"app.kubernetes.io/name": "traefik", "app.kubernetes.io/part-of": "slipway-gateway",
              "app.kubernetes.io/managed-by": "slipway-stack"}
    meta = {"name": NAME, "namespace": NAMESPACE, "labels": labels}
    rbac = "rbac.authorization.k8s.io"
    container = {
        "name": "traefik", "image": IMAGE, "imagePullPolicy": "IfNotPresent", "args": traefik_args(),
        # No kube-proxy here, so the kubernetes Service's ClusterIP leads nowhere; the API server listens on
        # the host's 127.0.0.1, which a host-network pod shares. In-cluster config reads these two variables.
        "env": [{"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
                {"name": "KUBERNETES_SERVICE_PORT", "value": str(PORTS["apiserver"])}],
        "readinessProbe": {"exec": {"command": ["/traefik", "healthcheck", "--ping", "--ping.entryPoint=ping",
                                                f"--entryPoints.ping.address=127.0.0.1:{PING_PORT}"]},
                           "periodSeconds": 5, "timeoutSeconds": 3},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": labels}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        pull_secret(NAMESPACE),
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRole", "metadata": {"name": "slipway:gateway", "labels": labels},
         "rules": RBAC_RULES},
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "slipway:gateway", "labels": labels},
         "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "slipway:gateway"},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # one node, one host port: the old pod must let go of it first
            "selector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
            "template": {"metadata": {"labels": labels}, "spec": {
                "serviceAccountName": NAME, "hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet",
                "nodeSelector": NODE_LABELS,
                "tolerations": [dict(NODE_TAINT, operator="Equal")],
                "imagePullSecrets": [{"name": "slipway-registry"}],
                "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [container]}}}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
         "metadata": {"name": NAME, "labels": labels}, "spec": {"controllerName": CONTROLLER}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": meta, "spec": {
            "gatewayClassName": NAME,
            "listeners": [{"name": "http", "protocol": "HTTP", "port": PORT,
                           "allowedRoutes": {"namespaces": {"from": "All"}}}]}},
    ]


def objects_digest() -> str:
    """What ``up`` applies, as a digest the Deployment carries: a changed object is applied again by the next up."""
    return hashlib.sha256(json.dumps(gateway_objects(), sort_keys=True).encode()).hexdigest()[:16]


def gateway_programmed() -> bool:
    found = kubectl("-n", NAMESPACE, "get", "gateway", NAME, "-o", "json", check=False)
    if found.returncode != 0:
        return False
    conditions = json.loads(found.stdout).get("status", {}).get("conditions", [])
    return any(c.get("type") == "Programmed" and c.get("status") == "True" for c in conditions)


def gateway_current() -> bool:
    found = kubectl("-n", NAMESPACE, "get", "deployment", NAME, "-o", "jsonpath={.metadata.annotations}",
                    check=False)
    return found.returncode == 0 and objects_digest() in found.stdout.decode()


def gateway_up() -> bool:
    """The Gateway is programmed by Traefik and its listener answers on 127.0.0.1."""
    return port_open(PORT) and gateway_programmed()


@step(f"gateway: Traefik on the real node, Gateway {NAMESPACE}/{NAME} on 127.0.0.1:{PORT}")
def ensure_gateway() -> str:
    ensure_traefik_binary()
    ensure_traefik_image()
    objects = gateway_objects()
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    deployment["metadata"]["annotations"] = {"slipway.io/stack-objects": objects_digest()}
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}).encode()
    kubectl("apply", "--server-side", "--field-manager=slipway-stack", "--force-conflicts", "-f", "-",
                      stdin=body, log=LOG)
    kubectl("-n", NAMESPACE, "rollout", "status", f"deployment/{NAME}", "--timeout=180s", log=LOG)
    wait_until(gateway_up, f"Gateway {NAMESPACE}/{NAME} programmed and 127.0.0.1:{PORT} answering", LOG,
               timeout=180)
    return f"programmed; routes attach with parentRefs [{{name: {NAME}, namespace: {NAMESPACE}}}]"


def components() -> list[tuple[str, bool, str]]:
    return [("gateway", gateway_up() and gateway_current(), f"Traefik {TRAEFIK_VERSION}, Gateway {NAMESPACE}/{NAME}, "
                                      f"http://127.0.0.1:{PORT}")]
