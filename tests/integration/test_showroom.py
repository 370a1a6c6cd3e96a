"""Showrooms on the real stack, through the playbooks a developer runs (docs/showrooms.md).

A base context runs a copy of the shop in a namespace of the test's own; two branches (copies whose frontends say
different things) are deployed as showrooms beside it at once, then listed, expired by TTL, retired, and refused
when their name is bad or their namespaces are a context's. The tests of this module run in order on the showrooms
the module's fixture deploys: the TTL expiry retires the first, the retirement the second.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._release.showroom import showroom_name
from fixtures.deliver.support import (
    SlipwayError,
    client_for,
    configmap,
    context_inventory,
    grant_namespace,
    registry_pull_secret,
    run,
    system,
)

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop"
SYSTEMS = ["backend", "worker", "frontend"]
JOURNAL = "slipway-showrooms"
REAL_NODE = {"node_selector": {"slipway.io/node-kind": "real"},
             "tolerations": [{"key": "slipway.io/real-node", "operator": "Equal", "value": "true",
                              "effect": "NoSchedule"}]}
VALUES = {name: dict(REAL_NODE, replicas=1) for name in SYSTEMS}

GATEWAY_PORT = int(os.environ.get("SLIPWAY_GATEWAY_PORT", "18090"))
GATEWAY = {"name": "slipway", "namespace": "slipway-gateway"}

pytestmark = pytest.mark.slow


def ecosystem(folder, namespace, title=None):
    """A copy of the shop whose systems run in ``namespace``; ``title`` changes what the frontend serves (a branch)."""
    shutil.copytree(SHOP, folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in SYSTEMS:
        path = folder / name / "slipway.yml"
        path.write_text(path.read_text().replace("namespace: shop", f"namespace: {namespace}"))
    if title:
        page = folder / "frontend" / "www" / "index.html"
        page.write_text(page.read_text().replace("<title>Slipway shop</title>", f"<title>{title}</title>"))
    return folder


def playbook(book, inventory, variables, *args, timeout=900):
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory),
                           str(ROOT / "playbooks" / book), "-e", json.dumps(variables), *args],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout, check=False)


def passed(result):
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return result


def through_gateway(host, path):
    """The answer of the stack's gateway (docs/gateway.md) for ``host``, or None while it has none."""
    request = urllib.request.Request(f"http://127.0.0.1:{GATEWAY_PORT}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - a fixed http URL
            return answer.read().decode()
    except (urllib.error.URLError, OSError):
        return None


def wait_for(predicate, what, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except subprocess.CalledProcessError:  # the API server restarting under a shared stack: ask again
            value = None
        if value:
            return value
        time.sleep(2)
    pytest.fail(f"{what} did not happen within {timeout}s")


def items(kubectl, kind, namespace=None, selector=None):
    args = ["get", kind, "-o", "json"]
    args += ["-n", namespace] if namespace else []
    args += ["-l", selector] if selector else []
    return json.loads(kubectl(*args).stdout)["items"]


def journal(kubectl, context):
    records = [json.loads(i["data"]["release.json"])
               for i in items(kubectl, "configmaps", JOURNAL, f"slipway.io/context={context}")]
    return sorted(records, key=lambda r: r["revision"])


@pytest.fixture(scope="module")
def world(stack, stack_dir, kubectl, tmp_path_factory):
    """A base context running the shop in a namespace of its own, and two showrooms of two branches beside it."""
    tag = uuid.uuid4().hex[:6]
    tmp = tmp_path_factory.mktemp("showroom")
    namespace = grant_namespace(kubectl, f"t-shop-{tag}")
    kubectl("apply", "-f", "-", input=json.dumps(registry_pull_secret(stack_dir, "127.0.0.1:5001", namespace)))
    wait_for(lambda: kubectl("-n", namespace, "get", "sa", "default", check=False).returncode == 0, "default account")
    kubectl("-n", namespace, "patch", "sa", "default", "-p", '{"imagePullSecrets": [{"name": "slipway-registry"}]}')
    base = f"t-base-{tag}"
    password = (stack_dir / "secrets" / "registry-password").read_text().strip()
    base_inventory = context_inventory(tmp / "base-inventory", stack_dir, **{
        "slipway_context": base, "slipway_ecosystem_root": str(ecosystem(tmp / "base", namespace)),
        "slipway_systems": SYSTEMS, "slipway_system_values": VALUES, "slipway_reports_dir": str(tmp / "reports"),
        "slipway_gateway": dict(GATEWAY, hostnames={"frontend": f"base-{tag}.local"}),
        "slipway_registry_username": "slipway", "slipway_registry_password": password})
    for book in ("build.yml", "deliver.yml"):
        passed(playbook(book, base_inventory, {}))
    world = {"tag": tag, "namespace": namespace, "base": base, "tmp": tmp, "showrooms": {}}

    def deploy(name, title=None, *args):
        """Deploy branch ``name`` as a showroom; ``title``: its own copy of the shop (else the base's tree)."""
        root = tmp / f"branch-{showroom_name(name)}" if title else tmp / "base"
        if title and not root.exists():
            ecosystem(root, namespace, title)
        started = time.monotonic()
        result = playbook("showroom.yml", ROOT / "inventories" / "showroom", {
            "slipway_showroom": name, "slipway_ecosystem_root": str(root), "slipway_showroom_base": base,
            "slipway_reports_dir": str(tmp / "reports")}, *args)
        return result, time.monotonic() - started

    world["deploy"] = deploy
    for branch, title in ((f"Feature/A-{tag}", f"Shop branch A {tag}"), (f"feature-b-{tag}", f"Shop branch B {tag}")):
        result, seconds = deploy(branch, title)
        passed(result)
        name = showroom_name(branch)
        world["showrooms"][name] = {"branch": branch, "title": title, "namespace": f"{namespace}-{name}",
                                    "cold_seconds": seconds}
    yield world
    for name in world["showrooms"]:
        playbook("showroom_retire.yml", ROOT / "inventories" / "showroom", {"slipway_showroom": name})
    for selector in (f"slipway.io/context={base}", f"slipway.io/snapshot-of={base}"):
        kubectl("delete", "configmaps,secrets", "-n", "slipway-system", "-l", selector, check=False)
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_two_showrooms_of_different_branches_each_answer_with_their_own_version(world, kubectl):
    for name, room in world["showrooms"].items():
        host = f"{name}.showroom.local"
        page = wait_for(lambda host=host: through_gateway(host, "/"), f"the gateway's answer for {host}")
        assert f"<title>{room['title']}</title>" in page
        # the frontend reaches its backend by the usual name, in the showroom's namespace
        config = items(kubectl, "configmaps", room["namespace"])
        backend_url = next(c["data"]["BACKEND_URL"] for c in config if c["metadata"]["name"] == "frontend")
        assert backend_url == f"http://backend.{room['namespace']}.svc.cluster.local:8080"
        products = wait_for(lambda host=host: through_gateway(host, "/cgi-bin/api/products"),
                            "the frontend's proxy to the backend")
        assert json.loads(products)["products"]
        routes = items(kubectl, "httproutes", room["namespace"])
        assert [r["spec"]["hostnames"] for r in routes] == [[host]]
        conditions = {c["type"]: c["status"] for c in routes[0]["status"]["parents"][0]["conditions"]}
        assert conditions.items() >= {"Accepted": "True", "ResolvedRefs": "True"}.items()
    # the base answers as it did: a showroom takes nothing from it
    assert "<title>Slipway shop</title>" in through_gateway(f"base-{world['tag']}.local", "/")


def test_a_showroom_runs_the_branchs_frontend_and_the_base_contexts_other_images(world, kubectl):
    base = json.loads(items(kubectl, "configmaps", "slipway-system",
                            f"slipway.io/context={world['base']}")[-1]["data"]["release.json"])
    for name, room in world["showrooms"].items():
        record = journal(kubectl, f"showroom-{name}")[-1]
        assert record["showroom"]["branch"] == room["branch"] and record["showroom"]["base"] == world["base"]
        assert record["showroom"]["url"] == f"http://{name}.showroom.local/"
        for system_name in ("backend", "worker"):
            assert record["systems"][system_name]["images"] == base["systems"][system_name]["images"]
        assert record["systems"]["frontend"]["images"] != base["systems"]["frontend"]["images"]
        live = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
                for d in items(kubectl, "deployments", room["namespace"])}
        assert live["backend"] == base["systems"]["backend"]["images"]["backend"]
    frontends = {journal(kubectl, f"showroom-{name}")[-1]["systems"]["frontend"]["images"]["frontend"]
                 for name in world["showrooms"]}
    assert len(frontends) == 2


def test_a_showroom_redeployed_unchanged_writes_nothing(world, kubectl):
    name = next(iter(world["showrooms"]))
    before = journal(kubectl, f"showroom-{name}")
    room = world["showrooms"][name]
    result, seconds = world["deploy"](room["branch"], room["title"])
    passed(result)
    print(f"showroom {name}: deployed in {room['cold_seconds']:.0f}s cold, {seconds:.0f}s unchanged")  # with -s
    assert "changed=0" in result.stdout.split("PLAY RECAP")[-1]
    assert journal(kubectl, f"showroom-{name}") == before


def test_the_listing_tells_each_showrooms_branch_url_systems_and_age(world):
    result = passed(playbook("showrooms.yml", ROOT / "inventories" / "showroom", {}))
    for name, room in world["showrooms"].items():
        line = next(line for line in result.stdout.splitlines() if f'"msg": "{name}: ' in line)
        assert f"branch {room['branch']}" in line and f"http://{name}.showroom.local/" in line
        assert "(succeeded)" in line and "127.0.0.1:5001/frontend@sha256:" in line


def test_the_showroom_deployer_is_refused_in_the_base_contexts_namespaces(world, stack_dir):
    room = next(iter(world["showrooms"].values()))
    probe = configmap(f"probe-{uuid.uuid4().hex[:6]}", written="by the showroom deployer")
    client = client_for(stack_dir, "showroom-deployer")
    try:
        for namespace in (world["namespace"], "slipway-system", "shop"):
            with pytest.raises(SlipwayError, match="403") as refused:
                client.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body=probe)
            assert "forbidden" in refused.value.msg.lower()
        # the same identity may write in the showroom's own namespace: the refusal is the binding, not the request
        written = client.request("POST", f"/api/v1/namespaces/{room['namespace']}/configmaps", body=probe)
        client.request("DELETE", f"/api/v1/namespaces/{room['namespace']}/configmaps/{written['metadata']['name']}")
        # and there only what the generated deployer rules allow: no access rules (the built-in admin role would)
        binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "grab"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                   "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "someone"}]}
        with pytest.raises(SlipwayError, match="403"):
            client.request("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{room['namespace']}/rolebindings",
                           body=binding)
    finally:
        client.close()
    # and a whole delivery as the showroom deployer into the base's namespace is refused before anything is written
    with pytest.raises(SlipwayError, match="forbidden|403"):
        run(stack_dir, [system("intruder", world["namespace"], configmap("intruder", a="1"))],
            f"t-intruder-{world['tag']}", identity="showroom-deployer", journal_namespace=JOURNAL)


