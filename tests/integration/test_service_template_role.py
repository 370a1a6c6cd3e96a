"""The service_template role through ansible-playbook, on this machine (no stack needed): the contract of
its variables, then check -> apply -> check -> apply, verified on disk independently of `changed`, then
a local edit refused and kept, and overwritten only with force; the deploy templates rendered by the delivery
engine's own code. The image check needs an engine: test_service_template.py proves it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from fixtures.deliver.support import ROOT

assert ROOT  # fixtures.deliver.support has put the collection on sys.path
from ansible_collections.slipway.platform.plugins.plugin_utils._render import ManifestRenderer  # noqa: E402

ROLE = ROOT / "roles" / "service_template"


def test_argument_specs_equal_the_defaults():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    options = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert {k: v["default"] for k, v in options.items() if "default" in v} == defaults
    assert {k for k, v in options.items() if v.get("required")} == {
        "slipway_service_template_kind", "slipway_service_template_name", "slipway_service_template_dest"}


def test_every_template_file_is_used_and_exists():
    tables = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    listed = {entry["src"] for entry in tables["__slipway_service_template_common"]}
    for entries in tables["__slipway_service_template_kinds"].values():
        listed |= {entry["src"] for entry in entries}
    on_disk = {str(p.relative_to(ROLE / "templates")) for p in (ROLE / "templates").rglob("*.j2")}
    assert listed == on_disk


def test_every_default_image_names_the_command_that_builds_it():
    """A missing image is reported with a command: each kind's images must be ones Slipway's commands build,
    hack/deps-images.sh (make deps-images) or the stack (make up), and the table must say which."""
    tables = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    commands = tables["__slipway_service_template_image_commands"]
    defaults = {image for images in tables["__slipway_service_template_images"].values() for image in images.values()}
    assert defaults == set(commands)
    deps_images = set(re.findall(r"build_image (slipway/\S+)", (ROOT / "hack" / "deps-images.sh").read_text()))
    stack_images = set(re.findall(r'"(slipway/[^"]+)"', re.search(r"^BASE_IMAGES = .*$",
                                  (ROOT / "hack" / "stacklib" / "config.py").read_text(), re.MULTILINE).group(0)))
    assert {image for image, command in commands.items() if command == "make deps-images"} <= deps_images
    assert {image for image, command in commands.items() if command == "make up"} <= stack_images
    assert set(commands.values()) == {"make deps-images", "make up"}


def generate(dest: Path, *extra: str, check=False, diff=False, kind="backend", service="orders"):
    # These tests prove what is written, on any machine: the image check, which needs a Docker Engine with the
    # images, is off here and proven in test_service_template.py.
    command = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), str(ROOT / "playbooks" / "new_service.yml"),
               "-e", f"kind={kind}", "-e", f"service={service}", "-e", f"dest={dest}",
               "-e", "slipway_service_template_check_images=false", *extra]
    command += ["--check"] if check else []
    command += ["--diff"] if diff else []
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def write_result(done: subprocess.CompletedProcess) -> dict:
    """The result of the role's write task, from the json callback's output."""
    # Other callbacks (ansible.cfg enables profile_tasks) may print around the json callback's document.
    start = done.stdout.index("{\n") if done.stdout.startswith("{\n") else done.stdout.index("\n{\n") + 1
    plays = json.JSONDecoder().raw_decode(done.stdout[start:])[0]["plays"]
    for task in plays[0]["tasks"]:
        if task["task"]["name"].split(" : ")[-1].startswith("Write the service into"):
            return task["hosts"]["localhost"]
    raise AssertionError(f"no write task in the output:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def test_generated_files_name_their_images_and_the_command_that_provides_each(tmp_path):
    """The README says first what must be in the engine and how to get it; the Dockerfile and compose use those
    images, and compose never pulls the dependency (a missing one is named as missing, not looked up on a
    registry). An image that is not Slipway's is named with `docker pull`."""
    dest = tmp_path / "orders"
    override = {"slipway_service_template_images": {"runtime": "corp/python:3.11"}}
    done = generate(dest, "-e", json.dumps(override))
    assert done.returncode == 0, done.stdout[-3000:]
    readme = (dest / "README.md").read_text()
    before_start = readme[:readme.index("## Start")]
    assert "- `corp/python:3.11` (runtime): `docker pull corp/python:3.11`" in before_start
    assert "- `slipway/postgres:15` (dependency): `make deps-images`" in before_start
    froms = [line for line in (dest / "Dockerfile").read_text().splitlines() if line.startswith("FROM ")]
    assert froms == ["FROM corp/python:3.11 AS build", "FROM corp/python:3.11 AS runtime"]
    database = yaml.safe_load((dest / "docker-compose.yml").read_text())["services"]["db"]
    assert database["image"] == "slipway/postgres:15" and database["pull_policy"] == "never"
    recorded = json.loads((dest / ".slipway-template.json").read_text())["variables"]
    assert recorded["images"] == {"runtime": "corp/python:3.11", "dependency": "slipway/postgres:15"}


