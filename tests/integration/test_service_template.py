"""Service templates against the real Docker Engine: each kind is generated, built and brought up with
`docker compose up`, then checked from the outside (127.0.0.1 only): health, fixtures in the database,
a source change served without a rebuild, nothing left after a plain `compose down`; then the generated
service goes through the project's own build.yml and test.yml (image_build, image_test with every declared
test category).

Before any of that, the generator's image check: an image the kind needs that is not in the engine fails the
run before anything is written, naming the image and the command that provides it; and if one goes missing
anyway, compose names the missing dependency image instead of looking for it on a registry.

Prints the time from "generate" to "answers on its port" for each template.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KINDS = ["frontend", "backend", "worker"]
PLAYBOOK = ROOT / "playbooks" / "new_service.yml"


def _engine_answers(host: str) -> bool:
    return subprocess.run(["docker", "version"], capture_output=True, env=dict(os.environ, DOCKER_HOST=host),
                          check=False).returncode == 0


@pytest.fixture(scope="module")
def engine(request) -> dict:
    """The stack's Docker Engine. Only Docker is needed here, so an engine that already answers is used as is;
    otherwise the session's `stack` fixture starts the stack."""
    env_file = ROOT / ".stack" / "env"
    host = os.environ.get("DOCKER_HOST") or (
        next((line.split("=", 1)[1].strip('"') for line in env_file.read_text().splitlines()
              if line.startswith("export DOCKER_HOST=")), "") if env_file.exists() else "")
    if not (host and _engine_answers(host)):
        host = request.getfixturevalue("stack")["DOCKER_HOST"]
    env = dict(os.environ, DOCKER_HOST=host, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
    # The compose plugin and the dependency images are prerequisites the templates document; both are cached.
    for script in ("compose-plugin.sh", "deps-images.sh"):
        done = subprocess.run([str(ROOT / "hack" / script)], capture_output=True, text=True, env=env, check=False)
        assert done.returncode == 0, f"hack/{script} failed:\n{done.stdout}\n{done.stderr}"
    return env


def run(cmd, env, cwd=None, check=True, timeout=600):
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        command = " ".join(map(str, cmd))
        pytest.fail(f"{command} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (fixed 127.0.0.1 URLs)
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (OSError, http.client.HTTPException) as error:  # a server restarting on a source change cuts answers
        return 0, str(error)


def wait_for(predicate, what: str, timeout: float = 60.0, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def registry(request, env) -> dict:
    """The environment for build.yml/test.yml: the stack's registry must answer (started if it does not)."""
    try:
        urllib.request.urlopen("http://127.0.0.1:5001/v2/", timeout=3)  # noqa: S310 (the local registry)
    except urllib.error.HTTPError:
        pass  # 401: it answers, and wants the credentials the inventory gives
    except OSError:
        request.getfixturevalue("stack")
    return dict(env, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))


def compose_leftovers(project: str, env) -> dict:
    label = f"label=com.docker.compose.project={project}"
    return {kind: run(["docker", kind, "ls", "-q", *(["-a"] if kind == "container" else []), "--filter", label],
                      env).stdout.split()
            for kind in ("container", "network", "volume")}


# What each template must prove, beyond health: how to read its fixtures, and one source edit to serve live.
def fixtures_present(kind, name, compose, port):
    if kind == "backend":
        rows = compose("exec", "-T", "db", "psql", "-U", "app", "-d", "app", "-tAc",
                       "SELECT count(*) FROM items WHERE name LIKE 'fixture:%'").stdout.strip()
        return rows == "3"
    if kind == "frontend":
        stored = compose("exec", "-T", "redis", "redis-cli", "LRANGE", f"{name}:messages", "0", "-1").stdout
        status, served = http_get(f"http://127.0.0.1:{port}/cgi-bin/messages")
        return "fixture: served from Redis" in stored and status == 200 and "fixture: served from Redis" in served
    # worker: the fixture jobs were queued, taken and their results stored
    result = compose("exec", "-T", "redis", "redis-cli", "HGET", f"{name}:results", "fixture-1").stdout.strip()
    return bool(result) and json.loads(result)["status"] == "done"


SOURCE_EDITS = {
    "backend": ("app/server.py", '"database": "up"}', '"database": "up", "edited": "live"}', "/healthz"),
    "worker": ("app/__main__.py", '"status": "ok",', '"status": "ok", "edited": "live",', "/healthz"),
    "frontend": ("www/index.html", "<h1>", '<h1 data-edited="live">', "/"),
}


def new_service(env, kind, name, dest, *extra, check=True):
    return run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), str(PLAYBOOK),
                "-e", f"kind={kind}", "-e", f"service={name}", "-e", f"dest={dest}", *extra],
               dict(env, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")), cwd=ROOT, check=check)


def missing_image(env) -> str:
    """An image name no engine here has: how the check is shown a missing image without removing a shared one."""
    image = f"slipway/missing-{secrets.token_hex(4)}:0"
    assert run(["docker", "image", "inspect", image], env, check=False).returncode != 0
    return image


@pytest.mark.parametrize("check_mode", [False, True], ids=["apply", "check"])
def test_a_missing_image_fails_the_generator_before_writing_naming_the_command(engine, tmp_path, check_mode):
    missing = missing_image(engine)
    dest = tmp_path / "orders"
    done = new_service(engine, "backend", "orders", dest, "-e",
                       json.dumps({"slipway_service_template_images": {"dependency": missing}}),
                       *(["--check"] if check_mode else []), check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert f"needs images the Docker Engine (DOCKER_HOST={engine['DOCKER_HOST']}) does not have" in output
    assert f"{missing} (dependency): run `docker pull {missing}`" in output
    assert "slipway/python:bookworm (runtime)" not in output  # present, so not reported
    assert "Nothing was written" in output
    assert not dest.exists()


def test_the_image_check_names_an_engine_that_does_not_answer(engine, tmp_path):
    dest = tmp_path / "orders"
    socket_path = tmp_path / "no-engine.sock"
    done = new_service(dict(engine, DOCKER_HOST=f"unix://{socket_path}"), "worker", "orders", dest, check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert f"in the Docker Engine (DOCKER_HOST=unix://{socket_path}). Start it" in output
    assert f"Docker said: Cannot connect to the Docker daemon at unix://{socket_path}" in output
    assert not dest.exists()


@pytest.mark.slow
def test_compose_names_a_missing_dependency_image_instead_of_pulling_it(engine, tmp_path):
    """Someone runs `docker compose up` after the image went away: the dependency is never pulled
    (pull_policy: never), so the error names the local image, not a registry lookup."""
    missing = missing_image(engine)
    name = f"st-missing-{secrets.token_hex(3)}"
    dest = tmp_path / name
    env = dict(engine, HOST_PORT=str(free_port()))
    new_service(env, "frontend", name, dest, "-e", "slipway_service_template_check_images=false",
                "-e", json.dumps({"slipway_service_template_images": {"dependency": missing}}))
    try:
        done = run(["docker", "compose", "up", "--build", "--wait", "--wait-timeout", "60"], env, cwd=dest,
                   check=False)
    finally:
        run(["docker", "compose", "down", "--volumes", "--remove-orphans", "--timeout", "5"], env, cwd=dest,
            check=False)
        run(["docker", "image", "rm", "-f", f"{name}:dev"], env, check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert f"No such image: {missing}" in output, output[-3000:]
    assert "registry-1.docker.io" not in output and "pull access denied" not in output, output[-3000:]
    compose_text = (dest / "docker-compose.yml").read_text()
    assert f"image: {missing}\n    pull_policy: never" in compose_text


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_generated_service_just_works(kind, engine, tmp_path, capsys, request):
    name = f"st-{kind}-{secrets.token_hex(3)}"
    dest = tmp_path / name
    port = free_port()
    env = dict(engine, HOST_PORT=str(port), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))

    def compose(*args, check=True):
        return run(["docker", "compose", *args], env, cwd=dest, check=check)

    leftovers = None
    started = time.monotonic()
    try:
        # With the image check on (the default): it passes, since the engine fixture built the images.
        new_service(env, kind, name, dest)
        compose("up", "--build", "--wait", "--wait-timeout", "180")
        health = f"http://127.0.0.1:{port}/healthz"
        wait_for(lambda: http_get(health)[0] == 200, f"{health} to answer 200")
        elapsed = time.monotonic() - started
        with capsys.disabled():
            print(f"\n[service_template] {kind}: generate -> answers on 127.0.0.1:{port} in {elapsed:.1f} s")

        # Published on 127.0.0.1 only.
        published = compose("port", name, "8080").stdout.strip()
        assert published == f"127.0.0.1:{port}", published

        wait_for(lambda: fixtures_present(kind, name, compose, port), f"{kind} fixtures in the database", 30)

        # A source change is served by the running container: same container, same image, no build.
        container = compose("ps", "-q", name).stdout.strip()
        image = run(["docker", "inspect", "-f", "{{.Image}}", container], env).stdout.strip()
        path, old, new, url_path = SOURCE_EDITS[kind]
        source = dest / path
        source.write_text(source.read_text().replace(old, new, 1))
        wait_for(lambda: "live" in http_get(f"http://127.0.0.1:{port}{url_path}")[1], "the edited source served", 30)
        assert compose("ps", "-q", name).stdout.strip() == container
        assert run(["docker", "inspect", "-f", "{{.Image}}", container], env).stdout.strip() == image

        source.write_text(source.read_text().replace(new, old, 1))  # back to the generated content
    finally:
        if dest.exists():
            compose("down", "--timeout", "5", check=False)  # plain `down`, what a developer types
            leftovers = compose_leftovers(name, env)
            # Never leak into the next test, even when an assertion above failed.
            compose("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)
            run(["docker", "image", "rm", "-f", f"{name}:dev"], env, check=False)
    assert leftovers == {"container": [], "network": [], "volume": []}

    # Delivered by the same playbooks as the example ecosystem: build.yml pushes it to the stack's registry by
    # digest, test.yml runs every category slipway.yml declares under image_test (functional ones with the
    # compose dependencies, fixtures included).
    registry_env = registry(request, env)
    pipeline = ["-i", str(ROOT / "inventories" / "local"), "-e", f"slipway_ecosystem_root={tmp_path}",
                "-e", json.dumps({"slipway_systems": [name]}), "-e", f"slipway_reports_dir={tmp_path / 'reports'}"]
    try:
        for playbook in ("build.yml", "test.yml"):
            run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), str(ROOT / "playbooks" / playbook), *pipeline],
                registry_env, cwd=ROOT)
    finally:
        pushed = run(["docker", "image", "ls", "-q", "--filter", f"reference=*/{name}"], env).stdout.split()
        if pushed:
            run(["docker", "image", "rm", "-f", *sorted(set(pushed))], env, check=False)
    verdicts = json.loads((tmp_path / "reports" / "tests-local.json").read_text())["images"][0]
    assert verdicts["verdict"] == "passed"
    assert [t["category"] for t in verdicts["tests"] if t["status"] == "passed"] == [
        "unit", "functional", "style", "duplication", "outdated", "licences"]


@pytest.mark.slow
def test_molecule_scenario_of_the_role(engine):
    """`molecule test -s service_template`: converge, idempotence, a refused local edit, testinfra verifiers."""
    # molecule's docker driver pulls a missing image even with pull: false, and nothing can be pulled here.
    if run(["docker", "image", "inspect", "slipway/debian:bookworm"], engine, check=False).returncode != 0:
        pytest.fail("slipway/debian:bookworm is missing: `python3 hack/stack.py up` builds it")
    run(["molecule", "test", "-s", "service_template"], engine, cwd=ROOT, timeout=1200)
