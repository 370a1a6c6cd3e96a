"""Names people choose made into DNS-1123 labels: kept when already one, else sanitised with a hash suffix."""

from __future__ import annotations

import hashlib

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._names import dns_label, showroom_namespace
from ansible_collections.slipway.platform.plugins.module_utils._system import DNS_LABEL


def suffix(name):
    return "-" + hashlib.sha256(name.encode()).hexdigest()[:8]


@pytest.mark.parametrize("name", ["main", "feature-x", "v1-2-3", "0day", "a", "x" * 63])
def test_a_name_that_is_already_a_label_is_kept(name):
    assert dns_label(name) == name


@pytest.mark.parametrize(("name", "sanitised"), [
    ("feature/x", "feature-x"),
    ("Feature/X", "feature-x"),
    ("feature_x", "feature-x"),
    ("--feature--x--", "feature-x"),
    ("renovate/@types/node 20.x", "renovate-types-node-20-x"),
    ("fëature/ünïcode", "feature-unicode"),
    ("-", None),
])
def test_a_changed_name_is_sanitised_and_marked_with_the_hash_of_the_original(name, sanitised):
    if sanitised is None:
        with pytest.raises(SlipwayError, match="no letter or digit"):
            dns_label(name)
        return
    assert dns_label(name) == sanitised + suffix(name)


def test_names_that_sanitise_alike_stay_apart():
    names = ["feature-x", "feature/x", "Feature/X", "feature_x", "feature.x", "FEATURE-X"]
    labels = [dns_label(n) for n in names]
    assert len(set(labels)) == len(names)
    assert all(DNS_LABEL.match(label) for label in labels)


def test_a_long_name_is_cut_to_fit_and_long_names_sharing_a_beginning_stay_apart():
    stem = "feature/" + "very-long-branch-name-" * 4
    first, second = dns_label(stem + "one"), dns_label(stem + "two")
    assert first != second
    for name, label in ((stem + "one", first), (stem + "two", second)):
        assert len(label) <= 63 and DNS_LABEL.match(label)
        assert label.endswith(suffix(name))
    # a label that is too long, even unchanged, is cut and marked too
    assert dns_label("x" * 64) == "x" * 54 + suffix("x" * 64)


def test_a_cut_never_leaves_a_dash_before_the_hash():
    name = "a" * 53 + "-" + "b" * 20  # too long; the cut after 54 characters lands right after the '-'
    assert dns_label(name) == "a" * 53 + suffix(name)


@pytest.mark.parametrize("max_length", [10, 20, 40])
def test_max_length_leaves_room(max_length):
    label = dns_label("Feature/" + "x" * 80, max_length)
    assert len(label) <= max_length and DNS_LABEL.match(label)
    assert dns_label("short", max_length) == "short"


@pytest.mark.parametrize("max_length", [9, 64, "32", True, None])
def test_a_bad_max_length_is_refused(max_length):
    with pytest.raises(SlipwayError, match="max_length must be a whole number from 10 to 63"):
        dns_label("main", max_length)


@pytest.mark.parametrize("name", [None, 42, ["main"]])
def test_a_name_that_is_not_a_string_is_refused(name):
    with pytest.raises(SlipwayError, match="expected a name"):
        dns_label(name)


def test_the_same_name_always_gives_the_same_label():
    assert dns_label("Feature/X") == dns_label("Feature/X") == "feature-x" + suffix("Feature/X")


def test_showroom_namespace_joins_namespace_and_showroom():
    assert showroom_namespace("shop", "feature-x") == "shop-feature-x"


def test_a_long_showroom_namespace_is_cut_and_marked_like_a_label():
    showroom = dns_label("feature/" + "y" * 70)
    namespace = showroom_namespace("shop", showroom)
    joined = f"shop-{showroom}"
    assert len(joined) > 63
    assert namespace == joined[:54] + suffix(joined)
    assert DNS_LABEL.match(namespace)
    assert showroom_namespace("shop", dns_label("feature/" + "z" * 70)) != namespace


@pytest.mark.parametrize(("namespace", "showroom", "what"), [
    ("Shop", "feature-x", "the namespace 'Shop'"),
    ("shop", "feature/x", "the showroom 'feature/x'.*make one with slipway.platform.dns_label"),
    ("shop", None, "the showroom None"),
    ("", "feature-x", "the namespace ''"),
])
def test_showroom_namespace_refuses_parts_that_are_not_labels(namespace, showroom, what):
    with pytest.raises(SlipwayError, match=what):
        showroom_namespace(namespace, showroom)
