"""The monitoring catalogue on the real node (issue 17): Prometheus, Alertmanager and the alert receiver as the ops
context delivers them, and metric gates that decide a delivery and a stepped canary.

Everything is real: the ops context is delivered with ``ansible-playbook -i inventories/ops playbooks/site.yml``
(built, tested, delivered to the stack's real node), Prometheus scrapes what it discovers through the Kube API, the
alerts go through Alertmanager to ``alert-sink``, and the canary's pods serve real requests whose answers they
count (``fixtures/metrics-app``). Deliveries and canaries go through the engine's entry points as the deployer.

Slow (``-m slow``): 40-80 s for the ops delivery (build, test, deliver), then 20 s to 2.5 minutes per test, most
of it waiting for scrapes (every 10 s), a crash loop's restarts, and each canary step's metric samples; the
module took 8 minutes on this 2-core machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from fixtures.deliver.support import Journal, SlipwayError, client_for, registry_pull_secret, run, system
from test_deliver_real_node import registry  # noqa: F401 # pylint: disable=unused-import

ROOT = Path(__file__).resolve().parents[2]
ASSETS = Path(__file__).resolve().parent / "fixtures" / "metrics-app"
PROMETHEUS = "http://10.77.0.1:9090"  # the ops context's slipway_prometheus_url (host network of the real node)
REAL_NODE = {
    "nodeSelector": {"slipway.io/node-kind": "real"},
    "tolerations": [{"key": "slipway.io/real-node", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
    "imagePullSecrets": [{"name": "slipway-registry"}],
    "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 1,
}
ERROR_RATE = ('(sum(rate(http_requests_total{namespace="${namespace}",system="${system}",track="${track}",'
              'code=~"5.."}[30s])) or vector(0)) / sum(rate(http_requests_total{namespace="${namespace}",'
              'system="${system}",track="${track}"}[30s]))')
# New pods need two scrapes before a 30 s rate exists, and kube-sd lists them every 10 s: the gate waits for the
# first data (up to 2 minutes on a busy machine), then samples.
ERROR_RATE_GATE = {"query": ERROR_RATE, "threshold": 0.05, "comparison": "<=", "samples": 3, "interval": 5,
                   "warmup": 120}

pytestmark = pytest.mark.slow


def answers_ok(url, timeout):
    """Whether ``url`` answers 200 now (a refused or timed-out connection is a no, to be waited out)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - the stack's own addresses
            return answer.status == 200
    except OSError:
        return False


def wait_for(what, probe, timeout, interval=3.0):
    """Poll ``probe`` until it returns something true; fail naming ``what`` and the last answer."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not seen within {timeout}s; last: {last!r}")


def promql(query):
    """The result list of an instant query to the catalogue's Prometheus."""
    address = f"{PROMETHEUS}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(address, timeout=10) as answer:  # noqa: S310 - the stack's own Prometheus
        found = json.load(answer)
    assert found["status"] == "success", found
    return found["data"]["result"]


def values(query):
    return [float(r["value"][1]) for r in promql(query)]


MONITORING = ["alert-sink", "alertmanager", "prometheus"]  # the catalogue's other entries have tests of their own


@pytest.fixture(scope="module")
def ops(stack, tmp_path_factory):
    """The ops context's monitoring delivered as its README says (build, test, deliver), once for the module, with
    reports of its own (another run of the ops context may be writing reports/); Prometheus ready."""
    reports = tmp_path_factory.mktemp("ops-reports")
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "inventories/ops",
                           "playbooks/site.yml", "-e", f"slipway_reports_dir={reports}",
                           "-e", json.dumps({"slipway_systems": MONITORING})],
                          cwd=ROOT, capture_output=True, text=True, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    assert done.returncode == 0, f"the ops delivery failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"

    wait_for("Prometheus ready", lambda: answers_ok(f"{PROMETHEUS}/-/ready", 5), 120)
    return reports


