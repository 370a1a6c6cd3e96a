"""plain_copy: a deep copy of parsed manifests that never shares a mutable part with the original."""

from __future__ import annotations

import datetime

from ansible_collections.slipway.platform.plugins.module_utils._kube.plain_copy import plain_copy


class Labels(dict):
    pass


def test_the_copy_is_equal_and_shares_nothing_mutable():
    when = datetime.date(2026, 11, 30)
    spec = {"ports": [{"port": 80}], "ok": True, "ratio": 0.5, "none": None, "when": when}
    body = {"metadata": {"name": "a", "labels": Labels(app="a")}, "spec": spec, "data": {"pair": ("x", ["y"])}}
    copied = plain_copy(body)
    assert copied == body
    copied["metadata"]["name"] = "b"
    copied["spec"]["ports"][0]["port"] = 81
    copied["metadata"]["labels"]["app"] = "b"  # a dict subclass: copied too (by deepcopy)
    copied["data"]["pair"][1].append("z")  # a tuple holding a list: deepcopy's job
    assert body == {"metadata": {"name": "a", "labels": {"app": "a"}}, "spec": {
        "ports": [{"port": 80}], "ok": True, "ratio": 0.5, "none": None, "when": when}, "data": {"pair": ("x", ["y"])}}
    assert isinstance(copied["metadata"]["labels"], Labels)


def test_strings_are_shared_even_tagged_ones():
    from ansible.template import trust_as_template

    tagged = trust_as_template("bench-context")  # what a task option becomes
    body = {"metadata": {"labels": {"slipway.io/context": tagged}}}
    assert plain_copy(body)["metadata"]["labels"]["slipway.io/context"] is tagged
