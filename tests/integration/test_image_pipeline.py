"""Issue 5 on the real local stack: content-addressed builds, black-box tests, registry push.

Every check is made independently of what the modules say: the registry is asked over its HTTP API, the
engine's event stream shows what was built and pushed, and the engine is searched for leftovers.
Test systems are tiny busybox services with names unique to this run, so runs never see each other.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("SLIPWAY_STACK_DIR", ROOT / ".stack"))
PLAYBOOK = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(ROOT / "inventories" / "local")]
RUN = uuid.uuid4().hex[:6]


# --------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def engine(request):
    """DOCKER_HOST and the registry of the stack: docker and the registry are all these tests need, so a
    stack whose Kubernetes part is still coming up will do; otherwise the session ``stack`` fixture starts it."""
    status = subprocess.run([sys.executable, str(ROOT / "hack" / "stack.py"), "status"], capture_output=True,
                            text=True, check=False).stdout
    up = {line.split()[0] for line in status.splitlines() if len(line.split()) > 1 and line.split()[1] == "up"}
    if not {"docker", "registry"} <= up:
        request.getfixturevalue("stack")
    host = (STATE / "docker" / "host").read_text().strip()
    password = (STATE / "secrets" / "registry-password").read_text().strip()
    found = {"DOCKER_HOST": host, "registry": "127.0.0.1:5001", "password": password}
    yield found
    images = docker(found, "images", "-q", "--filter", f"reference=127.0.0.1:5001/it-{RUN}-*").stdout.split()
    if images:  # this run's local images; the registry keeps its (small) manifests
        docker(found, "rmi", "-f", *sorted(set(images)), check=False)


def docker(engine, *args, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check,
                          env=dict(os.environ, DOCKER_HOST=engine["DOCKER_HOST"]))


def registry_get(engine, path, method="GET", password=None):
    token = base64.b64encode(f"slipway:{password or engine['password']}".encode()).decode()
    request = urllib.request.Request(f"http://{engine['registry']}{path}", method=method, headers={
        "Authorization": f"Basic {token}",
        "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - fixed http URL
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, b""


def registry_tags(engine, name):
    status, headers, body = registry_get(engine, f"/v2/{name}/tags/list")
    return sorted(json.loads(body).get("tags") or []) if status == 200 else []


def service(root, name, body="echo hello", tests=None, compose=None, extra_files=None):
    """A tiny busybox system under ``root``."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text('FROM slipway/busybox:stable\nCOPY app.sh /app/app.sh\n'
                                       'USER 10001\nCMD ["sh", "/app/app.sh"]\n')
    (folder / "app.sh").write_text(body + "\n")
    (folder / ".dockerignore").write_text("slipway.yml\ndocker-compose.yml\nnotes/\n")
    for rel, text in (extra_files or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    description = {"name": name, "namespace": "shop", "images": [{"name": name}],
                   "tests": tests or {"unit": ["sh", "-c", "test -f /app/app.sh"]}}
    (folder / "slipway.yml").write_text(yaml.safe_dump(description))
    if compose:
        (folder / "docker-compose.yml").write_text(yaml.safe_dump(compose))
    return folder


def playbook(engine, name, tmp_path, systems, root, *extra, password=None, registry=None, check=False):
    """Run playbooks/<name>.yml on the local inventory for ``systems`` under ``root``; reports in tmp_path."""
    variables = {"slipway_ecosystem_root": str(root), "slipway_systems": systems,
                 "slipway_reports_dir": str(tmp_path / "reports")}
    if password is not None:
        variables["slipway_registry_password"] = password
    if registry is not None:
        variables["slipway_registry"] = registry
    varfile = tmp_path / f"vars-{uuid.uuid4().hex[:6]}.json"
    varfile.write_text(json.dumps(variables))
    argv = [*PLAYBOOK, str(ROOT / "playbooks" / f"{name}.yml"), "-e", f"@{varfile}", *extra]
    if check:
        argv.append("--check")
    result = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=900, check=False,
                            env=dict(os.environ, DOCKER_HOST=engine["DOCKER_HOST"], ANSIBLE_NOCOLOR="1",
                                     ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json"))
    return result


def task_result(run, index=0, name_part=None):
    data, end = json.JSONDecoder().raw_decode(run.stdout[run.stdout.index("{"):])
    tasks = data["plays"][0]["tasks"]
    if name_part:
        tasks = [t for t in tasks if name_part in t["task"]["name"]]
    return tasks[index]["hosts"]["localhost"]


class Events:
    """``docker events`` for images while a block runs: what was really built (tag) and pushed."""

    def __init__(self, engine):
        self.engine = engine

    def __enter__(self):
        # to the microsecond: a whole-second window also caught the last events of a build just before the block
        self.since = f"{time.time():.6f}"
        return self

    def __exit__(self, *exc):
        time.sleep(1.1)
        until = f"{time.time():.6f}"
        out = docker(self.engine, "events", "--since", self.since, "--until", until, "--filter", "type=image",
                     "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}").stdout
        self.actions = [line.split(" ", 1) for line in out.splitlines() if line]

    def of(self, action, name):
        """Events of ``action`` on the repository ``name`` (other runs may build at the same time)."""
        return [ref for act, ref in self.actions if act == action and f"/{name}:" in ref]

    def on(self, *names):
        return [a for a in self.actions if any(f"/{name}:" in a[1] for name in names)]


def leftovers(engine, label):
    return (docker(engine, "ps", "-aq", "--filter", f"label={label}").stdout.split()
            + docker(engine, "network", "ls", "-q", "--filter", f"label={label}").stdout.split()
            + docker(engine, "volume", "ls", "-q", "--filter", f"label={label}").stdout.split())


# --------------------------------------------------------------------------------------------- build
def test_unchanged_context_builds_and_pushes_nothing_and_one_byte_gives_a_new_digest(engine, tmp_path):
    root = tmp_path / "eco"
    names = [f"it-{RUN}-a", f"it-{RUN}-b"]
    for name in names:
        service(root, name, body=f"echo {name}")

    with Events(engine) as cold:
        first = playbook(engine, "build", tmp_path, names, root)
    assert first.returncode == 0, first.stdout[-3000:]
    references = json.loads((tmp_path / "reports" / "images-local.json").read_text())
    assert set(references) == set(names)
    for name in names:
        tags = registry_tags(engine, name)
        assert len(tags) == 1 and cold.of("push", name), (name, tags, cold.actions)
        status, headers, body = registry_get(engine, f"/v2/{name}/manifests/{tags[0]}", "HEAD")
        assert status == 200 and references[name] == f"127.0.0.1:5001/{name}@{headers['Docker-Content-Digest']}"

    # nothing changed (only an ignored file): no build, no push, same references, changed=false
    (root / names[0] / "notes").mkdir()
    (root / names[0] / "notes" / "todo.txt").write_text("ignored by .dockerignore\n")
    with Events(engine) as warm:
        second = playbook(engine, "build", tmp_path, names, root)
    assert second.returncode == 0, second.stdout[-3000:]
    build = task_result(second, name_part="Build and push")
    assert build["changed"] is False and {i["action"] for i in build["images"]} == {"skipped"}
    assert warm.on(*names) == [], warm.actions
    assert json.loads((tmp_path / "reports" / "images-local.json").read_text()) == references

    # one byte more in one service: that one gets a new tag and digest, the other is untouched
    with open(root / names[1] / "app.sh", "a") as handle:
        handle.write("#")
    with Events(engine) as changed:
        third = playbook(engine, "build", tmp_path, names, root)
    assert third.returncode == 0, third.stdout[-3000:]
    after = json.loads((tmp_path / "reports" / "images-local.json").read_text())
    assert after[names[0]] == references[names[0]] and after[names[1]] != references[names[1]]
    assert len(registry_tags(engine, names[1])) == 2 and len(registry_tags(engine, names[0])) == 1
    assert changed.of("push", names[1]) and not changed.of("push", names[0]) and not changed.of("tag", names[0])


def test_check_mode_predicts_and_builds_nothing(engine, tmp_path):
    root = tmp_path / "eco"
    name = f"it-{RUN}-check"
    service(root, name)
    with Events(engine) as events:
        run = playbook(engine, "build", tmp_path, [name], root, check=True)
    assert run.returncode == 0, run.stdout[-3000:]
    build = task_result(run, name_part="Build and push")
    assert build["changed"] is True and build["images"][0]["action"] == "would_build"
    assert events.on(name) == [] and registry_tags(engine, name) == []
    assert not (tmp_path / "reports" / "images-local.json").exists()
    real = playbook(engine, "build", tmp_path, [name], root)
    assert task_result(real, name_part="Build and push")["changed"] is True  # prediction held
    again = playbook(engine, "build", tmp_path, [name], root, check=True)
    assert task_result(again, name_part="Build and push")["changed"] is False


def test_broken_dockerfile_fails_cleanly_with_the_log_tail_and_pushes_nothing(engine, tmp_path):
    root = tmp_path / "eco"
    good, bad = f"it-{RUN}-good", f"it-{RUN}-broken"
    service(root, good)
    folder = service(root, bad)
    (folder / "Dockerfile").write_text("FROM slipway/busybox:stable\nRUN echo building-step-output && exit 7\n")
    run = playbook(engine, "build", tmp_path, [good, bad], root)
    assert run.returncode != 0
    build = task_result(run, name_part="Build and push")
    assert build["failed"] and f"{bad} (docker build" in build["msg"] and "Traceback" not in run.stdout
    assert "building-step-output" in build["stdout"] and build["command"].startswith("docker build -t")
    broken = [i for i in build["images"] if i["name"] == bad][0]
    assert broken["action"] == "failed" and broken["pushed"] is False
    assert registry_tags(engine, bad) == []
    assert len(registry_tags(engine, good)) == 1  # the others still go through
    assert not (tmp_path / "reports" / "images-local.json").exists()  # nothing recorded


def test_registry_down_or_wrong_credentials_fail_clearly_and_record_nothing(engine, tmp_path):
    root = tmp_path / "eco"
    name = f"it-{RUN}-auth"
    service(root, name)
    sentinel = f"Sentinel-{uuid.uuid4().hex}"
    with Events(engine) as events:
        wrong = playbook(engine, "build", tmp_path, [name], root, "-vvv", password=sentinel)
    assert wrong.returncode != 0
    failure = task_result(wrong, name_part="Build and push")
    assert "refused user 'slipway' (HTTP 401)" in failure["msg"]
    assert sentinel not in wrong.stdout + wrong.stderr
    assert events.on(name) == [] and registry_tags(engine, name) == []

    down = playbook(engine, "build", tmp_path, [name], root, registry="127.0.0.1:5999")
    assert down.returncode != 0
    assert "registry 127.0.0.1:5999 is unreachable" in task_result(down, name_part="Build and push")["msg"]
    assert not (tmp_path / "reports" / "images-local.json").exists()


def test_the_registry_password_never_appears_in_verbose_output(engine, tmp_path):
    root = tmp_path / "eco"
    name = f"it-{RUN}-quiet"
    service(root, name)
    run = playbook(engine, "build", tmp_path, [name], root, "-vvv", "--diff")
    assert run.returncode == 0, run.stdout[-2000:]
    assert engine["password"] not in run.stdout + run.stderr
    assert engine["password"] not in (tmp_path / "reports" / "images-local.json").read_text()


# --------------------------------------------------------------------------------------------- what a tag covers
def git(folder, *args):
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True,
                          env=dict(os.environ, GIT_AUTHOR_NAME="it", GIT_AUTHOR_EMAIL="it@example.invalid",
                                   GIT_COMMITTER_NAME="it", GIT_COMMITTER_EMAIL="it@example.invalid"))


def built_image(run):
    """The one image entry of a build playbook run."""
    assert run.returncode == 0, run.stdout[-3000:]
    return task_result(run, name_part="Build and push")["images"][0]


def test_git_metadata_is_neither_hashed_nor_sent(engine, tmp_path):
    """A service kept as its own repository: commits that touch only ignored files and fetches change .git,
    never the tag; the build proves .git is not in the context it is sent."""
    root = tmp_path / "eco"
    name = f"it-{RUN}-git"
    folder = service(root, name)
    (folder / "Dockerfile").write_text("FROM slipway/busybox:stable\nCOPY . /src/\n"
                                       "RUN test -f /src/app.sh && test ! -e /src/.git\n")
    git(folder, "init", "-q", "-b", "main")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "service")
    origin, other = tmp_path / "origin.git", tmp_path / "other"
    subprocess.run(["git", "clone", "-q", "--bare", str(folder), str(origin)], check=True)
    git(folder, "remote", "add", "origin", str(origin))
    first = built_image(playbook(engine, "build", tmp_path, [name], root))
    assert first["action"] == "built"

    (folder / "notes").mkdir()  # a commit that touches only what .dockerignore leaves out
    (folder / "notes" / "plan.md").write_text("later\n")
    git(folder, "add", "notes")
    git(folder, "commit", "-q", "-m", "notes")
    subprocess.run(["git", "clone", "-q", str(origin), str(other)], check=True)  # someone else pushes ...
    (other / "elsewhere.txt").write_text("another branch\n")
    git(other, "add", "elsewhere.txt")
    git(other, "commit", "-q", "-m", "elsewhere")
    git(other, "push", "-q", "origin", "HEAD:refs/heads/feature")
    git(folder, "fetch", "-q", "origin")  # ... and this checkout fetches it
    assert git(folder, "rev-parse", "origin/feature").stdout.strip() == git(other, "rev-parse", "HEAD").stdout.strip()

    with Events(engine) as events:
        second = built_image(playbook(engine, "build", tmp_path, [name], root))
    assert (second["action"], second["tag"]) == ("skipped", first["tag"])
    assert events.on(name) == [], events.actions


