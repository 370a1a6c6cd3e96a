"""The example ecosystem (examples/shop): complete descriptions, renderable manifests, vendored tools equal."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
import yaml
from ansible_collections.slipway.platform.plugins.module_utils._image.spec import CATEGORIES, load_systems

SHOP = Path(__file__).resolve().parents[5] / "examples" / "shop"
SYSTEMS = ["backend", "worker", "frontend"]


def test_every_service_declares_all_six_categories_and_has_compose():
    for system in load_systems(str(SHOP), SYSTEMS):
        assert tuple(t.category for t in system.tests) == CATEGORIES, system.name
        assert system.compose_file, system.name
        assert [i.name for i in system.images] == [system.name]


def test_vendored_check_tool_copies_are_identical():
    assert (SHOP / "backend/tools/shopcheck.py").read_bytes() == (SHOP / "worker/tools/shopcheck.py").read_bytes()


def test_the_tracing_module_is_the_one_the_service_template_generates():
    """One module for trace context and spans: the shop's and the generated Python services' (licence line aside)."""
    template = SHOP.parents[1] / "roles" / "service_template" / "templates" / "python" / "app" / "tracing.py.j2"
    shop = (SHOP / "backend" / "shop_backend" / "tracing.py").read_text().splitlines()
    assert template.read_text().splitlines()[1:] == shop[1:]
    assert "{{" not in "".join(shop) and "{%" not in "".join(shop)  # nothing Jinja would change


def test_dockerfiles_use_only_local_bases_and_no_network():
    for name in SYSTEMS:
        text = (SHOP / name / "Dockerfile").read_text()
        bases = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
        assert bases and set(bases) <= {"slipway/debian:bookworm", "slipway/busybox:stable"}, name
        for tool in ("pip ", "apt-get", "apt ", "curl", "wget http"):
            assert tool not in text, (name, tool)
        assert "USER 10001" in text, name


def test_compose_publishes_on_loopback_only():
    for name in SYSTEMS:
        compose = yaml.safe_load((SHOP / name / "docker-compose.yml").read_text())
        for service in compose["services"].values():
            for port in service.get("ports", []):
                assert port.startswith("127.0.0.1:"), (name, port)


@pytest.mark.parametrize("name", SYSTEMS)
def test_manifests_render_with_digest_references_and_hardening(name):
    system = yaml.safe_load((SHOP / name / "slipway.yml").read_text())
    reference = f"127.0.0.1:5001/{name}@sha256:" + "a" * 64
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)  # noqa: S701 - renders YAML, not HTML
    kinds = {}
    namespaces = {"backend": "shop-elsewhere", name: "shop"}  # where this delivery runs each system (a showroom's)
    for template in sorted((SHOP / name / "deploy").glob("*.yaml.j2")):
        rendered = env.from_string(template.read_text()).render(
            system=system, images={name: reference}, values={"replicas": 3}, context="local", namespaces=namespaces)
        document = yaml.safe_load(rendered)
        if document is None:  # the frontend's route: only a context with slipway_gateway gets one (docs/gateway.md)
            continue
        assert document["metadata"]["namespace"] == "shop"
        assert document["metadata"]["labels"]["app.kubernetes.io/name"] == name
        kinds[document["kind"]] = document
    deployment = kinds["Deployment"]
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    container = pod["containers"][0]
    assert container["image"] == reference
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert container["readinessProbe"] and container["livenessProbe"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "ConfigMap" in kinds
    if "backend" in system["depends_on"]:  # the backend's Service wherever this delivery runs it
        assert kinds["ConfigMap"]["data"]["BACKEND_URL"] == "http://backend.shop-elsewhere.svc.cluster.local:8080"
    assert ("Service" in kinds) == (name != "worker")  # the worker serves no port
