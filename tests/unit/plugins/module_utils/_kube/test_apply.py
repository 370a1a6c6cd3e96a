"""The apply predicate and conflict settling, against an in-memory API stand-in."""

from __future__ import annotations

import copy
import json

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube import apply as a
from ansible_collections.slipway.platform.plugins.module_utils._kube import fields as f
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import api_error
from ansible_collections.slipway.platform.plugins.module_utils._kube.discovery import Resource
from ansible_collections.slipway.platform.plugins.module_utils._kube.objects import DIGEST_ANNOTATION, Desired
from fake_kube import FakeClient

KEY = b"k" * 32
DEPLOYMENTS = Resource("apps/v1", "Deployment", "deployments", True)
SECRETS = Resource("v1", "Secret", "secrets", True)


def desired(body, resource=DEPLOYMENTS):
    d = Desired(system="backend", source="deploy/app.yaml.j2 (document 1)", body=copy.deepcopy(body))
    d.resource = resource
    return d


def deployment(replicas=2, image="app:1"):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "namespace": "shop"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}


def live_of(plan, **changes):
    """What the server holds after applying ``plan.body`` (plus server defaults and metadata)."""
    live = copy.deepcopy(plan.body)
    live["metadata"].update(resourceVersion="5", uid="u1", managedFields=[{"manager": "slipway"}])
    live["spec"]["progressDeadlineSeconds"] = 600
    live["status"] = {"replicas": 2}
    for path, value in changes.items():
        node = live
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return live


def test_unchanged_when_desired_is_contained_and_digest_matches():
    plan = a.prepare(desired(deployment()), KEY)
    plan.live = live_of(plan)
    assert a.assess(plan).action == "unchanged"


def test_changed_manifest_is_an_update_without_drift():
    old = a.prepare(desired(deployment(image="app:1")), KEY)
    plan = a.prepare(desired(deployment(image="app:2")), KEY)
    plan.live = live_of(old)
    a.assess(plan)
    assert plan.action == "update" and plan.drift == []
    assert ".spec.template.spec.containers[0].image" in plan.mismatches


def test_removed_field_is_seen_through_the_digest():
    old = a.prepare(desired(dict(deployment(), extra={"x": 1})), KEY)
    plan = a.prepare(desired(deployment()), KEY)
    plan.live = live_of(old)
    a.assess(plan)
    assert plan.action == "update"
    assert plan.mismatches == [".metadata.annotations." + DIGEST_ANNOTATION]


def test_hand_edit_is_drift():
    plan = a.prepare(desired(deployment()), KEY)
    plan.live = live_of(plan)
    plan.live["spec"]["replicas"] = 5
    a.assess(plan)
    assert plan.action == "update" and plan.drift == [".spec.replicas"]


def test_create_when_absent():
    assert a.assess(a.prepare(desired(deployment()), KEY)).action == "create"


def test_secret_digest_is_keyed_and_string_data_is_applied_as_data():
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "shop"},
            "stringData": {"password": "SENTINEL-VALUE"}}
    plan = a.prepare(desired(body, SECRETS), KEY)
    assert "stringData" not in plan.body and "password" in plan.body["data"]
    assert "SENTINEL" not in json.dumps(plan.body["metadata"])
    other = a.prepare(desired(dict(body, stringData={"password": "OTHER"}), SECRETS), KEY)
    assert other.digest != plan.digest
    assert a.prepare(desired(body, SECRETS), b"another key").digest != plan.digest


def conflict(manager, field):
    body = json.dumps({"kind": "Status", "reason": "Conflict", "message": "Apply failed with 1 conflict",
                       "details": {"causes": [{"reason": "FieldManagerConflict", "field": field,
                                               "message": f'conflict with "{manager}" using apps/v1'}]}})
    return api_error("PATCH", "/apis/apps/v1/namespaces/shop/deployments/app", 409, body.encode())


def test_controller_owned_fields_are_respected_not_overwritten():
    client = FakeClient()
    sent = []

    def patch(path, body, query):
        sent.append((copy.deepcopy(body), query.get("force")))
        if "replicas" in body["spec"]:
            raise conflict("horizontal-pod-autoscaler", ".spec.replicas")
        return body
    client.patch = patch
    plan = a.prepare(desired(deployment(replicas=2)), KEY)
    a.Applier(client, KEY).server_apply(plan, dry_run=True)
    assert plan.respected == [{"field": ".spec.replicas", "manager": "horizontal-pod-autoscaler"}]
    assert sent[-1][1] is None and "replicas" not in sent[-1][0]["spec"]
    assert client.writes == 0  # dry-runs only