def test_a_rebuilt_base_rebuilds_its_dependents_under_a_new_tag(engine, tmp_path):
    """``slipway/busybox:stable`` -> a local base (rebuilt with another label) -> a service: the service's tag
    follows the base's image ID; a service on another base is left alone."""
    base = f"slipway-it-{RUN}/base:stable"
    root = tmp_path / "eco"
    name, bystander = f"it-{RUN}-onbase", f"it-{RUN}-bystander"
    service(root, bystander)
    (service(root, name) / "Dockerfile").write_text(f"FROM {base}\nCOPY app.sh /app/app.sh\n")

    def build_base(flavour):
        context = tmp_path / f"base-{flavour}"
        context.mkdir()
        (context / "Dockerfile").write_text(f"FROM slipway/busybox:stable\nLABEL slipway.test.flavour={flavour}\n")
        docker(engine, "build", "-q", "-t", base, str(context))
        return docker(engine, "image", "inspect", "--format", "{{.Id}}", base).stdout.strip()

    def flavour_of(reference):
        return docker(engine, "image", "inspect", "--format", '{{index .Config.Labels "slipway.test.flavour"}}',
                      reference).stdout.strip()

    try:
        one = build_base("one")
        first = playbook(engine, "build", tmp_path, [name, bystander], root)
        on_base, alone = task_result(first, name_part="Build and push")["images"]
        assert first.returncode == 0 and on_base["action"] == "built" and on_base["bases"] == {base: one}
        assert flavour_of(on_base["tag_reference"]) == "one"
        assert built_image(playbook(engine, "build", tmp_path, [name], root))["tag"] == on_base["tag"]  # stable

        two = build_base("two")
        assert two != one
        with Events(engine) as events:
            second = playbook(engine, "build", tmp_path, [name, bystander], root)
        rebuilt, untouched = task_result(second, name_part="Build and push")["images"]
        assert second.returncode == 0, second.stdout[-3000:]
        assert rebuilt["action"] == "built" and rebuilt["tag"] != on_base["tag"] and rebuilt["bases"] == {base: two}
        assert events.of("push", name) and flavour_of(rebuilt["tag_reference"]) == "two"
        assert (untouched["action"], untouched["tag"]) == ("skipped", alone["tag"]) and not events.on(bystander)
        assert set(registry_tags(engine, name)) == {on_base["tag"], rebuilt["tag"]}
    finally:
        docker(engine, "rmi", "-f", base, check=False)


