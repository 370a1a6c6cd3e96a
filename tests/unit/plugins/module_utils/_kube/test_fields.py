"""Field ownership: fieldsV1 paths, the hand-added fields a delivery takes back, and the ownership transfer."""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._kube import fields as f

APP = 'k:{"name":"app"}'
DRIFT = 'k:{"name":"DRIFT"}'
CONTAINERS = ("f:spec", "f:template", "f:spec", "f:containers")

# What slipway applied: labels, the container's name and image.
SLIPWAY = {"manager": "slipway", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
           "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                            APP: {".": {}, "f:image": {}, "f:name": {}}}}}}}}
# `kubectl set env deploy/app DRIFT=1` on a container without env: the list and the item are kubectl-set's.
SET_ENV = {"manager": "kubectl-set", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
           "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {APP: {"f:env": {
               ".": {}, DRIFT: {".": {}, "f:name": {}, "f:value": {}}}}}}}}}}
LABEL = {"manager": "kubectl-label", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}}}
CONTROLLER = {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
              "fieldsType": "FieldsV1",
              "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:deployment.kubernetes.io/revision": {}}}}}
AUTOSCALER = {"manager": "horizontal-pod-autoscaler", "operation": "Update", "apiVersion": "apps/v1",
              "subresource": "scale", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}


def hand(name):
    return name.startswith("kubectl-") and name != "kubectl-scale"


def test_field_paths_are_leaves_and_owned_nodes_and_round_trip():
    paths = f.field_paths(SET_ENV["fieldsV1"])
    env = (*CONTAINERS, APP, "f:env")
    assert paths == {env, (*env, DRIFT), (*env, DRIFT, "f:name"), (*env, DRIFT, "f:value")}
    assert f.fields_v1(paths) == SET_ENV["fieldsV1"]
    assert f.field_paths(SLIPWAY["fieldsV1"]) == f.field_paths(f.fields_v1(f.field_paths(SLIPWAY["fieldsV1"])))


def test_render_names_fields_as_the_api_does():
    assert f.render((*CONTAINERS, APP, "f:env", DRIFT)) == \
        '.spec.template.spec.containers[name="app"].env[name="DRIFT"]'
    assert f.render(("f:spec", "f:ports", 'k:{"protocol":"TCP","containerPort":80}')) == \
        '.spec.ports[containerPort=80,protocol="TCP"]'
    assert f.render(("f:metadata", "f:finalizers", 'v:"example.com/keep"')) == \
        '.metadata.finalizers[="example.com/keep"]'
    assert f.render(("f:metadata", "f:labels", "f:app.kubernetes.io/name")) == ".metadata.labels.app.kubernetes.io/name"


def test_topmost_names_the_item_not_each_of_its_fields():
    env = (*CONTAINERS, APP, "f:env")
    assert f.topmost({env, (*env, DRIFT), (*env, DRIFT, "f:name")}) == [env]


def test_hand_added_env_var_and_label_are_taken_and_declared_parents_stay():
    taken = f.hand_added([SLIPWAY, SET_ENV, LABEL, CONTROLLER], hand, "slipway")
    env = (*CONTAINERS, APP, "f:env")
    assert set(taken) == {env, (*env, DRIFT), (*env, DRIFT, "f:name"), (*env, DRIFT, "f:value"),
                          ("f:metadata", "f:labels", "f:team")}
    assert taken[("f:metadata", "f:labels", "f:team")] == "kubectl-label"


def test_an_env_list_the_manifests_declare_keeps_only_the_hand_added_item():
    declared = {"f:env": {DRIFT.replace("DRIFT", "MODE"): {".": {}, "f:name": {}, "f:value": {}}}}
    slipway = dict(SLIPWAY, fieldsV1={"f:spec": {"f:template": {"f:spec": {"f:containers": {APP: declared}}}}})
    env = (*CONTAINERS, APP, "f:env")
    assert f.topmost(f.hand_added([slipway, SET_ENV], hand, "slipway")) == [(*env, DRIFT)]


def test_fields_of_controllers_autoscalers_and_unknown_managers_are_never_taken():
    scaled = dict(LABEL, manager="kubectl-scale", fieldsV1={"f:spec": {"f:replicas": {}}})
    operator = dict(LABEL, manager="my-operator")
    assert f.hand_added([SLIPWAY, CONTROLLER, AUTOSCALER, scaled, operator], hand, "slipway") == {}


def test_a_field_a_controller_also_owns_is_not_taken():
    shared = dict(CONTROLLER, fieldsV1={"f:metadata": {"f:labels": {"f:team": {}}}})
    assert f.hand_added([SLIPWAY, LABEL, shared], hand, "slipway") == {}


def test_a_hand_node_holding_a_controllers_field_is_not_taken():
    annotated = dict(LABEL, manager="kubectl-annotate", fieldsV1={"f:metadata": {"f:annotations": {
        ".": {}, "f:note": {}}}})
    taken = f.hand_added([SLIPWAY, annotated, CONTROLLER], hand, "slipway")
    assert set(taken) == {("f:metadata", "f:annotations", "f:note")}


def test_hand_entries_of_another_api_version_are_left_alone():
    assert f.hand_added([SLIPWAY, dict(LABEL, apiVersion="apps/v1beta2")], hand, "slipway") == {}


def test_transfer_moves_the_paths_into_the_apply_entry_and_drops_emptied_entries():
    taken = f.hand_added([SLIPWAY, SET_ENV, LABEL, CONTROLLER, AUTOSCALER], hand, "slipway")
    out = f.transferred([SLIPWAY, SET_ENV, LABEL, CONTROLLER, AUTOSCALER], set(taken), "slipway", "apps/v1")
    assert [e["manager"] for e in out] == ["slipway", "kube-controller-manager", "horizontal-pod-autoscaler"]
    owned = f.field_paths(out[0]["fieldsV1"])
    assert owned == f.field_paths(SLIPWAY["fieldsV1"]) | set(taken)
    assert out[1:] == [CONTROLLER, AUTOSCALER]


def test_transfer_keeps_what_a_hand_entry_still_owns_and_adds_an_apply_entry_when_missing():
    entry = dict(LABEL, fieldsV1={"f:metadata": {"f:labels": {"f:team": {}, "f:tier": {}}}})
    out = f.transferred([entry], {("f:metadata", "f:labels", "f:team")}, "slipway", "apps/v1")
    assert out[0]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:tier": {}}}}
    assert out[1] == {"manager": "slipway", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                      "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}}}
