"""The filter plugins' glue: each file offers the one filter it is named after, documents exactly its arguments,
and turns bad input into an AnsibleFilterError that names the filter."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

FILTERS = sorted(p.stem for p in (Path(__file__).resolve().parents[4] / "plugins" / "filter").glob("*.py"))
PACKAGE = "ansible_collections.slipway.platform.plugins.filter"


def plugin(name):
    return importlib.import_module(f"{PACKAGE}.{name}")


def the_filter(name):
    return plugin(name).FilterModule().filters()[name]


def test_the_filters_are_there():
    assert FILTERS == ["deployer_rbac", "dns_label", "image_ref", "release_diff", "showroom_namespace"]


@pytest.mark.parametrize("name", FILTERS)
def test_each_file_offers_the_filter_it_is_named_after(name):
    assert list(plugin(name).FilterModule().filters()) == [name]


@pytest.mark.parametrize("name", FILTERS)
def test_the_documentation_names_the_filter_and_its_arguments(name):
    module = plugin(name)
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["name"] == name
    parameters = list(inspect.signature(the_filter(name)).parameters)
    assert ["_input", *parameters[1:]] == list(doc["options"])
    assert doc["positional"] == ", ".join(parameters[1:])
    assert yaml.safe_load(module.RETURN)["_value"]["description"]
    assert f"slipway.platform.{name}" in module.EXAMPLES


@pytest.mark.parametrize(("name", "args", "message"), [
    ("dns_label", ("___",), "'___' has no letter or digit"),
    ("showroom_namespace", ("shop", "Feature/X"), "the showroom 'Feature/X' is not a DNS-1123 label"),
    ("image_ref", ({"backend": "r/backend:latest"}, "backend"), "not a reference by digest"),
    ("release_diff", ("revision 3", {"systems": {}}), "the older release must be a journal record"),
    ("deployer_rbac", ({"shop": "deployments.apps"}, "prod", {"kind": "User", "name": "d"}), "plural.group names"),
    ("deployer_rbac", ({"shop": ["roles.rbac.authorization.k8s.io"]}, "prod", {"kind": "User", "name": "d"}),
     "a deployer may not write access rules (RBAC)"),
])
def test_bad_input_fails_with_the_filters_name(name, args, message):
    with pytest.raises(AnsibleFilterError) as caught:
        the_filter(name)(*args)
    assert caught.value.message.startswith(f"slipway.platform.{name}: ")
    assert message in caught.value.message


def test_good_input_passes_through():
    assert the_filter("dns_label")("main") == "main"
    assert the_filter("dns_label")("Feature/X", 20).startswith("feature-x-")
    assert the_filter("showroom_namespace")("shop", "feature-x") == "shop-feature-x"
    reference = "r/backend@sha256:" + "0" * 64
    assert the_filter("image_ref")({"backend": reference}, "backend") == reference
    assert the_filter("release_diff")([{"revision": 1, "systems": {}}])["changed"] is False
    rbac = the_filter("deployer_rbac")({"shop": ["deployments.apps"]}, "prod", {"kind": "User", "name": "d"})
    role = next(o for o in rbac if o["kind"] == "Role" and o["metadata"]["namespace"] == "shop")
    assert role["rules"][0] == {"apiGroups": ["apps"], "resources": ["deployments"],
                                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}
