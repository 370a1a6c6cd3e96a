"""The `metrics:` declaration of slipway.yml: validated, and written onto the workloads' pod templates."""

from __future__ import annotations

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.objects import build_systems
from ansible_collections.slipway.platform.plugins.module_utils._metrics import (
    PATH_ANNOTATION,
    PORT_ANNOTATION,
    SYSTEM_ANNOTATION,
    Metrics,
    annotate_workload,
    parse_metrics,
)


def deployment(annotations=None):
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "w"}]}}
    if annotations:
        template["metadata"]["annotations"] = dict(annotations)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template}}


def test_a_port_alone_scrapes_slash_metrics_and_none_declared_is_none():
    assert parse_metrics({"port": 8080}, "web") == (Metrics(port=8080, path="/metrics"), [])
    assert parse_metrics({"port": 9090, "path": "/stats/prometheus"}, "web")[0].path == "/stats/prometheus"
    assert parse_metrics(None, "web") == (None, [])


@pytest.mark.parametrize(("declared", "says"), [
    (8080, "must be a mapping"),
    ({"port": "http"}, "port must be the container port number"),
    ({"port": 0}, "port must be the container port number"),
    ({"port": True}, "port must be the container port number"),
    ({"port": 8080, "path": "metrics"}, "path must be an absolute URL path"),
    ({"port": 8080, "path": "/a/../b"}, "path must be an absolute URL path"),
    ({"port": 8080, "scheme": "https"}, "unknown key(s) scheme"),
])
def test_a_wrong_declaration_is_refused_naming_the_fix(declared, says):
    metrics, problems = parse_metrics(declared, "web")
    assert metrics is None and len(problems) == 1 and says in problems[0] and "system web: metrics" in problems[0]


def test_the_pod_template_gets_the_annotations_and_keeps_its_own():
    body = deployment({"team": "shop"})
    assert annotate_workload(body, Metrics(port=8080), "web") is True
    assert body["spec"]["template"]["metadata"]["annotations"] == {
        "team": "shop", PORT_ANNOTATION: "8080", PATH_ANNOTATION: "/metrics", SYSTEM_ANNOTATION: "web"}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {}}
    assert annotate_workload(service, Metrics(port=8080), "web") is False and "template" not in service["spec"]
    untouched = deployment()
    assert annotate_workload(untouched, None, "web") is False
    assert "annotations" not in untouched["spec"]["template"]["metadata"]


def test_the_delivery_annotates_what_it_renders_and_refuses_a_bad_declaration_before_writing():
    raw = {"name": "web", "namespace": "shop", "metrics": {"port": 8080},
           "documents": [{"file": "deploy.yaml", "index": 0, "content": deployment()}]}
    (system,) = build_systems([raw])
    annotations = system.objects[0].body["spec"]["template"]["metadata"]["annotations"]
    assert annotations[PORT_ANNOTATION] == "8080" and annotations[SYSTEM_ANNOTATION] == "web"
    with pytest.raises(SlipwayError) as caught:
        build_systems([dict(raw, metrics={"port": "http"})])
    assert "nothing was written" in caught.value.msg and "metrics: port must be" in caught.value.msg