def test_ttl_expiry_retires_only_the_stale_showroom(world, kubectl):
    stale_name, fresh_name = list(world["showrooms"])
    # the clock is faked through the record: the stale showroom's last delivery was ten days ago
    ten_days_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 10 * 86400))
    for item in items(kubectl, "configmaps", JOURNAL, f"slipway.io/context=showroom-{stale_name}"):
        record = dict(json.loads(item["data"]["release.json"]), started_at=ten_days_ago, finished_at=ten_days_ago)
        kubectl("-n", JOURNAL, "patch", "configmap", item["metadata"]["name"], "--type=merge", "-p",
                json.dumps({"data": {"release.json": json.dumps(record)}}))
    inventory = ROOT / "inventories" / "showroom"
    checked = passed(playbook("showroom_expire.yml", inventory, {"slipway_showroom_ttl": 7 * 86400}, "--check"))
    would = next(line for line in checked.stdout.splitlines() if "would retire: " in line)
    assert stale_name in would and fresh_name not in would
    assert items(kubectl, "namespaces", selector=f"slipway.io/showroom={stale_name}")  # --check deleted nothing
    passed(playbook("showroom_expire.yml", inventory, {"slipway_showroom_ttl": 7 * 86400}))
    wait_for(lambda: not items(kubectl, "namespaces", selector=f"slipway.io/showroom={stale_name}"),
             "the stale showroom's namespaces to go", timeout=180)
    assert not journal(kubectl, f"showroom-{stale_name}")
    assert items(kubectl, "namespaces", selector=f"slipway.io/showroom={fresh_name}")
    assert journal(kubectl, f"showroom-{fresh_name}")
    world["showrooms"].pop(stale_name)


