"""Rollback against the real API server (issue 6, R12): automatic and manual, check mode, history, kill -9,
a failing health gate, and the Lease held from a failed delivery through its automatic rollback.

Every test works in its own namespace and delivery context, delivers and rolls back as the least-privilege
deployer, and checks the cluster with kubectl as admin, independently of what the engine reports.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time

import pytest
from fixtures.deliver.support import (
    ROOT,
    Journal,
    SlipwayError,
    client_for,
    configmap,
    deployment,
    live,
    resource_versions,
    roll_back,
    run,
    secret,
    service,
    system,
)

assert ROOT  # fixtures.deliver.support has put the collection on sys.path
from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Options  # noqa: E402
from ansible_collections.slipway.platform.plugins.module_utils._release.rollback import (  # noqa: E402
    deliver_or_roll_back,
)

CONFIG_DIGEST = "slipway.io/config-digest"


def journal(stack_dir, context):
    client = client_for(stack_dir, "admin")
    try:
        return Journal(client, context).records()
    finally:
        client.close()


def app(ns, version, extra=(), stuck=False, min_ready=0):
    """One system: config + secret read by a deployment (envFrom), and a service."""
    dep = deployment("web", image=f"127.0.0.1:5001/web:{version}", replicas=1)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    container["envFrom"] = [{"configMapRef": {"name": "web-config"}}, {"secretRef": {"name": "web-secret"}}]
    if stuck:
        dep["spec"]["progressDeadlineSeconds"] = 3
        dep["spec"]["template"]["spec"]["nodeSelector"] = {"slipway.io/nowhere": "true"}
    if min_ready:
        dep["spec"]["minReadySeconds"] = min_ready
    return system("app", ns, configmap("web-config", version=version, colour=f"colour-{version}"),
                  secret("web-secret", token=f"SENTINEL-{version}-token"), dep, service("web"), *extra)


def state(kubectl, ns):
    """What the cluster runs, read as admin: config, secret values, image, config digest, object names."""
    dep = live(kubectl, "deployment", ns, "web")
    names = json.loads(kubectl("get", "configmaps,secrets,deployments,services", "-n", ns, "-l",
                               "app.kubernetes.io/managed-by=slipway", "-o", "json").stdout)["items"]
    return {
        "config": live(kubectl, "configmap", ns, "web-config")["data"],
        "secret": {k: base64.b64decode(v).decode()
                   for k, v in live(kubectl, "secret", ns, "web-secret")["data"].items()},
        "image": dep["spec"]["template"]["spec"]["containers"][0]["image"],
        "config_digest": dep["spec"]["template"]["metadata"]["annotations"][CONFIG_DIGEST],
        "objects": sorted(f"{i['kind']}/{i['metadata']['name']}" for i in names),
    }


def wait_ready(kubectl, ns, name="web", timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dep = live(kubectl, "deployment", ns, name)
        status = dep.get("status") or {}
        if status.get("observedGeneration", 0) >= dep["metadata"]["generation"] and \
                status.get("updatedReplicas") == status.get("availableReplicas") == dep["spec"]["replicas"] \
                and status.get("replicas") == dep["spec"]["replicas"]:
            return dep
        time.sleep(0.5)
    raise AssertionError(f"deployment {ns}/{name} did not settle: {dep.get('status')}")


def test_a_failed_delivery_rolls_back_automatically_to_the_last_good_release(stack_dir, ns, context, kubectl):
    run(stack_dir, [app(ns, "a")], context)
    run(stack_dir, [app(ns, "b")], context)
    good = state(kubectl, ns)
    client = client_for(stack_dir)
    try:
        with pytest.raises(SlipwayError) as err:
            deliver_or_roll_back(client, [app(ns, "c", stuck=True)],
                                 Options(context=context, wait_timeout=90, lock_duration=10), on_failure="rollback")
    finally:
        client.close()
    message = err.value.msg
    assert "ProgressDeadlineExceeded" in message  # the first story: why the delivery failed
    assert "Rolled back automatically to release 2 (recorded as revision 4)" in message  # the second one
    assert err.value.details["rollback"]["rollback"]["to"] == 2
    records = journal(stack_dir, context)
    assert [(r["revision"], r["outcome"]) for r in records] == [(1, "succeeded"), (2, "succeeded"), (3, "failed"),
                                                                (4, "succeeded")]
    assert records[3]["action"]["kind"] == "rollback" and records[3]["action"]["to"] == 2
    assert records[3]["action"]["from"] == 3
    assert records[3]["message"].startswith("rollback to 2 (app): automatic, release 3 failed")
    assert records[3]["actor"]["user"]
    wait_ready(kubectl, ns)
    assert state(kubectl, ns) == good
    assert "SENTINEL" not in json.dumps(err.value.to_result()) + json.dumps(records)


def test_manual_rollback_to_a_then_to_b_restores_config_secrets_and_prunes(stack_dir, ns, context, kubectl):
    run(stack_dir, [app(ns, "a")], context)
    release_a = state(kubectl, ns)
    run(stack_dir, [app(ns, "b", extra=[configmap("added-in-b", x="1")]),
                    system("newcomer", ns, configmap("newcomer", y="1"))], context)
    release_b = state(kubectl, ns)
    assert release_b["config_digest"] != release_a["config_digest"]
    assert "ConfigMap/added-in-b" in release_b["objects"] and "ConfigMap/newcomer" in release_b["objects"]

    to_a = roll_back(stack_dir, context, revision=1, reason="ticket 42")
    assert to_a["changed"] and to_a["revision"] == 3 and to_a["rollback"]["removed"] == ["newcomer"]
    wait_ready(kubectl, ns)
    assert state(kubectl, ns) == release_a  # config, secret, image, digest; added objects pruned
    records = journal(stack_dir, context)
    assert records[-1]["message"] == "rollback to 1: ticket 42"
    assert sorted(records[-1]["systems"]) == ["app"]

    to_b = roll_back(stack_dir, context, revision=2)
    assert to_b["changed"] and to_b["revision"] == 4
    wait_ready(kubectl, ns)
    assert state(kubectl, ns) == release_b
    assert sorted(journal(stack_dir, context)[-1]["systems"]) == ["app", "newcomer"]

    again = roll_back(stack_dir, context, revision=2)  # already there: nothing to do, nothing recorded
    assert again["changed"] is False and again["writes"] == 0
    assert [r["revision"] for r in journal(stack_dir, context)] == [1, 2, 3, 4]
    redelivery = run(stack_dir, [app(ns, "b", extra=[configmap("added-in-b", x="1")]),
                                 system("newcomer", ns, configmap("newcomer", y="1"))], context)[0]
    assert redelivery["changed"] is False  # a rollback lands exactly on what the delivery applied


def test_default_rollback_goes_to_the_previous_distinct_good_release(stack_dir, ns, context, kubectl):
    run(stack_dir, [app(ns, "a")], context)
    run(stack_dir, [app(ns, "b")], context)
    first = roll_back(stack_dir, context)
    assert first["rollback"]["to"] == 1
    wait_ready(kubectl, ns)
    assert state(kubectl, ns)["config"]["version"] == "a"
    # rollback of the rollback: revision 3 (= A) is current, 2 (= B) is the newest good one that differs
    second = roll_back(stack_dir, context)
    assert second["rollback"]["to"] == 2 and second["revision"] == 4
    wait_ready(kubectl, ns)
    assert state(kubectl, ns)["config"]["version"] == "b"


def test_rollback_of_one_system_leaves_the_others_alone(stack_dir, ns, context, kubectl):
    run(stack_dir, [app(ns, "a"), system("other", ns, configmap("other", v="1"))], context)
    run(stack_dir, [app(ns, "b"), system("other", ns, configmap("other", v="2"))], context)
    result = roll_back(stack_dir, context, systems=["app"])
    assert result["rollback"]["to"] == 1
    wait_ready(kubectl, ns)
    assert state(kubectl, ns)["config"]["version"] == "a"
    assert live(kubectl, "configmap", ns, "other")["data"] == {"v": "2"}
    assert journal(stack_dir, context)[-1]["systems"]["other"]["result"] == "carried"


def test_rollback_past_the_kept_history_is_an_explicit_error(stack_dir, ns, context, kubectl):
    run(stack_dir, [app(ns, "a")], context)
    run(stack_dir, [app(ns, "b")], context)
    run(stack_dir, [app(ns, "c")], context)
    before = resource_versions(kubectl, ns)
    with pytest.raises(SlipwayError) as err:
        roll_back(stack_dir, context, revision=99)
    assert "revisions available: 1 (succeeded), 2 (succeeded), 3 (succeeded)" in err.value.msg
    # release 1 leaves the kept history (as a history limit would remove it)
    kubectl("delete", "configmap", f"slipway-release-{context}-000001", "-n", "slipway-system")
    with pytest.raises(SlipwayError) as err:
        roll_back(stack_dir, context, revision=1)
    assert "not in the journal" in err.value.msg
    assert "revisions available: 2 (succeeded), 3 (succeeded)" in err.value.msg
    assert err.value.details["available"] == [2, 3]
    assert resource_versions(kubectl, ns) == before
    assert [r["revision"] for r in journal(stack_dir, context)] == [2, 3]


def test_check_mode_rollback_predicts_and_changes_nothing(stack_dir, ns, context, kubectl):
    run(stack_dir, [app(ns, "a")], context)
    run(stack_dir, [app(ns, "b", extra=[configmap("added-in-b", x="1")])], context)
    wait_ready(kubectl, ns)
    before = resource_versions(kubectl, ns)
    lease_before = kubectl("get", "lease", f"slipway-lock-{context}", "-n", "slipway-system", "-o",
                           "jsonpath={.metadata.resourceVersion}").stdout
    predicted = roll_back(stack_dir, context, revision=1, check_mode=True, diff=True)
    assert predicted["changed"] and predicted["writes"] == 0
    assert sorted((o["kind"], o["name"], o["action"]) for o in predicted["objects"]) == [
        ("ConfigMap", "web-config", "update"), ("Deployment", "web", "update"), ("Secret", "web-secret", "update")]
    assert predicted["pruned"] == [f"ConfigMap {ns}/added-in-b"]
    assert "SENTINEL" not in json.dumps(predicted)
    assert resource_versions(kubectl, ns) == before
    assert kubectl("get", "lease", f"slipway-lock-{context}", "-n", "slipway-system", "-o",
                   "jsonpath={.metadata.resourceVersion}").stdout == lease_before
    assert [r["revision"] for r in journal(stack_dir, context)] == [1, 2]
    real = roll_back(stack_dir, context, revision=1)
    assert sorted((o["kind"], o["name"], o["action"]) for o in real["objects"]) == \
        sorted((o["kind"], o["name"], o["action"]) for o in predicted["objects"])


KILLABLE = """
import json, sys
sys.path.insert(0, {fixtures!r})
import support  # noqa: F401  (puts the collection on sys.path)
from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Options
from ansible_collections.slipway.platform.plugins.module_utils._release.rollback import rollback
client = support.client_for({stack_dir!r})
rollback(client, Options(context={context!r}, lock_duration=4, wait_timeout=300, holder="doomed rollback"),
         revision=1)
