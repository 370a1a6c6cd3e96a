"""Health gates over HTTP through the API server's service proxy, on the stack's real node (issue 6).

Pods on simulated (kwok) nodes have no reachable address, so these run a pushed busybox httpd image on the real
node. The site it serves is a ConfigMap, so a release changes what ``/healthz`` answers without a new image.
Deliveries run as the least-privilege deployer (its namespace role covers ``services/proxy``); the cluster is
checked as admin, independently of what the engine reports.
"""

from __future__ import annotations

import json
import time

import pytest
import yaml
from fixtures.deliver.support import (
    ROOT,
    Journal,
    SlipwayError,
    client_for,
    registry_pull_secret,
    run,
    system,
)

assert ROOT  # fixtures.deliver.support has put the collection on sys.path
import test_deliver_playbook as deliver_playbook  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Options  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._release.rollback import (  # noqa: E402
    deliver_or_roll_back,
)

pytestmark = pytest.mark.slow
setup = deliver_playbook.setup  # fixture: the playbook test's ecosystem (system alpha) and inventory

REAL_NODE = {
    "nodeSelector": {"slipway.io/node-kind": "real"},
    "tolerations": [{"key": "slipway.io/real-node", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
    "imagePullSecrets": [{"name": "slipway-registry"}],
}
GATE = {"path": "/healthz", "port": 8080, "body_contains": "ok", "attempts": 3, "delay": 1}


@pytest.fixture(scope="module")
def httpd_image(stack, docker, stack_dir, tmp_path_factory):
    """busybox httpd serving /www (mounted from a ConfigMap), pushed to the stack's registry."""
    registry = stack["SLIPWAY_REGISTRY"]
    password = (stack_dir / "secrets" / "registry-password").read_text().strip()
    docker("login", "--username", "slipway", "--password-stdin", registry, input=password)
    context = tmp_path_factory.mktemp("httpd")
    (context / "Dockerfile").write_text('FROM slipway/busybox:stable\nUSER 10001:10001\nEXPOSE 8080\n'
                                        'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n')
    image = f"{registry}/slipway-test/health-httpd:1"
    docker("build", "-q", "-t", image, str(context))
    docker("push", image)
    return image


@pytest.fixture
def ns(ns, kubectl, stack, stack_dir, httpd_image):
    """The test's namespace (conftest), with the registry's pull secret, on a Ready real node."""
    node = json.loads(kubectl("get", "node", "slipway-real-0", "-o", "json").stdout)
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}.get("Ready")
    assert ready == "True", "the real node is not Ready: `hack/stack.py up --real-node`"
    kubectl("apply", "-f", "-", input=json.dumps(registry_pull_secret(stack_dir, stack["SLIPWAY_REGISTRY"], ns)))
    return ns


def site(ns, image, version, healthy=True, gate=None):
    """System ``web``: the site (a ConfigMap: ``/`` names the version, ``/healthz`` says ok unless not healthy),
    busybox httpd serving it on the real node (Ready as soon as ``/`` answers), and its Service."""
    pages = {"index.html": f"{version}\n", **({"healthz": "ok\n"} if healthy else {})}
    labels = {"app": "web"}
    pod = dict(REAL_NODE, automountServiceAccountToken=False, terminationGracePeriodSeconds=1,
               containers=[{"name": "httpd", "image": image, "ports": [{"name": "http", "containerPort": 8080}],
                            "volumeMounts": [{"name": "site", "mountPath": "/www"}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}],
               volumes=[{"name": "site", "configMap": {"name": "web-site"}}])
    objects = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-site"}, "data": pages},
               {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels}, "spec": pod}}},
               {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"selector": labels, "ports": [{"name": "http", "port": 8080, "targetPort": "http"}]}}]
    return dict(system("web", ns, *objects), health=GATE if gate is None else gate)


def served(kubectl, ns, path):
    """What the Service answers, read as admin through the same proxy (None when it does not answer 2xx)."""
    found = kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/services/web:8080/proxy{path}", check=False)
    return found.stdout.strip() if found.returncode == 0 else None


