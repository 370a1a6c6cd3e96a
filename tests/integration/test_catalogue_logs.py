"""The logs catalogue entry (issue 17): VictoriaLogs and its collector as the ops context delivers them on the stack's
real node.

The ops context is delivered through ``playbooks/site.yml`` for the ``logs`` system alone (built, tested in its
image, delivered; the other catalogue systems stay as recorded). A pod labelled like a shop service, in a namespace
of the test on the real node, writes a line no one else writes; a LogsQL query by namespace and pod, asked through
the API server's service proxy as a reader would, finds it with its container and system label; the store runs
with the retention the inventory gives.

Slow (``-m slow``): about 25 s for the delivery when the image is to be built and tested, then the collector's
pick-up of the new pod's log (seconds).
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from pathlib import Path

import pytest
import yaml
from test_catalogue_bus import deliver_ops_system
from test_catalogue_monitoring import REAL_NODE, pulling, wait_for

ROOT = Path(__file__).resolve().parents[2]
STORE = "/api/v1/namespaces/logs/services/logs:9428/proxy"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(stack, kubectl):
    """The logs system delivered by the ops context; a LogsQL query function (through the API server)."""
    deliver_ops_system(kubectl, "logs", "logs")
    collectors = json.loads(kubectl("-n", "logs", "get", "daemonset", "log-collector", "-o", "json").stdout)
    assert collectors["status"].get("numberReady") == 1, collectors["status"]  # the real node only

    def logsql(query):
        found = kubectl("get", "--raw", f"{STORE}/select/logsql/query?{urllib.parse.urlencode({'query': query})}")
        return [json.loads(line) for line in found.stdout.splitlines() if line.strip()]
    return logsql


def test_a_shop_pods_log_line_is_found_by_a_query_on_namespace_and_pod(store, stack_dir, ns, kubectl):
    pulling(kubectl, stack_dir, ns)
    image = json.loads(kubectl("-n", "logs", "get", "deployment", "logs", "-o", "json").stdout)[
        "spec"]["template"]["spec"]["containers"][0]["image"]  # busybox inside, on the node already
    line = f"order {uuid.uuid4()} accepted"
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "backend-logs", "namespace": ns,
                        "labels": {"app.kubernetes.io/name": "backend", "app.kubernetes.io/part-of": "shop"}},
           "spec": dict(REAL_NODE, containers=[{
               "name": "backend", "image": image, "command": ["sh", "-c", f"echo '{line}'; exec sleep 3600"],
               "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}])}
    kubectl("apply", "-f", "-", input=json.dumps(pod))
    kubectl("-n", ns, "wait", "--for=condition=Ready", "pod/backend-logs", "--timeout=120s")

    found = wait_for("the pod's line in VictoriaLogs", lambda: store(
        f'kubernetes.pod_namespace:={ns} kubernetes.pod_name:=backend-logs "{line}"'), 90)
    assert [entry["_msg"] for entry in found] == [line]
    assert found[0]["kubernetes.container_name"] == "backend"
    assert found[0]["kubernetes.pod_labels.app.kubernetes.io/name"] == "backend"  # the Slipway system
    # the query selects: another namespace's pod of the same name has no such line
    assert store(f'kubernetes.pod_namespace:=shop kubernetes.pod_name:=backend-logs "{line}"') == []


def test_the_store_keeps_lines_as_long_as_the_inventory_says(store, kubectl):
    wanted = yaml.safe_load((ROOT / "inventories" / "ops" / "group_vars" / "all" / "logs.yml").read_text())[
        "slipway_ops_logs"]
    running = kubectl("get", "--raw", f"{STORE}/flags").stdout.splitlines()  # what the server runs with
    assert f'-retentionPeriod="{wanted["retention"]}"' in running, running
    assert f'-retention.maxDiskSpaceUsageBytes="{wanted["retention_size"]}"' in running, running
