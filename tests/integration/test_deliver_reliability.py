"""The delivery engine against the real API server: the reliability cases of docs (R1-R16).

Every test works in its own namespace and its own delivery context (journal and lock are per context),
delivers as the least-privilege deployer, and checks the cluster with kubectl as admin, independently of
what the engine says about itself.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
from fixtures.deliver.support import (
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


def journal_revisions(stack_dir, context):
    client = client_for(stack_dir, "admin")
    try:
        return [r["revision"] for r in Journal(client, context).records()]
    finally:
        client.close()


def shop(ns, image="127.0.0.1:5001/app:1", greeting="hello", password="s3cret-one", replicas=1):  # noqa: S107
    return [system("backend", ns, configmap("backend-config", greeting=greeting),
                   secret("backend-secret", password=password),
                   deployment("backend", image=image, replicas=replicas), service("backend"))]


def test_redelivery_is_ok_with_zero_writes_and_no_new_revision(stack_dir, ns, context, kubectl):
    first = run(stack_dir, shop(ns), context)[0]
    assert first["changed"] and first["revision"] == 1
    assert first["summary"]["created"] == 4
    assert live(kubectl, "deployment", ns, "backend")["status"].get("availableReplicas") == 1
    before = resource_versions(kubectl, ns)
    second = run(stack_dir, shop(ns), context)[0]
    assert second["changed"] is False
    assert second["writes"] == 0
    assert second["summary"] == {"created": 0, "updated": 0, "unchanged": 4, "pruned": 0}
    assert resource_versions(kubectl, ns) == before
    assert journal_revisions(stack_dir, context) == [1]


def test_check_mode_predicts_exactly_and_mutates_nothing(stack_dir, ns, context, kubectl):
    run(stack_dir, shop(ns), context)
    changed = shop(ns, image="127.0.0.1:5001/app:2", greeting="bonjour")
    before = resource_versions(kubectl, ns)
    predicted = run(stack_dir, changed, context, check_mode=True, diff=True)[0]
    assert resource_versions(kubectl, ns) == before
    assert journal_revisions(stack_dir, context) == [1]
    assert predicted["changed"] and predicted["writes"] == 0
    predicted_objects = sorted((o["kind"], o["name"], o["action"]) for o in predicted["objects"])
    assert predicted_objects == [("ConfigMap", "backend-config", "update"), ("Deployment", "backend", "update")]
    real = run(stack_dir, changed, context)[0]
    assert sorted((o["kind"], o["name"], o["action"]) for o in real["objects"]) == predicted_objects
    assert live(kubectl, "configmap", ns, "backend-config")["data"] == {"greeting": "bonjour"}
    again = run(stack_dir, changed, context, check_mode=True)[0]
    assert again["changed"] is False and again["objects"] == []


def test_check_mode_of_a_first_delivery_creates_nothing(stack_dir, ns, context, kubectl):
    predicted = run(stack_dir, shop(ns), context, check_mode=True)[0]
    assert predicted["changed"] and predicted["summary"]["created"] == 4
    assert kubectl("get", "configmap", "backend-config", "-n", ns, check=False).returncode != 0
    assert journal_revisions(stack_dir, context) == []


def test_secret_string_data_is_normalised_and_a_removed_key_is_removed(stack_dir, ns, context, kubectl):
    two_keys = [system("app", ns, secret("creds", user="admin", password="pw-1"))]
    run(stack_dir, two_keys, context)
    again = run(stack_dir, two_keys, context)[0]
    assert again["changed"] is False
    one_key = [system("app", ns, secret("creds", user="admin"))]
    result = run(stack_dir, one_key, context)[0]
    assert result["changed"]
    data = live(kubectl, "secret", ns, "creds")["data"]
    assert data == {"user": base64.b64encode(b"admin").decode()}


def test_changing_only_a_secret_value_reports_changed_without_showing_it(stack_dir, ns, context, kubectl):
    run(stack_dir, shop(ns, password="SENTINEL-first-7f3a"), context)
    result = run(stack_dir, shop(ns, password="SENTINEL-second-9c1d"), context, diff=True)[0]
    assert result["changed"]
    assert [(o["kind"], o["action"]) for o in result["objects"]] == [("Secret", "update")]
    text = json.dumps(result)
    assert "SENTINEL" not in text
    assert base64.b64encode(b"SENTINEL-second-9c1d").decode() not in text
    diff = result["diff"][0]
    assert diff["before"]["data"]["password"] != diff["after"]["data"]["password"]
    assert diff["after"]["data"]["password"].startswith("<redacted hmac:")


def test_immutable_field_change_is_a_clean_error_and_writes_nothing(stack_dir, ns, context, kubectl):
    run(stack_dir, [system("app", ns, configmap("c", a="1"), deployment("web", labels={"app": "web"}))], context)
    before = resource_versions(kubectl, ns)
    changed = deployment("web", labels={"app": "web", "tier": "front"})
    changed["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "front"}}
    with pytest.raises(SlipwayError) as err:
        run(stack_dir, [system("app", ns, configmap("c", a="2"), changed)], context)
    assert "immutable" in err.value.msg and "spec.selector" in err.value.msg
    assert "system app, deploy/main.yaml.j2 (document 2), Deployment" in err.value.msg
    assert resource_versions(kubectl, ns) == before  # the ConfigMap change was not written either
    assert journal_revisions(stack_dir, context) == [1]


def test_invalid_and_empty_manifests_are_rejected_before_any_write(stack_dir, ns, context, kubectl):
    bad = system("app", ns, configmap("fine", a="1"), None, {"apiVersion": "v1", "metadata": {"name": "x"}})
    with pytest.raises(SlipwayError) as err:
        run(stack_dir, [bad], context)
    assert "system app, deploy/main.yaml.j2 (document 3): missing or empty 'kind'" in err.value.msg
    schema = deployment("web")
    schema["spec"]["replicaz"] = 3
    with pytest.raises(SlipwayError) as err:
        run(stack_dir, [system("app", ns, configmap("fine", a="1"), schema)], context)
    assert "replicaz" in err.value.msg and "Deployment" in err.value.msg
    unknown = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    with pytest.raises(SlipwayError, match="unknown kind 'Gadget'"):
        run(stack_dir, [system("app", ns, configmap("fine", a="1"), unknown)], context)
    assert kubectl("get", "configmap", "fine", "-n", ns, check=False).returncode != 0
    assert journal_revisions(stack_dir, context) == []


@pytest.mark.parametrize("case", ["closed port", "wrong CA"])
def test_unreachable_api_or_wrong_ca_fails_fast_and_records_nothing(stack_dir, ns, context, case):
    connection = {"api_url": "https://127.0.0.1:1"} if case == "closed port" else {
        "ca_cert": str(stack_dir / "pki" / "deployer.crt")}  # a certificate that did not sign the server's
    start = time.monotonic()
    with pytest.raises(SlipwayError) as err:
        run(stack_dir, shop(ns), context, connection=connection)
    assert time.monotonic() - start < 10
    expected = "cannot reach the Kubernetes API" if case == "closed port" else "TLS handshake"
    assert expected in err.value.msg
    assert "BEGIN" not in json.dumps(err.value.to_result())
    assert journal_revisions(stack_dir, context) == []


def test_prune_removes_what_the_system_no_longer_declares_and_nothing_else(stack_dir, ns, context, kubectl):
    kubectl("create", "configmap", "hand-made", "-n", ns, "--from-literal=a=1")
    run(stack_dir, [system("app", ns, configmap("keep", a="1"), configmap("old", a="1"))], context)
    run(stack_dir, [system("other", ns, configmap("others", a="1"))], context)
    result = run(stack_dir, [system("app", ns, configmap("keep", a="1"))], context)[0]
    assert result["pruned"] == [f"ConfigMap {ns}/old"]
    names = set(kubectl("get", "configmaps", "-n", ns, "-o", "name").stdout.split())
    assert {"configmap/keep", "configmap/hand-made", "configmap/others"} <= names
    assert "configmap/old" not in names
    assert journal_revisions(stack_dir, context) == [1, 2, 3]


def test_hand_edits_are_drift_fixed_by_the_next_delivery(stack_dir, ns, context, kubectl):
    systems = shop(ns, replicas=2)
    run(stack_dir, systems, context)
    kubectl("patch", "configmap", "backend-config", "-n", ns, "--type=merge", "-p", '{"data":{"greeting":"hacked"}}')
    kubectl("scale", "deployment", "backend", "-n", ns, "--replicas=5")
    result = run(stack_dir, systems, context)[0]
    drifted = {o["name"]: o["drift"] for o in result["drift"]}
    assert drifted == {"backend-config": [".data.greeting"], "backend": [".spec.replicas"]}
    assert live(kubectl, "configmap", ns, "backend-config")["data"] == {"greeting": "hello"}
    assert live(kubectl, "deployment", ns, "backend")["spec"]["replicas"] == 2
    settled = run(stack_dir, systems, context)[0]
    assert settled["changed"] is False and settled["writes"] == 0


def test_fields_owned_by_a_controller_are_respected(stack_dir, ns, context, kubectl):
    systems = [system("app", ns, deployment("web", replicas=2))]
    run(stack_dir, systems, context)
    # An autoscaler sets replicas through the scale subresource under its own field manager.
    kubectl("patch", "deployment", "web", "-n", ns, "--subresource=scale", "--type=merge",
            "--field-manager=horizontal-pod-autoscaler", "-p", '{"spec":{"replicas":3}}')
    result = run(stack_dir, systems, context)[0]
    assert live(kubectl, "deployment", ns, "web")["spec"]["replicas"] == 3
    assert result["changed"] is False
    forced = run(stack_dir, systems, context, force_conflicts=True)[0]
    assert forced["changed"] and live(kubectl, "deployment", ns, "web")["spec"]["replicas"] == 2


def hand_edits_removed(result):
    return {(o["name"], e["field"], e["manager"]) for o in result["objects"] for e in o.get("hand_edits_removed", [])}


def test_fields_added_by_hand_are_reported_and_removed_while_an_autoscalers_replicas_stay(stack_dir, ns, context,
                                                                                          kubectl):
    systems = [system("app", ns, deployment("web", replicas=2))]
    run(stack_dir, systems, context)
    kubectl("set", "env", "deployment/web", "-n", ns, "DRIFT=1")
    kubectl("label", "deployment", "web", "-n", ns, "team=night-shift")
    sidecar = {"name": "sidecar", "image": "127.0.0.1:5001/sidecar:1"}
    kubectl("patch", "deployment", "web", "-n", ns, "-p",
            json.dumps({"spec": {"template": {"spec": {"containers": [sidecar]}}}}))
    kubectl("patch", "deployment", "web", "-n", ns, "--subresource=scale", "--type=merge",
            "--field-manager=horizontal-pod-autoscaler", "-p", '{"spec":{"replicas":3}}')
    edited = live(kubectl, "deployment", ns, "web")
    assert sorted(c["name"] for c in edited["spec"]["template"]["spec"]["containers"]) == ["app", "sidecar"]
    expected = {("web", '.spec.template.spec.containers[name="app"].env', "kubectl-set"),
                ("web", ".metadata.labels.team", "kubectl-label"),
                ("web", '.spec.template.spec.containers[name="sidecar"]', "kubectl-patch")}

    kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=90s")  # the controller's status writes done
    before = resource_versions(kubectl, ns)
    predicted = run(stack_dir, systems, context, check_mode=True, diff=True)[0]
    assert resource_versions(kubectl, ns) == before and predicted["writes"] == 0
    assert predicted["changed"] and hand_edits_removed(predicted) == expected
    assert {p for d in predicted["drift"] for p in d["drift"]} == {field for _name, field, _manager in expected}
    after = predicted["diff"][0]["after"]
    assert "team" not in json.dumps(after) and "DRIFT" not in json.dumps(after) and "sidecar" not in json.dumps(after)
    assert "team" in json.dumps(predicted["diff"][0]["before"])

    real = run(stack_dir, systems, context)[0]
    assert hand_edits_removed(real) == expected
    web = live(kubectl, "deployment", ns, "web")
    containers = web["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app"] and "env" not in containers[0]
    assert "team" not in web["metadata"]["labels"]
    assert web["spec"]["replicas"] == 3  # the autoscaler's, respected
    assert "deployment.kubernetes.io/revision" in web["metadata"]["annotations"]  # the controller's, kept
    record = Journal(client_for(stack_dir, "admin"), context).records()[-1]
    corrected = record["systems"]["app"]["drift_corrected"]
    assert [c["object"] for c in corrected] == [f"Deployment {ns}/web"]
    assert {(e["field"], e["manager"]) for e in corrected[0]["hand_edits_removed"]} == \
        {(field, manager) for _name, field, manager in expected}

    settled = run(stack_dir, systems, context)[0]
    assert settled["changed"] is False and settled["writes"] == 0 and settled["drift"] == []
    assert journal_revisions(stack_dir, context) == [1, 2]


def test_fields_added_by_managers_that_are_not_hand_edits_stay(stack_dir, ns, context, kubectl):
    systems = [system("app", ns, configmap("settings", mode="a"))]
    run(stack_dir, systems, context)
    kubectl("annotate", "configmap", "settings", "-n", ns, "--field-manager=backup-operator", "backup.io/at=now")
    kubectl("label", "configmap", "settings", "-n", ns, "--field-manager=kubectl-scale", "looks=odd")
    result = run(stack_dir, systems, context)[0]
    assert result["changed"] is False and result["writes"] == 0
    settings = live(kubectl, "configmap", ns, "settings")["metadata"]
    assert settings["annotations"]["backup.io/at"] == "now" and settings["labels"]["looks"] == "odd"


def test_a_workload_that_cannot_progress_fails_fast_with_the_reason(stack_dir, ns, context, kubectl):
    stuck = deployment("stuck", progressDeadlineSeconds=3, pod={"nodeSelector": {"slipway.io/nowhere": "true"}})
    start = time.monotonic()
    with pytest.raises(SlipwayError) as err:
        run(stack_dir, [system("app", ns, stuck)], context, wait_timeout=120)
    assert time.monotonic() - start < 60
    assert "ProgressDeadlineExceeded" in err.value.msg
    details = json.dumps(err.value.details)
    assert "Unschedulable" in details or "FailedScheduling" in details
    records = Journal(client_for(stack_dir, "admin"), context).records()
    assert [(r["revision"], r["outcome"]) for r in records] == [(1, "failed")]


def test_dependencies_are_delivered_and_ready_first(stack_dir, ns, context):
    systems = [system("frontend", ns, deployment("frontend"), depends_on=["backend"]),
               system("backend", ns, deployment("backend"), depends_on=["db"]),
               system("db", ns, deployment("db"))]
    result = run(stack_dir, systems, context)[0]
    ready = [line.split(":")[0] for line in result["progress"] if ": ready" in line]
    assert ready == ["db", "backend", "frontend"]


def test_a_rollout_that_stalls_without_failing_names_the_pod_state_and_events_at_the_timeout(stack_dir, ns, context):
    """No fail-fast reason (an unschedulable pod within its progress deadline): the timeout says why it waited."""
    stalled = deployment("stalled")
    stalled["spec"]["template"]["spec"]["nodeSelector"] = {"slipway.io/nowhere": "true"}
    with pytest.raises(SlipwayError) as err:
        run(stack_dir, [system("app", ns, stalled)], context, wait_timeout=8)
    assert f"system app: not ready after 8s: Deployment {ns}/stalled: 0 of 1 updated replicas available (pod " \
        in err.value.msg
    assert "Pending: PodScheduled=False(Unschedulable: " in err.value.msg
    assert any(line.startswith("event Pod/stalled-") and ": FailedScheduling: " in line
               for line in err.value.details["systems"][0]["details"])


def names_of(kubectl, kind, namespace):
    return set(kubectl("get", kind, "-n", namespace, "-o", "name").stdout.split())


def test_a_system_left_out_keeps_running_until_it_is_retired(stack_dir, ns, context, kubectl):
    kubectl("create", "configmap", "hand-made", "-n", ns, "--from-literal=a=1")
    legacy = system("legacy", ns, configmap("legacy", a="1"), deployment("legacy"))
    run(stack_dir, [system("api", ns, configmap("api", a="1")), legacy], context)
    left_out = run(stack_dir, [system("api", ns, configmap("api", a="1"))], context)[0]
    assert not left_out["changed"] and left_out["not_delivered"] == ["legacy"] and left_out["retired"] == []
    assert "configmap/legacy" in names_of(kubectl, "configmaps", ns)

    before = resource_versions(kubectl, ns)
    predicted = run(stack_dir, [system("api", ns, configmap("api", a="1"))], context, check_mode=True,
                    retire=("legacy",))[0]
    assert predicted["changed"] and predicted["retired"] == ["legacy"]
    assert sorted(predicted["pruned"]) == [f"ConfigMap {ns}/legacy", f"Deployment {ns}/legacy"]
    assert resource_versions(kubectl, ns) == before  # check mode deletes nothing

    retired = run(stack_dir, [system("api", ns, configmap("api", a="1"))], context, retire=("legacy",))[0]
    assert retired["changed"] and retired["retired"] == ["legacy"] and retired["recorded"]
    assert next(r for r in retired["systems"] if r["system"] == "legacy")["result"] == "retired"
    assert retired["progress"][-1].startswith("legacy: retired (2 object(s) deleted)")  # after api was ready
    assert {"configmap/api", "configmap/hand-made"} <= names_of(kubectl, "configmaps", ns)
    assert "configmap/legacy" not in names_of(kubectl, "configmaps", ns)
    assert "deployment.apps/legacy" not in names_of(kubectl, "deployments", ns)
    client = client_for(stack_dir, "admin")
    try:
        last = Journal(client, context).records()[-1]
    finally:
        client.close()
    assert sorted(last["systems"]) == ["api"] and last["retired"] == ["legacy"]

    again = run(stack_dir, [system("api", ns, configmap("api", a="1"))], context, retire=("legacy",))[0]
    assert not again["changed"] and again["writes"] == 0 and again["retired"] == []  # retiring twice: nothing
    assert journal_revisions(stack_dir, context) == [1, 2]


def test_retire_absent_makes_the_context_run_exactly_the_systems_delivered(stack_dir, ns, context, kubectl):
    run(stack_dir, [system(name, ns, configmap(name, a="1")) for name in ("api", "old-a", "old-b")], context)
    result = run(stack_dir, [system("api", ns, configmap("api", a="2"))], context, retire_absent=True)[0]
    assert result["retired"] == ["old-a", "old-b"] and result["not_delivered"] == []
    assert names_of(kubectl, "configmaps", ns) & {"configmap/old-a", "configmap/old-b"} == set()
    assert "configmap/api" in names_of(kubectl, "configmaps", ns)


def test_retiring_is_refused_before_any_write_when_it_would_break_something(stack_dir, ns, context, kubectl):
    app = system("app", ns, configmap("app", a="1"), depends_on=["db"])
    run(stack_dir, [system("db", ns, configmap("db", a="1")), app], context)
    before = resource_versions(kubectl, ns)
    with pytest.raises(SlipwayError, match="cannot retire what delivered systems depend on: app depends on db"):
        run(stack_dir, [system("app", ns, configmap("app", a="2"), depends_on=["db"])], context, retire=("db",))
    with pytest.raises(SlipwayError, match="both delivered and retired"):
        run(stack_dir, [system("app", ns, configmap("app", a="2"))], context, retire=("app",))
    assert resource_versions(kubectl, ns) == before
    assert journal_revisions(stack_dir, context) == [1]


def test_a_failed_delivery_retires_nothing_and_a_rollback_brings_a_retired_system_back(
        stack_dir, ns, context, kubectl):
    run(stack_dir, [system("api", ns, configmap("api", a="1")), system("legacy", ns, configmap("legacy", a="1"))],
        context)
    broken = [dict(system("api", ns, configmap("api", a="2")), health={"command": ["false"]})]  # its gate fails
    with pytest.raises(SlipwayError) as failed:
        run(stack_dir, broken, context, retire=("legacy",))
    assert next(r for r in failed.value.details["systems"] if r["system"] == "legacy")["result"] == "skipped"
    assert "configmap/legacy" in names_of(kubectl, "configmaps", ns)  # a failed delivery retires nothing

    run(stack_dir, [system("api", ns, configmap("api", a="1"))], context, retire=("legacy",))
    assert "configmap/legacy" not in names_of(kubectl, "configmaps", ns)
    restored = roll_back(stack_dir, context, revision=1)
    assert restored["rollback"]["to"] == 1
    assert "configmap/legacy" in names_of(kubectl, "configmaps", ns)
