"""The stack's gateway (Traefik on the real node, docs/gateway.md) carrying real requests.

Routes are delivered through the engine as the least-privilege deployer; the gateway's verdict on them
(``status.parents``) decides the delivery, and requests are sent to ``127.0.0.1:<port>`` with a ``Host`` header.
The canary's route weights and header rule are measured by counting which version answered.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from fixtures.deliver.support import SlipwayError, client_for, registry_pull_secret, run, system
from test_canary import eventually  # the gateway applies a route change shortly after the API has it

ROOT = Path(__file__).resolve().parents[2]
assert ROOT  # fixtures.deliver.support has put the collection on sys.path
from ansible_collections.slipway.platform.plugins.module_utils._release.canary import canary  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Options  # noqa: E402

GATEWAY = {"name": "slipway", "namespace": "slipway-gateway"}
PORT = int(os.environ.get("SLIPWAY_GATEWAY_PORT", "18090"))
HEADER = {"name": "X-Canary", "value": "always"}
REAL_NODE = {
    "nodeSelector": {"slipway.io/node-kind": "real"},
    "tolerations": [{"key": "slipway.io/real-node", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
    "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 1,
    "imagePullSecrets": [{"name": "slipway-registry"}],
}
REQUESTS = 400
WEIGHT = 20
TOLERANCE = 6  # percentage points: about three standard deviations of a random 20% split over 400 requests

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gateway(stack, kubectl):
    """The real node and its gateway, as ``hack/stack.py up --real-node`` brings them (nothing restarted)."""
    started = subprocess.run([sys.executable, str(ROOT / "hack" / "stack.py"), "up", "--real-node", "--skip-packages"],
                             capture_output=True, text=True, check=False)
    assert started.returncode == 0, f"hack/stack.py up --real-node failed:\n{started.stdout}\n{started.stderr}"
    found = json.loads(kubectl("get", "gateway", GATEWAY["name"], "-n", GATEWAY["namespace"], "-o", "json").stdout)
    assert {"type": "Programmed", "status": "True"}.items() <= next(
        c for c in found["status"]["conditions"] if c["type"] == "Programmed").items()
    assert found["status"]["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]
    return f"http://127.0.0.1:{PORT}"


@pytest.fixture(scope="module")
def versions(stack, docker, stack_dir):
    """Two images of one web server answering ``v1`` and ``v2``, pushed; their references by digest."""
    registry = stack["SLIPWAY_REGISTRY"]
    password = (stack_dir / "secrets" / "registry-password").read_text().strip()
    docker("login", "--username", "slipway", "--password-stdin", registry, input=password)
    found = {}
    for version in ("v1", "v2"):
        context = Path(f"/tmp/slipway-gateway-{uuid.uuid4().hex[:8]}")
        context.mkdir()
        (context / "Dockerfile").write_text(
            f"FROM slipway/busybox:stable\nRUN mkdir /www && echo {version} > /www/index.html\n"
            'USER 10001:10001\nCMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n')
        tag = f"{registry}/slipway-test/gateway-web:{version}-{uuid.uuid4().hex[:8]}"
        docker("build", "-q", "-t", tag, str(context))
        docker("push", tag)
        digests = json.loads(docker("image", "inspect", "-f", "{{json .RepoDigests}}", tag).stdout)
        found[version] = next(d for d in digests if d.startswith(tag.rsplit(":", 1)[0] + "@"))
    return found


def web(image, replicas=2):
    labels = {"app": "web"}
    pod = dict(REAL_NODE, containers=[{"name": "web", "image": image, "ports": [{"containerPort": 8080}],
                                       "readinessProbe": {"httpGet": {"path": "/", "port": 8080},
                                                          "periodSeconds": 1}}])
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod}}}


def web_service():
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 8080, "targetPort": 8080}]}}


def route(hostname, backend="web"):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "web"},
            "spec": {"parentRefs": [GATEWAY], "hostnames": [hostname],
                     "rules": [{"backendRefs": [{"name": backend, "port": 8080}]}]}}


def deliver_web(stack_dir, kubectl, ns, context, image, registry, backend="web", **options):
    kubectl("apply", "-f", "-", input=json.dumps(registry_pull_secret(stack_dir, registry, ns)))
    host = f"{ns}.gateway.test"
    objects = [web(image), web_service(), route(host, backend)]
    result, _client = run(stack_dir, [system("web", ns, *objects, images={"web": image})], context, **options)
    return host, result


def get(url, host, headers=None):
    request = urllib.request.Request(f"{url}/", headers={"Host": host, **(headers or {})})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - the stack's 127.0.0.1 gateway
            return response.read().decode().strip()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"


def answers(url, host, count, headers=None):
    found = {}
    for _request in range(count):
        said = get(url, host, headers)
        found[said] = found.get(said, 0) + 1
    return found


def conditions(kubectl, ns, name="web"):
    live = json.loads(kubectl("get", "httproute", name, "-n", ns, "-o", "json").stdout)
    return {(c["type"], c["status"], c["reason"]) for p in live["status"]["parents"] for c in p["conditions"]}


def test_a_delivered_route_is_accepted_by_the_gateway_and_answers_by_host_name(
        gateway, versions, stack, stack_dir, kubectl, ns, context):
    host, result = deliver_web(stack_dir, kubectl, ns, context, versions["v1"], stack["SLIPWAY_REGISTRY"])
    assert [s["result"] for s in result["systems"]] == ["changed"]
    # the delivery returned once the gateway had accepted the route and resolved its backend
    assert {("Accepted", "True", "Accepted"), ("ResolvedRefs", "True", "ResolvedRefs")} <= conditions(kubectl, ns)
    assert eventually(lambda: get(gateway, host), "v1") == "v1"
    assert get(gateway, f"other-{host}") == "HTTP 404"  # another host name is not this route's


def test_a_route_the_gateway_refuses_fails_the_delivery_with_its_reason(
        gateway, versions, stack, stack_dir, kubectl, ns, context):
    with pytest.raises(SlipwayError) as err:
        deliver_web(stack_dir, kubectl, ns, context, versions["v1"], stack["SLIPWAY_REGISTRY"], backend="missing",
                    wait_timeout=300)
    message = err.value.msg
    assert "HTTPRoute" in message and f"{ns}/web" in message
    assert "Gateway slipway-gateway/slipway refused the route: ResolvedRefs=False BackendNotFound" in message
    assert "not ready after" not in message  # failed on the gateway's verdict, not at the timeout


def test_canary_weights_and_header_are_followed_by_real_requests(
        gateway, versions, stack, stack_dir, kubectl, ns, context):
    host, _result = deliver_web(stack_dir, kubectl, ns, context, versions["v1"], stack["SLIPWAY_REGISTRY"])
    assert eventually(lambda: get(gateway, host), "v1") == "v1"
    client = client_for(stack_dir)
    try:
        started = canary(client, Options(context=context, wait_timeout=180, lock_duration=10), "web", "start",
                         images={"web": versions["v2"]}, weight=WEIGHT, reason="measure the split",
                         route={"name": "web", "header": HEADER, "gateway": GATEWAY})
        assert started["changed"]
        # the header rule sends every request carrying it to the canary
        with_header = eventually(lambda: answers(gateway, host, 50, {HEADER["name"]: HEADER["value"]}),
                                 {"v2": 50})
        assert with_header == {"v2": 50}
        split = answers(gateway, host, REQUESTS)
        assert set(split) == {"v1", "v2"}, split
        measured = 100 * split["v2"] / REQUESTS
        print(f"\ncanary weight {WEIGHT}%: {split['v2']} of {REQUESTS} requests reached it ({measured:.1f}%)")
        assert abs(measured - WEIGHT) <= TOLERANCE, split
        aborted = canary(client, Options(context=context, wait_timeout=180, lock_duration=10), "web", "abort")
        assert aborted["changed"]
    finally:
        client.close()
    assert eventually(lambda: answers(gateway, host, 50), {"v1": 50}) == {"v1": 50}


def test_a_canary_on_a_route_not_attached_to_the_contexts_gateway_is_refused_before_any_write(
        gateway, versions, stack, stack_dir, kubectl, ns, context):
    deliver_web(stack_dir, kubectl, ns, context, versions["v1"], stack["SLIPWAY_REGISTRY"])
    before = kubectl("get", "httproute", "web", "-n", ns, "-o", "jsonpath={.metadata.resourceVersion}").stdout
    client = client_for(stack_dir)
    try:
        with pytest.raises(SlipwayError, match="is not attached to the context's Gateway slipway-gateway/other"):
            canary(client, Options(context=context, wait_timeout=180, lock_duration=10), "web", "start",
                   images={"web": versions["v2"]}, weight=WEIGHT,
                   route={"name": "web", "gateway": {"name": "other", "namespace": "slipway-gateway"}})
    finally:
        client.close()
    assert kubectl("get", "httproute", "web", "-n", ns, "-o",
                   "jsonpath={.metadata.resourceVersion}").stdout == before


def test_the_playbook_passes_the_declared_gateway_and_a_detached_route_is_refused(
        gateway, versions, stack, stack_dir, kubectl, ns, context):
    deliver_web(stack_dir, kubectl, ns, context, versions["v1"], stack["SLIPWAY_REGISTRY"])
    declared = {"slipway_canary_routes": {"web": {"name": "web", "gateway": {"name": "other",
                                                                             "namespace": "slipway-gateway"}}}}
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "inventories/local",
                             "playbooks/canary.yml", "-e", f"slipway_context={context}",
                             "-e", "slipway_canary_system=web", "-e", "slipway_canary_weight=10",
                             "-e", json.dumps({"slipway_canary_images": {"web": versions["v2"]}}),
                             "-e", json.dumps(declared)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0
    assert "is not attached to the context's Gateway slipway-gateway/other" in result.stdout
    assert kubectl("get", "deployment", "web-canary", "-n", ns, check=False).returncode != 0  # nothing written