@pytest.fixture(scope="module")
def push(docker, registry):  # noqa: F811 - the imported fixture
    """Build ``context`` (with build args) and push it; the reference by digest, as the engine delivers images."""
    def build_and_push(context, repository, **build_args):
        tag = f"{registry}/slipway-test/{repository}:{uuid.uuid4().hex[:12]}"
        args = [item for key, value in build_args.items() for item in ("--build-arg", f"{key}={value}")]
        docker("build", "-q", *args, "-t", tag, str(context))
        docker("push", tag)
        digests = json.loads(docker("image", "inspect", "-f", "{{json .RepoDigests}}", tag).stdout)
        return next(d for d in digests if d.startswith(tag.rsplit(":", 1)[0] + "@"))
    return build_and_push


@pytest.fixture(scope="module")
def app_images(push):
    """The metrics app healthy, healthy again (a new digest), and faulty (every request answered 500)."""
    return {"stable": push(ASSETS, "metrics-app", VERSION="1"), "healthy": push(ASSETS, "metrics-app", VERSION="2"),
            "faulty": push(ASSETS, "metrics-app", VERSION="3", FAULTY="1")}


def pulling(kubectl, stack_dir, ns):
    """The stack registry's pull secret in ``ns`` (the pods on the real node pull with it)."""
    secret = registry_pull_secret(stack_dir, os.environ["SLIPWAY_REGISTRY"], ns)
    kubectl("apply", "-f", "-", input=json.dumps(secret))


def records(stack_dir, context):
    client = client_for(stack_dir, "admin")
    try:
        return Journal(client, context).records()
    finally:
        client.close()


def workload(name, containers, replicas=1, volumes=()):
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": dict(REAL_NODE, containers=containers, volumes=list(volumes))}}}


def http_service(name, port):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port, "targetPort": port}]}}


# ----------------------------------------------------------------------------- scraping


def test_prometheus_scrapes_the_api_server_the_kubelet_and_a_shop_service(ops, push, stack_dir, ns,
                                                                          context, kubectl):
    pulling(kubectl, stack_dir, ns)
    image = push(ROOT / "examples" / "shop" / "backend", "shop-backend")
    backend = workload("backend", [{"name": "backend", "image": image,
                                    "ports": [{"name": "http", "containerPort": 8080}],
                                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                                                       "periodSeconds": 2}}])
    described = yaml.safe_load((ROOT / "examples" / "shop" / "backend" / "slipway.yml").read_text())
    raw = dict(system("backend", ns, backend, http_service("backend", 8080), images={"backend": image}),
               metrics=described["metrics"])  # the shop backend's own declaration
    run(stack_dir, [raw], context, wait_timeout=180)
    template = json.loads(kubectl("-n", ns, "get", "deployment", "backend", "-o", "json").stdout)["spec"]["template"]
    assert template["metadata"]["annotations"]["slipway.io/metrics-port"] == "8080"

    wait_for("the shop backend scraped", lambda: values(f'up{{job="slipway-systems",namespace="{ns}",'
                                                        f'system="backend",track="stable"}}') == [1.0], 90)
    # the kubelet's readiness probes are requests the backend counted, and Prometheus has them
    assert wait_for("the backend's request counter", lambda: values(
        f'sum(http_requests_total{{namespace="{ns}",route="/healthz",code="200"}})'), 60)[0] > 0
    for job in ("apiserver", "kubelet", "cadvisor"):
        assert values(f'up{{job="{job}"}}') and all(v == 1.0 for v in values(f'up{{job="{job}"}}')), job
    assert values('sum(apiserver_request_total{job="apiserver"})')[0] > 0
    assert values('kubelet_running_pods{job="kubelet",node="slipway-real-0"}')[0] >= 1
    assert wait_for("cAdvisor's memory of the backend pod", lambda: values(
        'sum(container_memory_working_set_bytes{job="cadvisor",pod=~"backend-.*"})'), 60)[0] > 0


# ----------------------------------------------------------------------------- alerting


def sink_notifications(kubectl):
    raw = kubectl("get", "--raw", "/api/v1/namespaces/monitoring/services/alert-sink:8080/proxy/cgi-bin/alerts",
                  check=False)
    return json.loads(raw.stdout) if raw.returncode == 0 and raw.stdout.strip() else []