def test_a_base_nobody_has_fails_its_image_by_name_and_builds_nothing(engine, tmp_path):
    root = tmp_path / "eco"
    name, absent = f"it-{RUN}-orphan", f"{engine['registry']}/it-{RUN}-absent:1"
    (service(root, name) / "Dockerfile").write_text(f"FROM {absent}\nCOPY app.sh /app/app.sh\n")
    with Events(engine) as events:
        run = playbook(engine, "build", tmp_path, [name], root)
    assert run.returncode != 0
    failure = task_result(run, name_part="Build and push")
    assert f"base image {absent} cannot be resolved" in failure["msg"] and "Traceback" not in run.stdout
    assert f"the registry {engine['registry']} has no it-{RUN}-absent:1" in failure["msg"]
    assert failure["images"][0]["action"] == "failed" and failure["images"][0]["tag"] is None
    assert events.on(name) == [] and registry_tags(engine, name) == []


def test_a_base_resolves_to_the_same_id_from_the_engine_and_from_the_registry(engine):
    """So a base that is pulled after its dependents were digested from the registry changes no tag."""
    from ansible_collections.slipway.platform.plugins.module_utils._image.bases import BaseResolver
    from ansible_collections.slipway.platform.plugins.module_utils._image.dockerfile import BaseImage
    from ansible_collections.slipway.platform.plugins.module_utils._image.engine import Engine
    from ansible_collections.slipway.platform.plugins.module_utils._image.registry import Registry

    repository = f"{engine['registry']}/it-{RUN}-pushed-base"
    docker(engine, "tag", "slipway/busybox:stable", f"{repository}:1")
    auth = {"username": "slipway", "password": engine["password"], "serveraddress": engine["registry"]}
    pusher = Engine(engine["DOCKER_HOST"])
    try:
        pusher.push(repository, "1", auth)
    finally:
        pusher.close()
    registry = Registry(engine["registry"], "slipway", engine["password"])
    base = BaseImage(f"{repository}:1", None, 1)
    local = BaseResolver(lambda: Engine(engine["DOCKER_HOST"]), registry)
    remote = BaseResolver(lambda: Engine("unix:///nonexistent/docker.sock"), registry)
    try:
        expected = docker(engine, "image", "inspect", "--format", "{{.Id}}", "slipway/busybox:stable").stdout.strip()
        assert local(base) == remote(base) == expected
    finally:
        local.close()