"""


def test_a_killed_rollback_is_completed_by_the_next_run(stack_dir, ns, context, kubectl):
    run(stack_dir, [app(ns, "a", min_ready=12)], context)
    run(stack_dir, [app(ns, "b")], context)
    release_a_config = {"version": "a", "colour": "colour-a"}
    script = KILLABLE.format(fixtures=str(ROOT / "tests" / "integration" / "fixtures" / "deliver"),
                             stack_dir=str(stack_dir), context=context)
    victim = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    deadline = time.monotonic() + 60
    while True:  # killed once it has written the new pod template and is waiting for it (minReadySeconds)
        assert victim.poll() is None, victim.stdout.read()
        assert time.monotonic() < deadline, "the rollback never started rolling out"
        if live(kubectl, "deployment", ns, "web")["spec"].get("minReadySeconds") == 12:
            break
        time.sleep(0.1)
    victim.kill()  # SIGKILL: no lock release, no journal record
    victim.wait()
    assert [r["revision"] for r in journal(stack_dir, context)] == [1, 2]
    start = time.monotonic()
    result = roll_back(stack_dir, context, revision=1, lock_timeout=60, holder="rescue")
    assert result["lock_taken_over_from"] == "doomed rollback"
    assert time.monotonic() - start < 60
    records = journal(stack_dir, context)
    assert [(r["revision"], r["outcome"]) for r in records] == [(1, "succeeded"), (2, "succeeded"), (3, "succeeded")]
    assert records[-1]["action"]["to"] == 1
    assert live(kubectl, "configmap", ns, "web-config")["data"] == release_a_config
    wait_ready(kubectl, ns)


def version_gate(stack_dir, ns, bad="c"):
    """A command gate that reads what the cluster serves (as admin): it fails while version ``bad`` is live."""
    script = (f"v=$(kubectl -n {ns} get configmap web-config -o jsonpath={{.data.version}}); "
              f'echo "serving $v"; test "$v" != {bad}')
    return {"command": ["sh", "-c", script], "env": {"KUBECONFIG": str(stack_dir / "kube" / "admin.kubeconfig")}}


def gated(ns, version, gate, **kwargs):
    return dict(app(ns, version, **kwargs), health=gate)


def test_a_failing_health_gate_rolls_back_automatically_to_the_last_good_release(stack_dir, ns, context, kubectl):
    gate = version_gate(stack_dir, ns)
    first = run(stack_dir, [gated(ns, "a", gate)], context)[0]
    assert first["systems"][0]["health"]["state"] == "passed"
    run(stack_dir, [gated(ns, "b", gate)], context)
    good = state(kubectl, ns)
    client = client_for(stack_dir)
    try:
        with pytest.raises(SlipwayError) as err:  # C's pods become Ready (kwok); its gate says no
            deliver_or_roll_back(client, [gated(ns, "c", gate)],
                                 Options(context=context, wait_timeout=90, lock_duration=10), on_failure="rollback")
    finally:
        client.close()
    message = err.value.msg
    assert "system app: health gate command sh -c" in message and "exit 1; output: serving c" in message
    assert "Rolled back automatically to release 2 (recorded as revision 4)" in message
    row = err.value.details["systems"][0]
    assert row["result"] == "failed" and row["health"]["state"] == "failed"
    back = err.value.details["rollback"]
    assert back["rollback"]["to"] == 2
    assert back["systems"][0]["health"]["state"] == "passed"  # the rollback checked release 2's own gate
    records = journal(stack_dir, context)
    assert [(r["revision"], r["outcome"]) for r in records] == [(1, "succeeded"), (2, "succeeded"), (3, "failed"),
                                                                (4, "succeeded")]
    assert "system app: health gate command" in records[2]["message"]
    assert records[3]["message"].startswith("rollback to 2 (app): automatic, release 3 failed: delivery to")
    assert "health gate" in records[3]["message"]
    assert records[1]["systems"]["app"]["health"][0]["command"][:2] == ["sh", "-c"]
    wait_ready(kubectl, ns)
    assert state(kubectl, ns) == good
    # the rollback landed exactly on B: redelivering B writes nothing and checks nothing
    again = run(stack_dir, [gated(ns, "b", gate)], context)[0]
    assert again["changed"] is False and again["writes"] == 0
    assert again["systems"][0]["health"] == {"state": "not run", "reason": "nothing to deliver", "gates": []}
    assert "SENTINEL" not in json.dumps(err.value.to_result()) + json.dumps(records)


def lease(kubectl, context):
    return json.loads(kubectl("get", "lease", f"slipway-lock-{context}", "-n", "slipway-system", "-o",
                              "json").stdout)["spec"]


def test_a_delivery_waiting_for_the_lock_gets_it_only_after_the_automatic_rollback(
        stack_dir, ns, context, kubectl):
    run(stack_dir, [app(ns, "a")], context)
    run(stack_dir, [app(ns, "b")], context)
    transitions = lease(kubectl, context).get("leaseTransitions", 0)
    outcome, waiting_lines = {}, []

    def failing_delivery():
        client = client_for(stack_dir)
        try:
            deliver_or_roll_back(client, [gated(ns, "c", {"command": ["sh", "-c", "sleep 3; exit 1"]})],
                                 Options(context=context, wait_timeout=90, lock_duration=10,
                                         holder="failing delivery"), on_failure="rollback")
        except SlipwayError as exc:
            outcome["error"] = exc
        finally:
            client.close()

    first = threading.Thread(target=failing_delivery)
    first.start()
    deadline = time.monotonic() + 60
    while lease(kubectl, context).get("holderIdentity") != "failing delivery":
        assert time.monotonic() < deadline and first.is_alive(), f"the delivery never took the lock: {outcome}"
        time.sleep(0.1)
    second = run(stack_dir, [system("other", ns, configmap("other", v="1"))], context, holder="second delivery",
                 lock_timeout=120, progress=waiting_lines.append)[0]  # waits while C fails and rolls back
    first.join(timeout=120)
    assert "Rolled back automatically to release 2 (recorded as revision 4)" in outcome["error"].msg
    assert any(line.startswith("waiting for the lock held by failing delivery") for line in waiting_lines)
    assert second["revision"] == 5
    records = journal(stack_dir, context)
    assert [(r["revision"], r["outcome"], (r.get("action") or {}).get("kind")) for r in records] == [
        (1, "succeeded", None), (2, "succeeded", None), (3, "failed", None), (4, "succeeded", "rollback"),
        (5, "succeeded", None)]
    assert records[4]["systems"]["app"]["result"] == "carried" and records[4]["systems"]["other"]
    # the failing delivery took the Lease once and kept it through its rollback; then the second one took it
    spec = lease(kubectl, context)
    assert spec.get("leaseTransitions", 0) == transitions + 2 and not spec.get("holderIdentity")
