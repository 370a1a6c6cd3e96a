"""The service_template role through ansible-playbook, on this machine (no stack needed): the contract of
its variables, then check -> apply -> check -> apply, verified on disk independently of `changed`, then
a local edit refused and kept, and overwritten only with force."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
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


def generate(dest: Path, *extra: str, check=False, diff=False, kind="backend", service="orders"):
    command = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), str(ROOT / "playbooks" / "new_service.yml"),
               "-e", f"kind={kind}", "-e", f"service={service}", "-e", f"dest={dest}", *extra]
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


@pytest.mark.parametrize("kind", ["frontend", "backend", "worker"])
def test_deploy_templates_render_to_kubernetes_objects(kind, tmp_path):
    """What deliver renders from a generated service: valid objects, recommended labels, probes, resources."""
    jinja2 = pytest.importorskip("jinja2")
    dest = tmp_path / "svc"
    done = generate(dest, kind=kind, service="svc")
    assert done.returncode == 0, done.stdout[-3000:]
    system = yaml.safe_load((dest / "slipway.yml").read_text())
    variables = {"system": system, "images": {"svc": "127.0.0.1:5001/svc@sha256:" + "a" * 64},
                 "context": "local", "values": {"replicas": 3}}
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    objects = {}
    for template in sorted((dest / system["manifests"]).glob("*.yaml.j2")):
        for document in yaml.safe_load_all(environment.from_string(template.read_text()).render(variables)):
            objects[document["kind"]] = document
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
