"""Pure comparison helpers: what counts as a change, what is redacted, what a diff shows."""

from __future__ import annotations

import base64

from ansible_collections.slipway.platform.plugins.module_utils._kube import normalize as n

KEY = b"k" * 32


def secret(**string_data):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": string_data}


def test_string_data_folds_into_base64_data_and_replaces_the_field():
    folded = n.secret_to_data(secret(password="hunter2"))
    assert "stringData" not in folded
    assert folded["data"] == {"password": base64.b64encode(b"hunter2").decode()}


def test_string_data_wins_over_data_for_the_same_key_like_the_api():
    obj = dict(secret(a="new"), data={"a": base64.b64encode(b"old").decode(), "b": "Yg=="})
    assert n.secret_to_data(obj)["data"] == {"a": base64.b64encode(b"new").decode(), "b": "Yg=="}


def test_non_secrets_are_not_folded():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "stringData": {"a": "b"}}
    assert n.secret_to_data(cm) is cm


def test_server_defaults_are_not_a_difference():
    desired = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "x"}]}}}}
    live = {"spec": {"replicas": 1, "template": {"spec": {"containers": [
        {"name": "app", "image": "x", "terminationMessagePath": "/dev/termination-log"}],
        "dnsPolicy": "ClusterFirst"}}}}
    assert n.subset_mismatches(desired, live) == []


def test_a_changed_or_missing_value_is_a_difference_named_by_path():
    desired = {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": "y"}]}}}}
    live = {"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "app", "image": "x"}]}}}}
    assert n.subset_mismatches(desired, live) == [".spec.replicas", ".spec.template.spec.containers[0].image"]
    assert n.subset_mismatches({"data": {"new": "1"}}, {"data": {}}) == [".data.new"]


def test_list_length_change_is_a_difference():
    assert n.subset_mismatches({"args": ["a"]}, {"args": ["a", "b"]}) == [".args"]


def test_quantities_compare_by_value_not_spelling():
    assert n.subset_mismatches({"cpu": "0.5", "memory": "1024Mi"}, {"cpu": "500m", "memory": "1Gi"}) == []
    assert n.subset_mismatches({"cpu": 1}, {"cpu": "1"}) == []
    assert n.subset_mismatches({"cpu": "0.5"}, {"cpu": "600m"}) == [".cpu"]


def test_ints_and_strings_are_not_confused_outside_quantities():
    assert n.subset_mismatches({"port": "http"}, {"port": 80}) == [".port"]
    assert n.subset_mismatches({"enabled": True}, {"enabled": 1}) == [".enabled"]


class TaggedStr(str):
    """Like the str subclass Ansible's templating hands to an action plugin."""


def test_a_str_subclass_equals_its_plain_value():
    assert n.subset_mismatches({"labels": {"system": TaggedStr("web")}}, {"labels": {"system": "web"}}) == []
    assert n.subset_mismatches({"name": TaggedStr("web")}, {"name": "api"}) == [".name"]


def test_booleans_are_not_numbers():
    assert n.subset_mismatches({"a": True}, {"a": 1}) == [".a"]
    assert n.subset_mismatches({"a": 0}, {"a": False}) == [".a"]
    assert n.subset_mismatches({"a": 1}, {"a": 1.0}) == []


def test_empty_desired_values_the_server_drops_are_no_difference():
    assert n.subset_mismatches({"metadata": {"annotations": {}}, "x": None}, {"metadata": {}}) == []


def test_strip_server_fields_drops_status_and_server_metadata_only():
    live = {"metadata": {"name": "a", "resourceVersion": "7", "uid": "u", "managedFields": [], "labels": {"x": "y"}},
            "status": {"ready": True}, "spec": {}}
    assert n.strip_server_fields(live) == {"metadata": {"name": "a", "labels": {"x": "y"}}, "spec": {}}
    assert live["metadata"]["resourceVersion"] == "7"  # the input is untouched


def test_hiding_server_fields_leaves_the_live_object_as_it_was():
    live = {"kind": "ConfigMap", "status": {"x": 1}, "data": {"a": "1"},
            "metadata": {"name": "c", "resourceVersion": "7", "labels": {"l": "v"}}}
    view = n.server_fields_hidden(live)
    assert view == {"kind": "ConfigMap", "data": {"a": "1"}, "metadata": {"name": "c", "labels": {"l": "v"}}}
    assert live["metadata"]["resourceVersion"] == "7" and live["status"] == {"x": 1}
    assert n.strip_server_fields(live) == view and n.strip_server_fields(live)["data"] is not live["data"]


def test_keyed_digest_depends_on_key_and_value_but_not_key_order():
    assert n.keyed_digest(KEY, {"a": 1, "b": 2}) == n.keyed_digest(KEY, {"b": 2, "a": 1})
    assert n.keyed_digest(KEY, {"a": 1}) != n.keyed_digest(KEY, {"a": 2})
    assert n.keyed_digest(KEY, {"a": 1}) != n.keyed_digest(b"other", {"a": 1})


def test_redaction_hides_values_but_a_changed_value_still_differs():
    before = n.redact_secret(n.secret_to_data(secret(token="SENTINEL-1")), KEY)
    after = n.redact_secret(n.secret_to_data(secret(token="SENTINEL-2")), KEY)
    same = n.redact_secret(n.secret_to_data(secret(token="SENTINEL-1")), KEY)
    assert "SENTINEL" not in repr(before) + repr(after)
    assert base64.b64encode(b"SENTINEL-1").decode() not in repr(before)
    assert before["data"]["token"].startswith("<redacted hmac:")
    assert before != after and before == same
    assert n.changed_paths(before, after) == [".data.token"]


def test_secret_values_collects_plain_and_base64_forms():
    values = n.secret_values(dict(secret(a="plain-value"), data={"b": base64.b64encode(b"other-value").decode()}))
    assert {"plain-value", base64.b64encode(b"plain-value").decode(), "other-value"} <= values


def test_minimal_diff_keeps_only_changed_branches():
    before = {"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"replicas": 1, "paused": False}}
    after = {"metadata": {"name": "a", "labels": {"x": "2"}}, "spec": {"replicas": 1, "paused": False, "new": 1}}
    assert n.minimal_diff(before, after) == ({"metadata": {"labels": {"x": "1"}}, "spec": {}},
                                             {"metadata": {"labels": {"x": "2"}}, "spec": {"new": 1}})


def test_changed_paths_both_directions():
    assert n.changed_paths({"a": 1, "b": 2}, {"a": 1, "c": 3}) == [".b", ".c"]


def test_remove_field_handles_plain_dotted_keys_and_list_selectors():
    obj = {"metadata": {"labels": {"app.kubernetes.io/name": "x", "app": "y"}},
           "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "a", "image": "i"},
                                                                        {"name": "b", "image": "j"}]}}}}
    assert n.remove_field(obj, ".spec.replicas")
    assert n.remove_field(obj, ".metadata.labels.app.kubernetes.io/name")
    assert n.remove_field(obj, '.spec.template.spec.containers[name="b"].image')
    assert obj == {"metadata": {"labels": {"app": "y"}},
                   "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "i"}, {"name": "b"}]}}}}
    assert not n.remove_field(obj, ".spec.missing")