def test_a_crash_looping_pod_fires_an_alert_that_reaches_the_webhook_receiver(
        ops, app_images, stack_dir, ns, kubectl):
    pulling(kubectl, stack_dir, ns)
    crasher = workload("crasher", [{"name": "crasher", "image": app_images["stable"],
                                    "command": ["sh", "-c", "echo crashing on purpose; exit 3"]}])
    crasher["metadata"]["namespace"] = ns
    kubectl("apply", "-f", "-", input=json.dumps(crasher))

    def crash_alert():
        for notification in sink_notifications(kubectl):
            for alert in notification.get("alerts") or []:
                labels = alert.get("labels") or {}
                if labels.get("alertname") == "PodCrashLooping" and labels.get("namespace") == ns \
                        and alert.get("status") == "firing":
                    return alert
        return None
    alert = wait_for("PodCrashLooping at the webhook receiver", crash_alert, 300, interval=5)
    assert alert["labels"]["container"] == "crasher" and alert["labels"]["pod"].startswith("crasher-")
    assert alert["labels"]["severity"] == "critical"
    logged = kubectl("-n", "monitoring", "logs", "deployment/alert-sink", "--tail=200").stdout
    assert "alert-sink: received" in logged and f'"namespace":"{ns}"' in logged


# ----------------------------------------------------------------------------- metric gates and canaries


def web(ns, image, replicas=2):
    """The metrics app with a load generator beside it in each pod, scraped and gated on its error rate."""
    counts = {"name": "counts", "mountPath": "/counts"}
    app = workload("web", [
        {"name": "web", "image": image, "ports": [{"name": "http", "containerPort": 8080}],
         "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2},
         "volumeMounts": [counts]},
        {"name": "load", "image": image, "volumeMounts": [counts],
         "command": ["sh", "-c", "while true; do wget -q -O /dev/null http://127.0.0.1:8080/cgi-bin/work; "
                                 "sleep 0.2; done"]}],
        replicas=replicas, volumes=[{"name": "counts", "emptyDir": {}}])
    return dict(system("web", ns, app, http_service("web", 8080), images={"web": image}),
                metrics={"port": 8080, "path": "/cgi-bin/metrics"}, health=[ERROR_RATE_GATE])


def options(context):
    from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Options

    return Options(context=context, wait_timeout=180, lock_duration=10, prometheus_url=PROMETHEUS)


def progress(stack_dir, context, image, steps=(10, 50)):
    from ansible_collections.slipway.platform.plugins.module_utils._release.canary_steps import progress as step

    client = client_for(stack_dir)
    try:
        return step(client, options(context), "web", {"web": image}, steps=list(steps))
    finally:
        client.close()


def deliver_web(stack_dir, ns, context, image):
    client = client_for(stack_dir)
    try:
        from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import deliver

        return deliver(client, [web(ns, image)], options(context))
    finally:
        client.close()


def canary_leftovers(kubectl, ns):
    return kubectl("-n", ns, "get", "deployments,services", "-l", "slipway.io/track=canary",
                   "-o", "name").stdout.split()


def serving_pods(kubectl, ns):
    endpoints = json.loads(kubectl("-n", ns, "get", "endpoints", "web", "-o", "json").stdout)
    return sorted(a["targetRef"]["name"] for s in endpoints.get("subsets") or [] for a in s.get("addresses") or [])


def test_a_delivery_records_its_metric_gate_samples(ops, app_images, stack_dir, ns, context, kubectl):
    pulling(kubectl, stack_dir, ns)
    result = deliver_web(stack_dir, ns, context, app_images["stable"])
    assert result["recorded"]
    (gate,) = records(stack_dir, context)[-1]["systems"]["web"]["metric_gates"]
    assert gate["passed"] and 'track="stable"' in gate["query"] and f'namespace="{ns}"' in gate["query"]
    assert [s["passed"] for s in gate["samples"]] == [True, True, True]
    assert all(s["value"] == 0.0 for s in gate["samples"])  # the stable build answers every request with 200