def test_hand_edits_are_reclaimed_with_force():
    client = FakeClient()

    def patch(path, body, query):
        if not query.get("force"):
            raise conflict("kubectl-edit", ".spec.replicas")
        return body
    client.patch = patch
    plan = a.prepare(desired(deployment(replicas=2)), KEY)
    result = a.Applier(client, KEY).server_apply(plan, dry_run=False)
    assert result["spec"]["replicas"] == 2 and plan.force
    assert plan.reclaimed == [{"field": ".spec.replicas", "manager": "kubectl-edit"}]


def test_immutable_field_error_names_the_field_and_object():
    client = FakeClient()

    def patch(path, body, query):
        raise api_error("PATCH", path, 422, json.dumps({
            "reason": "Invalid", "message": 'Deployment.apps "app" is invalid: spec.selector: Invalid value: '
                                            'field is immutable',
            "details": {"causes": [{"reason": "FieldValueInvalid", "field": "spec.selector",
                                    "message": "Invalid value: field is immutable"}]}}).encode())
    client.patch = patch
    with pytest.raises(SlipwayError) as err:
        a.Applier(client, KEY).server_apply(a.prepare(desired(deployment()), KEY), dry_run=True)
    assert "cannot change immutable field(s) spec.selector" in err.value.msg
    assert "system backend, deploy/app.yaml.j2 (document 1), Deployment shop/app" in err.value.msg


def test_predict_turns_a_server_side_no_op_into_unchanged():
    client = FakeClient()
    plan = a.prepare(desired(deployment()), KEY)
    plan.live = live_of(plan)
    plan.live["spec"]["template"]["spec"]["containers"][0]["image"] = "app:1"  # identical
    plan.body["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1000m"}}
    plan.live["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}
    client.patch = lambda path, body, query: copy.deepcopy(plan.live)
    plan.action = "update"
    a.Applier(client, KEY).predict(plan)
    assert plan.action == "unchanged" and plan.fields == []


def test_predict_reports_only_changed_fields_in_the_diff():
    client = FakeClient()
    plan = a.prepare(desired(deployment(image="app:2")), KEY)
    old = a.prepare(desired(deployment(image="app:1")), KEY)
    plan.live = live_of(old)
    client.patch = lambda path, body, query: live_of(plan)
    a.assess(plan)
    a.Applier(client, KEY).predict(plan)
    assert plan.action == "update"
    assert ".spec.template.spec.containers[0].image" in plan.fields
    before, after = plan.diff
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "app:2"
    assert "replicas" not in after["spec"]


APP_ITEM = 'k:{"name":"app"}'
SLIPWAY_FIELDS = {"manager": "slipway", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                  "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                      APP_ITEM: {".": {}, "f:image": {}, "f:name": {}}}}}}}}
SET_ENV = {"manager": "kubectl-set", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
           "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {APP_ITEM: {"f:env": {
               ".": {}, 'k:{"name":"DRIFT"}': {".": {}, "f:name": {}, "f:value": {}}}}}}}}}}
ENV_PATH = '.spec.template.spec.containers[name="app"].env'


