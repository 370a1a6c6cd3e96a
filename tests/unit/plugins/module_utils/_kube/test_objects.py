"""Rendered documents to desired objects: validation before any write, placement, order."""

from __future__ import annotations

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube import objects as o
from ansible_collections.slipway.platform.plugins.module_utils._kube.discovery import Resource


def doc(content, file="deploy/app.yaml.j2", index=0):
    return {"file": file, "index": index, "content": content}


def cm(name="app", **meta):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(name=name, **meta), "data": {"a": "b"}}


def system(name="backend", docs=(), **extra):
    return dict({"name": name, "namespace": "shop", "depends_on": [], "images": {}, "documents": list(docs)}, **extra)


class FakeDiscovery:
    KINDS = {("v1", "ConfigMap"): Resource("v1", "ConfigMap", "configmaps", True),
             ("v1", "Namespace"): Resource("v1", "Namespace", "namespaces", False),
             ("apps/v1", "Deployment"): Resource("apps/v1", "Deployment", "deployments", True)}

    def resource(self, api_version, kind, where=""):
        if (api_version, kind) not in self.KINDS:
            raise SlipwayError(f"{where}: unknown kind {kind!r}")
        return self.KINDS[(api_version, kind)]


def test_empty_documents_are_skipped_and_lists_expanded():
    systems = o.build_systems([system(docs=[doc(None), doc({"kind": "List", "apiVersion": "v1",
                                                            "items": [cm("a"), cm("b")]}, index=1)])])
    assert [d.name for d in systems[0].objects] == ["a", "b"]
    assert systems[0].objects[1].source == "deploy/app.yaml.j2 (document 2) item 2"


def test_every_problem_is_reported_at_once_naming_file_and_system():
    bad = [doc({"kind": "ConfigMap", "metadata": {"name": "x"}}),
           doc({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}, index=1),
           doc({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}, index=2),
           doc(["not", "a", "mapping"], file="deploy/other.yaml.j2"),
           doc(cm(labels={"replicas": 3}), index=3)]
    with pytest.raises(SlipwayError) as err:
        o.build_systems([system(docs=bad)])
    problems = err.value.details["problems"]
    assert len(problems) == 5
    assert "system backend, deploy/app.yaml.j2 (document 1): missing or empty 'apiVersion'" in problems[0]
    assert "missing 'metadata.name'" in problems[1]
    assert "'Bad_Name' is not a valid name" in problems[2]
    assert "deploy/other.yaml.j2 (document 1): a manifest document must be a mapping" in problems[3]
    assert "metadata.labels.replicas must be a string" in problems[4]
    assert "nothing was written" in err.value.msg


def test_system_names_and_namespaces_are_checked():
    with pytest.raises(SlipwayError) as err:
        o.build_systems([system(name="Back_End"), system(name="ok", namespace=None), system(name="ok")])
    assert "'Back_End'" in err.value.msg and "'namespace' None" in err.value.msg


def test_place_objects_defaults_namespace_adds_labels_and_rejects_duplicates_and_unknown_kinds():
    systems = o.build_systems([
        system(docs=[doc(cm("a")),
                     doc({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}, index=1),
                     doc({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}, index=2)]),
        system(name="worker", docs=[doc(cm("a", namespace="shop"), file="deploy/w.yaml.j2")]),
    ])
    errors = o.place_objects(systems, FakeDiscovery(), "local")
    first = systems[0].objects[0]
    assert first.namespace == "shop"
    assert first.body["metadata"]["labels"] == {o.MANAGED_BY: "slipway", o.SYSTEM_LABEL: "backend",
                                                o.CONTEXT_LABEL: "local"}
    assert systems[0].objects[1].namespace is None  # cluster-scoped
    assert any("unknown kind 'Widget'" in e for e in errors)
    assert any("system worker, deploy/w.yaml.j2 (document 1), ConfigMap shop/a: declared again (first in system "
               "backend" in e for e in errors)


def test_crds_of_the_delivery_make_their_kinds_pending_not_unknown():
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced", "names": {"kind": "Widget", "plural": "widgets"},
                    "versions": [{"name": "v1"}]}}
    systems = o.build_systems([system(docs=[doc(crd), doc({"apiVersion": "example.com/v1", "kind": "Widget",
                                                           "metadata": {"name": "w"}}, index=1)])])
    pending = o.crd_resources(systems, Resource)
    assert pending[("example.com/v1", "Widget")].name == "widgets"
    discovery = FakeDiscovery()
    discovery.KINDS = dict(FakeDiscovery.KINDS)
    discovery.KINDS[("apiextensions.k8s.io/v1", "CustomResourceDefinition")] = Resource(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False)
    assert o.place_objects(systems, discovery, "local", pending) == []
    widget = systems[0].objects[1]
    assert widget.pending_crd and widget.namespace == "shop"


def test_slipway_labels_in_a_manifest_are_rejected():
    systems = o.build_systems([system(docs=[doc(cm(labels={o.SYSTEM_LABEL: "other"}))])])
    assert "label slipway.io/system is Slipway's" in o.place_objects(systems, FakeDiscovery(), "local")[0]


def test_dependency_order_gives_waves_and_rejects_unknown_and_cycles():
    systems = o.build_systems([system("frontend", depends_on=["backend"]), system("backend", depends_on=["db"]),
                               system("worker", depends_on=["backend"]), system("db")])
    assert o.dependency_order(systems) == [["db"], ["backend"], ["frontend", "worker"]]
    assert o.dependency_order(o.build_systems([system("a", depends_on=["old"])]), known_elsewhere={"old"}) == [["a"]]
    with pytest.raises(SlipwayError, match="depends on 'nope'"):
        o.dependency_order(o.build_systems([system("a", depends_on=["nope"])]))
    with pytest.raises(SlipwayError, match="cycle: a -> b"):
        o.dependency_order(o.build_systems([system("a", depends_on=["b"]), system("b", depends_on=["a"])]))


def test_apply_groups_follow_kind_order():
    docs = [doc({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}),
            doc(cm("c"), index=1), doc({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}, index=2),
            doc({"apiVersion": "x/v1", "kind": "Unknown", "metadata": {"name": "u"}}, index=3)]
    systems = o.build_systems([system(docs=docs)])
    assert [[d.kind for d in g] for g in o.apply_groups(systems[0].objects)] == [
        ["Namespace"], ["ConfigMap"], ["Deployment"], ["Unknown"]]


def test_secret_values_split_off_and_merge_back():
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "SENTINEL"}}
    listed = {"apiVersion": "v1", "kind": "List", "items": [cm("c"), dict(secret, data={"d": "U0VOVElORUw="})]}
    rendered = [system(docs=[doc(secret), doc(listed, index=1), doc(None, index=2)])]
    stripped, payloads = o.split_secrets(rendered)
    assert "SENTINEL" not in repr(stripped) and "U0VOVElORUw=" not in repr(stripped)
    assert payloads == {"backend/deploy/app.yaml.j2/0/0": {"stringData": {"k": "SENTINEL"}},
                        "backend/deploy/app.yaml.j2/1/1": {"data": {"d": "U0VOVElORUw="},
                                                           "stringData": {"k": "SENTINEL"}}}
    assert rendered[0]["documents"][0]["content"]["stringData"] == {"k": "SENTINEL"}  # input untouched
    assert o.merge_secrets(stripped, payloads) == rendered