def test_an_image_override_for_an_unknown_role_is_refused_before_writing(tmp_path):
    dest = tmp_path / "orders"
    done = generate(dest, "-e", json.dumps({"slipway_service_template_images": {"base": "corp/python:3.11"}}))
    assert done.returncode != 0
    assert "takes the keys runtime and dependency only" in done.stdout
    assert not dest.exists()


def tree(dest: Path) -> dict:
    return {str(p.relative_to(dest)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(dest.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("service") / "orders"


def test_check_on_a_fresh_folder_plans_everything_and_writes_nothing(generated):
    done = generate(generated, check=True)
    assert done.returncode == 0, done.stdout[-3000:]
    result = write_result(done)
    assert result["changed"] and "Dockerfile" in result["created"]
    assert not generated.exists()


def test_apply_writes_the_service(generated):
    done = generate(generated)
    assert done.returncode == 0, done.stdout[-3000:]
    assert write_result(done)["changed"]
    files = tree(generated)
    assert {"Dockerfile", "docker-compose.yml", "slipway.yml", "README.md", "deploy/deployment.yaml.j2",
            "app/server.py", "fixtures/fixtures.sql", ".slipway-template.json"} <= set(files)
    assert os.access(generated / "tools" / "check.sh", os.X_OK)


def test_check_then_apply_again_change_nothing(generated):
    before = tree(generated)
    mtimes = {p: p.stat().st_mtime_ns for p in generated.rglob("*")}
    for check in (True, False):
        done = generate(generated, check=check)
        assert done.returncode == 0, done.stdout[-3000:]
        result = write_result(done)
        assert not result["changed"] and not result["created"] and not result["updated"]
    assert tree(generated) == before
    assert {p: p.stat().st_mtime_ns for p in generated.rglob("*")} == mtimes


def test_a_local_edit_is_refused_named_and_kept(generated):
    server = generated / "app" / "server.py"
    server.write_text(server.read_text() + "# mine\n")
    edited = tree(generated)
    done = generate(generated)
    assert done.returncode != 0
    result = write_result(done)
    assert result["conflicts"] == {"app/server.py": "edited"} and "app/server.py" in result["msg"]
    assert tree(generated) == edited


def test_check_diff_with_force_shows_the_overwrite_and_writes_nothing(generated):
    edited = tree(generated)
    done = generate(generated, "-e", "force=true", check=True, diff=True)
    assert done.returncode == 0, done.stdout[-3000:]
    result = write_result(done)
    assert result["updated"] == ["app/server.py"]
    assert [d["after_header"] for d in result["diff"]] == [str(generated / "app" / "server.py")]
    assert "# mine" in result["diff"][0]["before"] and "# mine" not in result["diff"][0]["after"]
    assert tree(generated) == edited


def test_force_overwrites_then_the_service_is_stable_again(generated):
    assert generate(generated, "-e", "force=true").returncode == 0
    assert "# mine" not in (generated / "app" / "server.py").read_text()
    assert not write_result(generate(generated))["changed"]


def render_like_deliver(folder: Path, variables: dict) -> dict:
    """Each object a system folder's deploy templates render to, by kind, rendered as the delivery engine renders
    them: its own renderer, with the variables it gives templates (system, images, context,
    values; see ActionModule.render in plugins/action/deliver.py)."""
    renderer = ManifestRenderer(Templar(loader=DataLoader()))
    renderer.use([str(folder)], variables)
    objects = {}
    for template in sorted(folder.glob("*.yaml.j2")):
        for document in renderer.render_file(variables["system"]["name"], str(template), str(folder)):
            objects[document["content"]["kind"]] = document["content"]
    return objects


@pytest.mark.parametrize("kind", ["frontend", "backend", "worker"])
def test_deploy_templates_render_to_kubernetes_objects(kind, tmp_path):
    """What deliver renders from a generated service: valid objects, recommended labels, probes, resources."""
    dest = tmp_path / "svc"
    done = generate(dest, kind=kind, service="svc")
    assert done.returncode == 0, done.stdout[-3000:]
    system = yaml.safe_load((dest / "slipway.yml").read_text())
    variables = {"system": system, "images": {"svc": "127.0.0.1:5001/svc@sha256:" + "a" * 64},
                 "context": "local", "values": {"replicas": 3}}
    objects = render_like_deliver(dest / system["manifests"], variables)
    assert set(objects) == {"worker": {"Deployment"}, "frontend": {"Deployment", "Service"},
                            "backend": {"Deployment", "Service", "Secret"}}[kind]
    deployment = objects["Deployment"]
    labels = deployment["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "svc" and labels["app.kubernetes.io/component"] == kind
    assert labels["app.kubernetes.io/managed-by"] == "slipway" and len(labels["app.kubernetes.io/version"]) <= 63
    assert deployment["metadata"]["namespace"] == "shop" and deployment["spec"]["replicas"] == 3
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == variables["images"]["svc"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["port"] == "http"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    if "Service" in objects:
        assert objects["Service"]["spec"]["selector"] == selector
    if "Secret" in objects:  # the database password never sits in the Deployment
        env = {item["name"]: item for item in container["env"]}
        reference = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert reference == {"name": objects["Secret"]["metadata"]["name"], "key": "url"}
        assert "url" in objects["Secret"]["stringData"]


def test_a_worker_given_the_bus_gets_its_url_and_identity_from_a_secret(tmp_path):
    """values.bus_url (the catalogue's nats) reaches the worker as NATS_URL; the credentials only by reference."""
    dest = tmp_path / "svc"
    assert generate(dest, kind="worker", service="svc").returncode == 0
    system = yaml.safe_load((dest / "slipway.yml").read_text())
    variables = {"system": system, "images": {"svc": "127.0.0.1:5001/svc@sha256:" + "a" * 64}, "context": "local",
                 "values": {"bus_url": "nats://nats.bus.svc:4222", "bus_secret": "shop-bus"}}
    container = render_like_deliver(dest / system["manifests"], variables)["Deployment"]["spec"]["template"][
        "spec"]["containers"][0]
    env = {item["name"]: item for item in container["env"]}
    assert env["NATS_URL"]["value"] == "nats://nats.bus.svc:4222"
    assert env["NATS_USER"]["valueFrom"]["secretKeyRef"] == {"name": "shop-bus", "key": "user"}
    assert env["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "shop-bus", "key": "password"}
    without = render_like_deliver(dest / system["manifests"], dict(variables, values={}))["Deployment"]
    assert not [e for e in without["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"].startswith("NATS")]
    assert "values.bus_url" in (dest / "README.md").read_text()