def hand_edited(plan, *managers):
    """The live object after `kubectl set env deploy/app DRIFT=1` (plus any other field managers)."""
    live = live_of(plan)
    live["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "DRIFT", "value": "1"}]
    live["metadata"]["managedFields"] = [SLIPWAY_FIELDS, SET_ENV, *managers]
    return live


def test_an_undeclared_field_added_by_hand_makes_an_unchanged_object_an_update():
    plan = a.prepare(desired(deployment()), KEY)
    plan.live = hand_edited(plan)
    assert a.assess(plan).action == "update"
    assert plan.hand_edits_removed == [{"field": ENV_PATH, "manager": "kubectl-set"}]
    assert a.assess(plan, reclaim_managers=()).action == "unchanged"  # reclaim_managers scopes both rules


def test_only_managers_the_table_names_as_hand_edits_lose_undeclared_fields():
    removable = a.removes_undeclared(a.DEFAULT_RECLAIM)
    assert [m for m in ("kubectl-set", "kubectl-patch", "kubectl-label", "kubectl-edit", "Mozilla") if removable(m)] \
        == ["kubectl-set", "kubectl-patch", "kubectl-label", "kubectl-edit", "Mozilla"]
    kept = ("kubectl-scale", "kubectl-rollout", "kubectl-create", "kube-controller-manager",
            "horizontal-pod-autoscaler", "kubectl-something-new", "slipway")
    assert [m for m in kept if removable(m)] == []
    assert not a.removes_undeclared(("k9s",))("kubectl-set")


def test_check_mode_predicts_the_removal_in_the_diff_and_writes_nothing():
    client = FakeClient()
    plan = a.prepare(desired(deployment()), KEY)
    plan.live = hand_edited(plan)
    client.patch = lambda path, body, query: copy.deepcopy(plan.live)  # SSA keeps a field another manager added
    a.assess(plan)
    a.Applier(client, KEY).predict(plan)
    assert plan.action == "update" and client.writes == 0
    assert plan.drift == [ENV_PATH]
    before, after = plan.diff
    assert before["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "DRIFT", "value": "1"}]
    assert "env" not in after["spec"]["template"]["spec"]["containers"][0]
    assert plan.report()["hand_edits_removed"] == [{"field": ENV_PATH, "manager": "kubectl-set"}]


def test_apply_transfers_ownership_under_the_read_version_then_applies():
    client = FakeClient()
    plan = a.prepare(desired(deployment()), KEY)
    plan.live = hand_edited(plan)
    sent = []

    def patch(path, body, query):
        sent.append((body, query))
        return copy.deepcopy(plan.live) if query.get("dryRun") else live_of(plan)
    client.patch = patch
    applier = a.Applier(client, KEY)
    applier.predict(a.assess(plan))
    applier.apply(plan)
    transfer, applied = sent[1], sent[2]
    assert transfer[0][1] == {"op": "replace", "path": "/metadata/resourceVersion", "value": "5"}
    managed = transfer[0][0]["value"]
    assert [e["manager"] for e in managed] == ["slipway"]  # kubectl-set owned nothing else
    assert f.field_paths(managed[0]["fieldsV1"]) == f.field_paths(SLIPWAY_FIELDS["fieldsV1"]) | set(plan.hand_added)
    assert applied[0] == plan.body and applied[1]["dryRun"] is None
    assert plan.action == "update" and client.writes == 2
    assert plan.corrected() == {"object": "Deployment shop/app", "drift": [ENV_PATH],
                                "hand_edits_removed": [{"field": ENV_PATH, "manager": "kubectl-set"}]}


def test_a_transfer_refused_for_a_stale_version_is_retried_on_the_object_read_again():
    client = FakeClient()
    plan = a.prepare(desired(deployment()), KEY)
    plan.live = hand_edited(plan)
    fresh = dict(copy.deepcopy(plan.live), metadata=dict(plan.live["metadata"], resourceVersion="6"))
    client.store["/apis/apps/v1/namespaces/shop/deployments/app"] = fresh
    versions = []

    def patch(path, body, query):
        if query.get("dryRun") or isinstance(body, dict):
            return copy.deepcopy(plan.live)
        versions.append(body[1]["value"])
        if body[1]["value"] == "5":
            client._fail("PATCH", path, 409, "Conflict", "the object has been modified")
        return fresh
    client.patch = patch
    applier = a.Applier(client, KEY)
    applier.predict(a.assess(plan))
    applier.apply(plan)
    assert versions == ["5", "6"]


def test_controller_fields_alone_need_no_dry_run():
    plan = a.prepare(desired(deployment()), KEY)
    plan.live = live_of(plan)
    plan.live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1"
    plan.live["metadata"]["managedFields"] = [SLIPWAY_FIELDS, {
        "manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
        "fieldsV1": {"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}}}}, {
        "manager": "horizontal-pod-autoscaler", "operation": "Update", "apiVersion": "apps/v1",
        "subresource": "scale", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
    assert a.assess(plan).action == "unchanged"


def test_a_sidecar_added_by_hand_is_the_drift_not_the_containers_it_lengthens():
    client = FakeClient()
    plan = a.prepare(desired(deployment()), KEY)
    plan.live = live_of(plan)
    plan.live["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "tool:1"})
    plan.live["metadata"]["managedFields"] = [SLIPWAY_FIELDS, {
        "manager": "kubectl-patch", "operation": "Update", "apiVersion": "apps/v1", "fieldsV1": {"f:spec": {
            "f:template": {"f:spec": {"f:containers": {'k:{"name":"sidecar"}': {
                ".": {}, "f:image": {}, "f:name": {}}}}}}}}]
    client.patch = lambda path, body, query: copy.deepcopy(plan.live)
    a.assess(plan)
    assert plan.drift == [".spec.template.spec.containers"]  # all the fast check can tell
    a.Applier(client, KEY).predict(plan)
    assert plan.drift == ['.spec.template.spec.containers[name="sidecar"]']
    assert [c["name"] for c in plan.diff[1]["spec"]["template"]["spec"]["containers"]] == ["app"]