def test_a_retired_showroom_leaves_nothing_and_touches_nothing_else(world, kubectl):
    name, room = next(iter(world["showrooms"].items()))
    context = f"showroom-{name}"
    base_before = items(kubectl, "deployments", world["namespace"])
    passed(playbook("showroom_retire.yml", ROOT / "inventories" / "showroom", {"slipway_showroom": name}))
    wait_for(lambda: kubectl("get", "namespace", room["namespace"], check=False).returncode != 0,
             "the showroom's namespace to go", timeout=180)
    for kinds, selector in (("configmaps,secrets", f"slipway.io/context={context}"),
                            ("configmaps,secrets", f"slipway.io/snapshot-of={context}")):
        assert not items(kubectl, kinds, JOURNAL, selector)
    assert kubectl("-n", JOURNAL, "get", "lease", f"slipway-lock-{context}", check=False).returncode != 0
    assert not items(kubectl, "namespaces", selector=f"slipway.io/showroom={name}")
    after = items(kubectl, "deployments", world["namespace"])
    assert [d["metadata"]["uid"] for d in after] == [d["metadata"]["uid"] for d in base_before]
    world["showrooms"].pop(name)


def showroom_state(world, kubectl):
    """What a showroom deployment could have written: reports, showroom namespaces, showroom journals."""
    return (sorted(os.listdir(world["tmp"] / "reports")),
            sorted(n["metadata"]["name"] for n in items(kubectl, "namespaces", selector="slipway.io/showroom")),
            sorted(c["metadata"]["name"] for c in items(kubectl, "configmaps", JOURNAL)))