# --------------------------------------------------------------------------------------------- test
def test_a_hanging_command_is_killed_at_its_timeout_reported_and_cleaned_up(engine, tmp_path):
    root = tmp_path / "eco"
    name, dep = f"it-{RUN}-hang", "dep"
    compose = {"services": {
        dep: {"image": "slipway/busybox:stable", "command": ["sleep", "3600"],
              "volumes": ["scratch:/scratch"]},
        name: {"image": f"${{SLIPWAY_IMAGE_IT_{RUN.upper()}_HANG}}", "depends_on": [dep]}},
        "volumes": {"scratch": {}}}
    service(root, name, compose=compose, tests={
        "unit": {"command": ["sleep", "600"], "timeout": 3},
        "functional": {"command": ["sh", "-c", "ping -c 1 dep >/dev/null 2>&1; sleep 600"], "timeout": 4},
        "style": ["true"]})
    assert playbook(engine, "build", tmp_path, [name], root).returncode == 0
    started = time.monotonic()
    run = playbook(engine, "test", tmp_path, [name], root,
                   "-e", json.dumps({"slipway_test_categories": ["unit", "functional", "style"]}))
    elapsed = time.monotonic() - started
    assert run.returncode != 0
    result = task_result(run, name_part="Run each image")
    assert result["failed"] and "unit: timeout" in result["msg"] and "functional: timeout" in result["msg"]
    statuses = {t["category"]: t["status"] for t in result["images"][0]["tests"]}
    assert statuses == {"unit": "timeout", "functional": "timeout", "style": "passed"}
    assert elapsed < 300  # the 600 s sleeps were killed
    assert leftovers(engine, "slipway.io/test-run") == []
    projects = docker(engine, "ps", "-a", "--format", "{{.Label \"com.docker.compose.project\"}}").stdout.split()
    assert not [p for p in projects if name in p]
    assert not [n for n in docker(engine, "network", "ls", "--format", "{{.Name}}").stdout.split() if name in n]
    assert not [v for v in docker(engine, "volume", "ls", "--format", "{{.Name}}").stdout.split() if name in v]
    junit = ET.parse(tmp_path / "reports" / "tests-local.xml").getroot()  # noqa: S314 - our own report
    assert junit.get("errors") == "2"