def test_a_canary_whose_error_rate_exceeds_its_threshold_is_aborted_and_the_stable_release_keeps_the_traffic(
        ops, app_images, stack_dir, ns, context, kubectl):
    pulling(kubectl, stack_dir, ns)
    deliver_web(stack_dir, ns, context, app_images["stable"])
    with pytest.raises(SlipwayError) as caught:
        progress(stack_dir, context, app_images["faulty"])
    assert caught.value.msg.startswith("a metric gate failed at 10%: system web-canary: health gate metric ")
    assert "not <= 0.05" in caught.value.msg and "the stable release keeps all the traffic" in caught.value.msg
    assert caught.value.details["aborted"] is True

    assert canary_leftovers(kubectl, ns) == []
    stable = json.loads(kubectl("-n", ns, "get", "deployment", "web", "-o", "json").stdout)
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == app_images["stable"]
    pods = wait_for("only stable pods behind the Service",
                    lambda: (p := serving_pods(kubectl, ns)) and not any("canary" in n for n in p) and p, 60)
    assert len(pods) == 2
    history = records(stack_dir, context)
    assert [r["action"]["kind"] for r in history[-2:]] == ["canary", "canary-abort"]
    (step,) = history[-1]["action"]["gates"]
    assert step["weight"] == 10 and step["passed"] is False
    failed = step["gates"][0]["samples"][-1]
    assert failed["passed"] is False and failed["value"] > 0.05  # the faulty build's 500s, as Prometheus counted them
    assert "web-canary" not in history[-1]["systems"]


def test_a_healthy_canary_is_promoted_through_each_step(ops, app_images, stack_dir, ns, context, kubectl):
    pulling(kubectl, stack_dir, ns)
    deliver_web(stack_dir, ns, context, app_images["stable"])
    result = progress(stack_dir, context, app_images["healthy"])
    assert [(s["weight"], s["passed"]) for s in result["canary"]["steps"]] == [(10, True), (50, True)]
    assert all(sample["value"] <= 0.05 for s in result["canary"]["steps"] for sample in s["gates"][0]["samples"])

    history = records(stack_dir, context)
    kinds = [(r["action"]["kind"], r["action"].get("weight")) for r in history[1:]]
    assert kinds == [("canary", 10), ("canary", 50), ("canary-promote", None)]
    assert [s["weight"] for s in history[-1]["action"]["gates"]] == [10, 50]
    assert history[-1]["systems"]["web"]["images"] == {"web": app_images["healthy"]}
    assert canary_leftovers(kubectl, ns) == []
    stable = json.loads(kubectl("-n", ns, "get", "deployment", "web", "-o", "json").stdout)
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == app_images["healthy"]


# ----------------------------------------------------------------------------- the ops delivery fails with a reason


def test_a_catalogue_service_failing_its_health_gate_fails_the_ops_delivery_with_its_reason(
        ops, tmp_path, ns, context, stack_dir):
    # The catalogue's alert-sink as it is, in the test's namespace and context, with a health gate it cannot pass:
    # the ops inventory and playbook unchanged, the shared monitoring namespace untouched.
    root = tmp_path / "catalogue"
    shutil.copytree(ROOT / "catalogue" / "alert-sink", root / "alert-sink")
    described = yaml.safe_load((root / "alert-sink" / "slipway.yml").read_text())
    described.update(namespace=ns, health={"path": "/no-such-page", "port": 8080, "attempts": 2, "delay": 1})
    (root / "alert-sink" / "slipway.yml").write_text(yaml.safe_dump(described))
    reports = tmp_path / "reports"
    reports.mkdir()
    shutil.copy(ops / "images-ops.json", reports / f"images-{context}.json")  # the images the ops build made
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "inventories/ops",
                           "playbooks/deliver.yml", "-e", f"slipway_context={context}",
                           "-e", f"slipway_ecosystem_root={root}", "-e", f"slipway_reports_dir={reports}",
                           "-e", json.dumps({"slipway_systems": ["alert-sink"]})],
                          cwd=ROOT, capture_output=True, text=True, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    assert done.returncode != 0, done.stdout[-3000:]
    reason = f"health gate GET {ns}/alert-sink:8080/no-such-page failed after 2 attempt(s)"
    assert reason in done.stdout and "404" in done.stdout, done.stdout[-3000:]
    result = json.loads((reports / f"result-{context}.json").read_text())
    assert reason in json.dumps(result)
    (record,) = records(stack_dir, context)
    assert record["outcome"] == "failed" and record["systems"]["alert-sink"]["result"] == "failed"
