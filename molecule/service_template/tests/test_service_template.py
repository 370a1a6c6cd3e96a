"""What the role generated on the node, checked from the node itself (testinfra)."""

from __future__ import annotations

import hashlib
import json

import pytest

KINDS = ["frontend", "backend", "worker"]
COMMON = ["Dockerfile", "docker-compose.yml", "slipway.yml", "README.md", "LICENSE", "dependencies.txt",
          ".dockerignore", "tools/check.sh", "deploy/deployment.yaml.j2"]


def root(kind):
    return f"/srv/services/demo-{kind}"


@pytest.mark.parametrize("kind", KINDS)
def test_every_file_of_the_shape_is_there(host, kind):
    for path in COMMON:
        assert host.file(f"{root(kind)}/{path}").is_file, path
    assert host.file(f"{root(kind)}/tools/check.sh").mode == 0o755


@pytest.mark.parametrize("kind", KINDS)
def test_the_manifest_records_what_is_on_disk(host, kind):
    manifest = json.loads(host.file(f"{root(kind)}/.slipway-template.json").content_string)
    assert manifest["template"] == kind
    for path, recorded in manifest["files"].items():
        if (kind, path) == ("backend", "app/server.py"):
            continue  # edited on purpose by the side effect
        assert hashlib.sha256(host.file(f"{root(kind)}/{path}").content).hexdigest() == recorded, path


def test_the_local_edit_was_kept(host):
    assert "# a local edit the generator must keep" in host.file(f"{root('backend')}/app/server.py").content_string


@pytest.mark.parametrize("kind", KINDS)
def test_the_system_description_names_the_service(host, kind):
    text = host.file(f"{root(kind)}/slipway.yml").content_string
    assert f"name: demo-{kind}\n" in text and "\nport: " in text
    assert ("health:" in text) == (kind != "worker")  # a worker has no Service to check through


@pytest.mark.parametrize("kind", KINDS)
def test_compose_publishes_on_loopback_only(host, kind):
    text = host.file(f"{root(kind)}/docker-compose.yml").content_string
    ports = [line.strip() for line in text.splitlines() if ":${HOST_PORT" in line and not line.startswith("#")]
    assert ports and all(line.startswith('- "127.0.0.1:') for line in ports)


def test_shell_and_python_sources_parse(host):
    assert host.run(f"sh -n {root('frontend')}/www/cgi-bin/messages && sh -n {root('frontend')}/tools/check.sh").rc == 0
    compiled = host.run(f"python3 -m py_compile {root('backend')}/app/server.py {root('worker')}/app/jobs.py")
    assert compiled.rc == 0, compiled.stderr
