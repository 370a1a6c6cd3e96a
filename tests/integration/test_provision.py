"""Provisioning (issue 13): bare lab machines (hack/lab.py) become a Kubernetes cluster by playbooks/provision.yml.

1 control-plane/etcd machine + 2 workers from bare: every node Ready; a pod on one worker reaches a Service whose
pod runs on the other, by its cluster DNS name; the second run changes nothing; a wrong artifact checksum fails
before anything is installed; a third worker added with --limit changes only that host; removed, it is drained,
gone from the API and wiped. Select with ``-m lab``; the lab is left up for the next run (hack/lab.py down removes it).
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import yaml
from fixtures.provision.support import (
    CONTROL,
    FIRST_THREE,
    INVENTORY,
    NEW_WORKER,
    WORKER_A,
    WORKER_B,
    kubectl,
    lab_up,
    on_machine,
    playbook,
    ready_nodes,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_every_node_ready(lab_cluster):
    assert ready_nodes() == {WORKER_A: True, WORKER_B: True}


def test_second_run_changes_nothing(lab_cluster, lab_vars):
    again = playbook("provision.yml", *FIRST_THREE, extra_vars=lab_vars)
    assert again.returncode == 0, again.output[-6000:]
    assert set(again.recap) >= {CONTROL, WORKER_A, WORKER_B}, again.recap
    assert again.changed_hosts() == {}, again.output[-8000:]


def test_the_control_plane_is_locked_down(lab_cluster):
    apiserver = on_machine(CONTROL, "systemctl", "show", "-p", "ExecStart", "kube-apiserver").stdout
    for flag in ("--anonymous-auth=false", "--authorization-mode=Node,RBAC", "--encryption-provider-config=",
                 "--audit-log-path=", "--audit-policy-file=", "--enable-bootstrap-token-auth=true"):
        assert flag in apiserver, flag
    # No credentials: refused (401), not answered anonymously.
    anonymous = on_machine(CONTROL, "python3", "-", stdin=(
        "import ssl, urllib.request, urllib.error\n"
        "try:\n"
        "    urllib.request.urlopen('https://127.0.0.1:6443/api', context=ssl._create_unverified_context())\n"
        "except urllib.error.HTTPError as error:\n"
        "    print(error.code)\n"))
    assert anonymous.stdout.strip() == "401", anonymous
    # Secrets are stored encrypted: etcd's copy starts with the provider's prefix, not the value.
    namespace = f"provision-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    try:
        kubectl("-n", namespace, "create", "secret", "generic", "probe", "--from-literal=value=plain-text-marker")
        raw = on_machine(CONTROL, "python3", "-", stdin=(
            "import base64, json, ssl, urllib.request\n"
            f"key = base64.b64encode(b'/registry/secrets/{namespace}/probe').decode()\n"
            "context = ssl.create_default_context(cafile='/etc/etcd/pki/ca.crt')\n"
            "context.load_cert_chain('/etc/etcd/pki/server.crt', '/etc/etcd/pki/server.key')\n"
            "body = json.dumps({'key': key}).encode()\n"
            "request = urllib.request.Request('https://127.0.0.1:2379/v3/kv/range', body)\n"
            "value = json.loads(urllib.request.urlopen(request, context=context).read())['kvs'][0]['value']\n"
            "print(base64.b64decode(value)[:60])\n"))
        assert "k8s:enc:secretbox:v1:" in raw.stdout, raw
        assert "plain-text-marker" not in raw.stdout
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture(scope="module")
def hello_image(stack, tmp_path_factory, docker) -> tuple[str, str]:
    context = tmp_path_factory.mktemp("hello")
    marker = uuid.uuid4().hex
    (context / "Dockerfile").write_text(
        "FROM slipway/busybox:stable\n"
        f"RUN mkdir -p /www && echo {marker} > /www/index.html\n"
        'USER 10001:10001\nCMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n')
    image = f"{stack['SLIPWAY_REGISTRY']}/slipway-lab/hello:{marker[:12]}"
    docker("build", "-q", "-t", image, str(context))
    docker("push", "-q", image)
    return image, marker


def test_pod_reaches_a_service_on_the_other_worker_by_dns_name(lab_cluster, hello_image):
    image, marker = hello_image
    namespace = f"provision-{uuid.uuid4().hex[:6]}"
    labels = {"app": "hello"}
    server = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hello", "namespace": namespace},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"nodeSelector": {"kubernetes.io/hostname": WORKER_A}, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "hello", "image": image, "ports": [{"containerPort": 8080}],
                                     "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello", "namespace": namespace},
               "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}}
    client = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", "namespace": namespace},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": WORKER_B}, "restartPolicy": "Never",
                 # The name through the cluster DNS (busybox's own resolver), then HTTP to the address it gave:
                 # the static busybox's wget crashes resolving names (glibc NSS), nc with an address does not.
                 "containers": [{"name": "client", "image": image, "command": ["sh", "-c", (
                     f"address=$(nslookup hello.{namespace}.svc.cluster.local"
                     " | awk '/^Address/ {a=$2} END {print a}') && echo \"$address\""
                     " && printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 \"$address\" 80 | tail -1")]}]}}
    kubectl("create", "namespace", namespace)
    try:
        kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                      "items": [server, service]}))
        kubectl("-n", namespace, "rollout", "status", "deployment/hello", "--timeout=180s")
        kubectl("apply", "-f", "-", stdin=json.dumps(client))
        done = kubectl("-n", namespace, "wait", "pod/client", "--for=jsonpath={.status.phase}=Succeeded",
                       "--timeout=120s", check=False)
        pods = json.loads(kubectl("-n", namespace, "get", "pods", "-o", "json").stdout)["items"]
        placed = {p["metadata"]["name"].split("-")[0]: p["spec"].get("nodeName") for p in pods}
        logs = kubectl("-n", namespace, "logs", "client", check=False)
        assert done.returncode == 0, (done.stderr, logs.stdout, logs.stderr, placed)
        assert placed == {"hello": WORKER_A, "client": WORKER_B}
        cluster_ip = kubectl("-n", namespace, "get", "service", "hello", "-o", "jsonpath={.spec.clusterIP}").stdout
        assert logs.stdout.split() == [cluster_ip, marker]
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_wrong_artifact_checksum_fails_before_anything_is_installed(lab_cluster, lab_vars, tmp_path):
    lab_up(4)
    artifacts = yaml.safe_load((INVENTORY / "group_vars" / "all" / "artifacts.yml").read_text())["slipway_artifacts"]
    artifacts["kubelet"] = dict(artifacts["kubelet"], sha256="0" * 64)
    wrong = tmp_path / "wrong.yml"
    wrong.write_text(yaml.safe_dump({"slipway_artifacts": artifacts}))
    run = playbook("provision.yml", "--limit", NEW_WORKER, "-e", f"@{wrong}", extra_vars=lab_vars)
    assert run.returncode != 0
    assert "nothing was installed" in run.output and "kubelet" in run.output, run.output[-4000:]
    assert on_machine(NEW_WORKER, "test", "-e", "/usr/local/bin/kubelet").returncode == 1
    assert on_machine(NEW_WORKER, "test", "-e", "/etc/systemd/system/kubelet.service").returncode == 1


def test_adding_a_worker_with_limit_changes_only_that_host(lab_cluster, lab_vars):
    lab_up(4)
    run = playbook("provision.yml", "--limit", NEW_WORKER, extra_vars=lab_vars)
    assert run.returncode == 0, run.output[-6000:]
    assert set(run.changed_hosts()) == {NEW_WORKER}, run.recap
    assert ready_nodes().get(NEW_WORKER) is True
    # The other hosts route to the new node's pods by themselves (slipway-pod-routes), with no run on them.
    cidr = kubectl("get", "node", NEW_WORKER, "-o", "jsonpath={.spec.podCIDR}").stdout.strip()
    for host in (CONTROL, WORKER_A):
        routes = on_machine(host, "ip", "route", "show", cidr)
        assert "via" in routes.stdout, (host, routes.stdout)


def test_removing_the_worker_drains_deletes_and_wipes_it(lab_cluster, lab_vars):
    namespace = f"provision-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    try:
        run = playbook("remove_node.yml", "-e", json.dumps({"slipway_remove_nodes": [NEW_WORKER]}),
                       extra_vars=lab_vars)
        assert run.returncode == 0, run.output[-6000:]
        assert NEW_WORKER not in ready_nodes()
        left = kubectl("get", "pods", "-A", "--field-selector", f"spec.nodeName={NEW_WORKER}", "-o", "name")
        assert left.stdout.strip() == ""
        for path in ("/usr/local/bin/kubelet", "/etc/kubernetes", "/etc/systemd/system/kubelet.service"):
            assert on_machine(NEW_WORKER, "test", "-e", path).returncode == 1, path
        assert on_machine(NEW_WORKER, "systemctl", "is-active", "kubelet").stdout.strip() != "active"
        again = playbook("remove_node.yml", "-e", json.dumps({"slipway_remove_nodes": [NEW_WORKER]}),
                         extra_vars=lab_vars)
        assert again.returncode == 0 and again.changed_hosts() == {}, again.output[-4000:]
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_certificates_report_and_renew_nothing_when_fresh(lab_cluster, lab_vars):
    # The removed worker is still in the lab's inventory; it is no node any more.
    run = playbook("certificates.yml", *FIRST_THREE, extra_vars=lab_vars)
    assert run.returncode == 0, run.output[-6000:]
    assert "apiserver.crt expires" in run.output
    assert run.changed_hosts() == {}, run.recap


def test_deployer_credentials_written_for_site_yml(lab_cluster):
    credentials = INVENTORY / ".credentials"
    deployer = subprocess.run(["kubectl", f"--kubeconfig={credentials / 'deployer.kubeconfig'}", "auth", "can-i",
                               "create", "deployments", "-n", "shop"], capture_output=True, text=True, check=False)
    assert deployer.stdout.strip() == "yes", deployer
    cluster_wide = subprocess.run(["kubectl", f"--kubeconfig={credentials / 'deployer.kubeconfig'}", "auth", "can-i",
                                   "create", "clusterroles"], capture_output=True, text=True, check=False)
    assert cluster_wide.stdout.strip() == "no", cluster_wide