def test_the_shop_builds_passes_all_six_categories_and_leaves_nothing(engine, tmp_path):
    shop = ROOT / "examples" / "shop"
    systems = ["backend", "worker", "frontend"]
    built = playbook(engine, "build", tmp_path, systems, shop)
    assert built.returncode == 0, built.stdout[-3000:]
    tested = playbook(engine, "test", tmp_path, systems, shop)
    assert tested.returncode == 0, tested.stdout[-5000:]
    report = json.loads((tmp_path / "reports" / "tests-local.json").read_text())
    assert report["passed"] is True
    for image in report["images"]:
        assert [t["category"] for t in image["tests"]] == ["unit", "functional", "style", "duplication",
                                                           "outdated", "licences"]
        assert all(t["status"] == "passed" and t["exit_code"] == 0 for t in image["tests"]), image
    junit = ET.parse(tmp_path / "reports" / "tests-local.xml").getroot()  # noqa: S314 - our own report
    assert (junit.get("tests"), junit.get("failures"), junit.get("errors")) == ("18", "0", "0")
    assert leftovers(engine, "slipway.io/test-run") == []
    assert not [p for p in docker(engine, "network", "ls", "--format", "{{.Name}}").stdout.split()
                if p.startswith("slipway-test-")]


def test_a_failing_check_fails_the_image_and_the_play(engine, tmp_path):
    root = tmp_path / "eco"
    name = f"it-{RUN}-dirty"
    shutil.copytree(ROOT / "examples" / "shop" / "frontend", root / name)
    (root / name / "slipway.yml").write_text((root / name / "slipway.yml").read_text()
                                             .replace("name: frontend", f"name: {name}"))
    text = (root / name / "slipway.yml").read_text()
    (root / name / "slipway.yml").write_text(text.replace("  - name: frontend", f"  - name: {name}"))
    with open(root / name / "lib" / "proxy.sh", "a") as handle:
        handle.write("trailing_space_here=1   \n")
    (root / name / "docker-compose.yml").unlink()  # no dependencies: the functional test is not run below
    assert playbook(engine, "build", tmp_path, [name], root).returncode == 0
    run = playbook(engine, "test", tmp_path, [name], root,
                   "-e", json.dumps({"slipway_test_categories": ["unit", "style"]}))
    assert run.returncode != 0
    result = task_result(run, name_part="Run each image")
    tests = {t["category"]: t for t in result["images"][0]["tests"]}
    assert tests["unit"]["status"] == "passed" and tests["style"]["status"] == "failed"
    assert "lib/proxy.sh" in tests["style"]["output"] and "trailing whitespace" in tests["style"]["output"]
    assert result["images"][0]["verdict"] == "failed"
    assert result["command"].endswith("sh tools/check.sh style") and "trailing whitespace" in result["stdout"]
