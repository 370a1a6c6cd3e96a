"""A provisioned cluster as a delivery context (issue 13's ``cluster`` scenario, issue 15's gateway on it).

On the session's lab cluster (``lab_cluster``: ``playbooks/provision.yml`` with the gateway add-on): the cluster's
Gateway is programmed by Traefik on every worker; ``playbooks/site.yml`` builds, tests and delivers the example shop
to it with a context inventory made from ``inventories/cluster-example`` (the lab's machines, the deployer's
credentials provisioning wrote, the stack's registry); the frontend answers through the gateway by host name with the
backend's products; a second ``site.yml`` changes nothing.

The shop's objects, its journal and lock are removed at the end: the cluster stays as provisioning left it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import yaml
from fixtures.provision.support import (
    CREDENTIALS,
    INVENTORY,
    LAB_NAME,
    PLAYBOOK_BIN,
    ROOT,
    STACK,
    PlaybookRun,
    kubectl,
    ready_nodes,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow]

EXAMPLE = ROOT / "inventories" / "cluster-example"
GATEWAY_NAMESPACE, GATEWAY = "slipway-gateway", "slipway"
CONTEXT = f"lab-{LAB_NAME or 'default'}"


def conditions(status: dict) -> dict[str, str]:
    """type -> status of the conditions in an object's status (or in a route's status.parents[] entry)."""
    return {c["type"]: c["status"] for c in status.get("conditions", [])}


def workers() -> dict[str, str]:
    """kube_node host -> address, from the lab's inventory, for the hosts that are nodes of the cluster (the lab
    keeps a machine test_provision.py added and removed again)."""
    hosts = yaml.safe_load((INVENTORY / "hosts.yml").read_text())["all"]
    nodes = ready_nodes()
    return {name: hosts["hosts"][name]["ansible_host"] for name in hosts["children"]["kube_node"]["hosts"]
            if name in nodes}


@pytest.fixture(scope="module")
def cluster_context(lab_cluster, tmp_path_factory):
    """The example cluster context pointed at the lab: its hosts, the credentials provision.yml wrote, and what
    cluster-example says about systems, the Kube API and the gateway; the lab's registry and secrets as extra vars."""
    inventory = tmp_path_factory.mktemp("cluster-context")
    # The lab's machines and groups, and the controller the delivery steps run on, as in cluster-example's hosts.yml.
    hosts = yaml.safe_load((INVENTORY / "hosts.yml").read_text())
    hosts["all"]["hosts"]["localhost"] = yaml.safe_load((EXAMPLE / "hosts.yml").read_text())["all"]["hosts"][
        "localhost"]
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (inventory / ".credentials").symlink_to(CREDENTIALS)
    (inventory / "group_vars" / "all").mkdir(parents=True)
    for concern in ("context.yml", "kube.yml", "gateway.yml"):
        shutil.copy(EXAMPLE / "group_vars" / "all" / concern, inventory / "group_vars" / "all" / concern)
    reports = tmp_path_factory.mktemp("cluster-reports")
    overrides = reports / "lab.yml"  # outside the inventory folder, which Ansible would read as an inventory source
    overrides.write_text(yaml.safe_dump({
        "slipway_context": CONTEXT,
        "slipway_registry": os.environ["SLIPWAY_REGISTRY"],
        "slipway_registry_username": "slipway",
        "slipway_registry_password": (STACK / "secrets" / "registry-password").read_text().strip(),
        "slipway_reports_dir": str(reports),
    }))
    overrides.chmod(0o600)
    yield inventory, overrides
    # The cluster as provisioning left it: the shop's objects, its journal and its lock go; the namespace stays.
    kubectl("-n", "shop", "delete", "deployments,services,configmaps,httproutes", "-l",
            "app.kubernetes.io/part-of=shop", "--wait=false", check=False)
    for selector in (f"slipway.io/context={CONTEXT}", f"slipway.io/snapshot-of={CONTEXT}"):
        kubectl("-n", "slipway-system", "delete", "configmaps,secrets", "-l", selector, check=False)
    kubectl("-n", "slipway-system", "delete", "lease", f"slipway-lock-{CONTEXT}", "--ignore-not-found", check=False)