@pytest.mark.parametrize("name", ["///", "---", "日本"])
def test_a_name_that_is_no_label_is_refused_before_anything_is_written(world, kubectl, name):
    before = showroom_state(world, kubectl)
    result, _seconds = world["deploy"](name)
    assert result.returncode != 0
    assert "showroom name refused" in result.stdout and "has no letter or digit" in result.stdout
    assert showroom_state(world, kubectl) == before


def test_a_showroom_whose_namespaces_are_a_contexts_is_refused_before_anything_is_written(world, stack_dir,
                                                                                          kubectl):
    # a context (staging, say) whose systems run in <namespace>-staging: a showroom named staging would take it
    taken = grant_namespace(kubectl, f"{world['namespace']}-staging")
    context = f"t-staging-{world['tag']}"
    try:
        run(stack_dir, [system("app", taken, configmap("app", a="1"))], context)
        before = showroom_state(world, kubectl)
        result, _seconds = world["deploy"]("staging")
        assert result.returncode != 0
        assert f"{taken} (for {world['namespace']}) belongs to context {context}" in result.stdout
        assert showroom_state(world, kubectl) == before  # not even the build ran
        labels = json.loads(kubectl("get", "namespace", taken, "-o", "json").stdout)["metadata"].get("labels") or {}
        assert "slipway.io/showroom" not in labels
        assert kubectl("-n", taken, "get", "rolebinding", "slipway:showroom-deployer", check=False).returncode != 0
    finally:
        for selector in (f"slipway.io/context={context}", f"slipway.io/snapshot-of={context}"):
            kubectl("delete", "configmaps,secrets", "-n", "slipway-system", "-l", selector, check=False)
        kubectl("delete", "namespace", taken, "--wait=false", check=False)