def test_a_ready_release_whose_http_gate_fails_is_rolled_back_and_the_rollback_passes_it(
        stack_dir, ns, context, kubectl, httpd_image):
    timings = {}
    for version in ("a", "b"):
        start = time.monotonic()
        result = run(stack_dir, [site(ns, httpd_image, version)], context, wait_timeout=120)[0]
        timings[version] = time.monotonic() - start
        gate = result["systems"][0]["health"]
        assert gate["state"] == "passed", gate
        assert gate["gates"][0]["gate"] == f"GET {ns}/web:8080/healthz" and gate["gates"][0]["reason"] == "200"
        assert f"web: health gate GET {ns}/web:8080/healthz passed" in " ".join(result["progress"])
        assert served(kubectl, ns, "/") == version and served(kubectl, ns, "/healthz") == "ok"

    client = client_for(stack_dir)
    start = time.monotonic()
    try:
        with pytest.raises(SlipwayError) as err:
            deliver_or_roll_back(client, [site(ns, httpd_image, "c", healthy=False)],
                                 Options(context=context, wait_timeout=120, lock_duration=10), on_failure="rollback")
    finally:
        client.close()
    timings["c + rollback"] = time.monotonic() - start
    message = err.value.msg
    assert f"system web: health gate GET {ns}/web:8080/healthz failed after 3 attempt(s)" in message
    assert "404 (expected 2xx)" in message  # the pod answered (Ready on /), without /healthz
    assert "Rolled back automatically to release 2 (recorded as revision 4)." in message
    back = err.value.details["rollback"]
    assert back["systems"][0]["health"]["state"] == "passed"  # B's gate, checked again after the rollback
    client = client_for(stack_dir, "admin")
    try:
        records = Journal(client, context).records()
    finally:
        client.close()
    assert [(r["revision"], r["outcome"]) for r in records] == [(1, "succeeded"), (2, "succeeded"), (3, "failed"),
                                                                (4, "succeeded")]
    assert "health gate" in records[2]["message"] and records[3]["action"]["to"] == 2
    assert records[1]["systems"]["web"]["health"][0]["path"] == "/healthz"
    assert served(kubectl, ns, "/") == "b" and served(kubectl, ns, "/healthz") == "ok"
    print(f"\nhealth gate on the real node: deliver A {timings['a']:.1f}s, B {timings['b']:.1f}s, "
          f"C failing its gate + automatic rollback {timings['c + rollback']:.1f}s")


def test_a_gate_on_a_port_the_service_lacks_fails_at_once_naming_the_fix(stack_dir, ns, context, httpd_image):
    start = time.monotonic()
    with pytest.raises(SlipwayError) as err:
        run(stack_dir, [site(ns, httpd_image, "a", gate={"path": "/healthz", "port": 9090, "attempts": 5,
                                                         "delay": 5})], context, wait_timeout=120)
    assert "no service port 9090 found" in err.value.msg
    assert "health.port is a port of the Service, by number or name" in err.value.msg
    assert err.value.details["systems"][0]["health"]["gates"][0]["attempts"] == 1  # not retried
    assert time.monotonic() - start < 60


def test_the_playbook_takes_the_gate_from_slipway_yml_and_rolls_back_when_it_fails(setup, kubectl, stack_dir):
    """slipway.yml -> the deliver action -> the engine: a command gate that reads what the cluster serves.

    The ecosystem and inventory are those of test_deliver_playbook (system ``alpha`` on simulated nodes); its
    ``slipway.yml`` gets a gate here."""
    namespace, context = setup["namespace"], setup["context"]
    description_path = setup["tmp"] / "eco" / "alpha" / "slipway.yml"
    description = yaml.safe_load(description_path.read_text())
    script = (f"g=$(kubectl -n {namespace} get configmap alpha-config -o jsonpath={{.data.greeting}}); "
              'echo "greeting $g"; test "$g" != broken')
    description["health"] = {"command": ["sh", "-c", script],
                             "env": {"KUBECONFIG": str(stack_dir / "kube" / "admin.kubeconfig")}}
    description_path.write_text(yaml.safe_dump(description))

    def deliver(greeting, *args):
        values = json.dumps({"slipway_system_values": {"alpha": {"greeting": greeting}}})
        return deliver_playbook.playbook(setup, "-e", values, *args, token="SENTINEL-health-token")

    def outcomes():
        return kubectl("get", "configmaps", "-n", "slipway-system", "-l", f"slipway.io/context={context}", "-o",
                       "jsonpath={.items[*].metadata.labels.slipway\\.io/outcome}").stdout.split()

    good = deliver("hi")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "alpha: health gate command sh -c" in good.stdout and "passed (exit 0" in good.stdout
    bad = deliver("broken", "-e", "slipway_deliver_on_failure=rollback")
    assert bad.returncode != 0, bad.stdout
    assert "system alpha: health gate command sh -c" in bad.stdout and "greeting broken" in bad.stdout
    assert "Rolled back automatically to release 1 (recorded as revision 3)" in bad.stdout
    assert outcomes() == ["succeeded", "failed", "succeeded"]
    config = json.loads(kubectl("get", "configmap", "alpha-config", "-n", namespace, "-o", "json").stdout)
    assert config["data"]["greeting"] == "hi"
    assert "SENTINEL" not in good.stdout + bad.stdout

    description["health"] = {"path": "/healthz"}  # no port: refused before anything is written
    description_path.write_text(yaml.safe_dump(description))
    refused = deliver("again")
    assert refused.returncode != 0
    assert "system alpha: health: port must be the Service's port number (1-65535) or port name" in refused.stdout
    assert "nothing was written" in refused.stdout and outcomes() == ["succeeded", "failed", "succeeded"]