def site(cluster_context) -> PlaybookRun:
    inventory, overrides = cluster_context
    result = subprocess.run([str(PLAYBOOK_BIN), "-i", str(inventory), str(ROOT / "playbooks" / "site.yml"),
                             "-e", f"@{overrides}"], capture_output=True, text=True, check=False, timeout=1800,
                            cwd=ROOT, env=dict(os.environ, ANSIBLE_NOCOLOR="1", SLIPWAY_ECOSYSTEM_ROOT=os.environ.get(
                                "SLIPWAY_ECOSYSTEM_ROOT", str(ROOT / "examples" / "shop"))))
    return PlaybookRun(result.returncode, result.stdout + result.stderr, 0.0)


@pytest.fixture(scope="module")
def delivered(cluster_context) -> PlaybookRun:
    run = site(cluster_context)
    assert run.returncode == 0, run.output[-6000:]
    return run


def releases() -> list[str]:
    found = kubectl("-n", "slipway-system", "get", "configmaps", "-l", f"slipway.io/context={CONTEXT}", "-o", "name")
    return sorted(found.stdout.split())


def through_gateway(address: str, host: str, path: str) -> tuple[int, bytes]:
    """One answer through a worker's gateway. Traefik serves a route a moment after it reports it accepted (its
    load balancer learns the ready endpoints from the next EndpointSlice event; ``make demo`` retries the same way):
    a 503 is asked again for up to 30 s, and the last answer is returned."""
    port = yaml.safe_load((EXAMPLE / "group_vars" / "all" / "gateway.yml").read_text())["slipway_cluster_gateway_port"]
    request = urllib.request.Request(f"http://{address}:{port}{path}", headers={"Host": host})
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - the lab's own machines
                return answer.status, answer.read()
        except urllib.error.HTTPError as refused:
            if refused.code != 503 or time.monotonic() > deadline:
                return refused.code, refused.read()
        time.sleep(1)


def test_the_gateway_is_programmed_by_traefik_on_every_worker(lab_cluster):
    gateway = json.loads(kubectl("-n", GATEWAY_NAMESPACE, "get", "gateway", GATEWAY, "-o", "json").stdout)
    assert conditions(gateway["status"])["Programmed"] == "True", gateway.get("status")
    assert [a["value"] for a in gateway["status"]["addresses"]] == [next(iter(workers().values()))]
    pods = json.loads(kubectl("-n", GATEWAY_NAMESPACE, "get", "pods", "-o", "json").stdout)["items"]
    ready = {p["spec"]["nodeName"] for p in pods if conditions(p["status"]).get("Ready") == "True"}
    assert ready == set(workers())


def test_site_delivers_the_shop_and_its_frontend_answers_through_the_gateway(delivered):
    route = json.loads(kubectl("-n", "shop", "get", "httproute", "frontend", "-o", "json").stdout)
    parents = route["status"]["parents"]
    assert [(p["parentRef"]["namespace"], p["parentRef"]["name"]) for p in parents] == [(GATEWAY_NAMESPACE, GATEWAY)]
    assert conditions(parents[0]) == {"Accepted": "True", "ResolvedRefs": "True"}, parents
    host = yaml.safe_load((EXAMPLE / "group_vars" / "all" / "gateway.yml").read_text())["slipway_gateway"][
        "hostnames"]["frontend"]
    backend_products = {"tea", "mug", "map"}
    for worker, address in workers().items():
        status, page = through_gateway(address, host, "/")
        assert status == 200, (worker, page[:200])
        status, body = through_gateway(address, host, "/cgi-bin/api/products")
        assert status == 200, (worker, body[:200])
        assert {p["sku"] for p in json.loads(body)["products"]} == backend_products, (worker, body[:400])


def test_a_second_site_changes_nothing(delivered, cluster_context):
    before = releases()
    again = site(cluster_context)
    assert again.returncode == 0, again.output[-6000:]
    assert again.changed_hosts() == {}, again.output[-6000:]
    assert releases() == before
