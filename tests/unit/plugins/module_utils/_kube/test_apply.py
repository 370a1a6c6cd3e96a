"""The apply predicate and conflict settling, against an in-memory API stand-in."""

from __future__ import annotations

import copy
import json

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube import apply as a
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
