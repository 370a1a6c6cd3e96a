"""BaseResolver: what each base image is, from the engine first, then from the registry; clear when neither knows."""

from __future__ import annotations

import json

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._image import bases as b
from ansible_collections.slipway.platform.plugins.module_utils._image.dockerfile import BaseImage
from ansible_collections.slipway.platform.plugins.module_utils._image.registry import Registry

CONFIG = "sha256:" + "c" * 64
LOCAL = "sha256:" + "1" * 64


class FakeEngine:
    host = "unix:///fake.sock"

    def __init__(self, images, asked):
        self.images, self.asked = images, asked

    def image_id(self, reference):
        self.asked.append(reference)
        return self.images.get(reference)

    def platform(self):
        return "linux/amd64"

    def close(self):
        self.images = None


def base(reference, platform=None):
    return BaseImage(reference, platform, 1)


@pytest.mark.parametrize("reference, parts", [
    ("busybox", ("docker.io", "library/busybox", "latest")),
    ("slipway/python:bookworm", ("docker.io", "slipway/python", "bookworm")),
    ("127.0.0.1:5001/team/base:1", ("127.0.0.1:5001", "team/base", "1")),
    ("localhost/base", ("localhost", "base", "latest")),
    ("registry.example/base@sha256:" + "a" * 64, ("registry.example", "base", "sha256:" + "a" * 64)),
])
def test_references_are_split_as_the_engine_normalises_them(reference, parts):
    assert b.split_reference(reference) == parts


@pytest.mark.parametrize("reference, hint", [
    ("slipway/python:bookworm", "`make deps-images` (hack/deps-images.sh)"),
    ("slipway/postgres:15", "`make deps-images`"),
    ("slipway/redis:7", "`make deps-images`"),
    ("slipway/busybox:stable", "the local stack: `make up`"),
    ("slipway/debian:bookworm", "the local stack: `make up`"),
    ("team/base:1", "docker pull team/base:1"),
    ("127.0.0.1:5001/slipway/python:bookworm", "docker pull 127.0.0.1:5001/slipway/python:bookworm"),
])
def test_the_hint_names_the_command_that_makes_the_image(reference, hint):
    assert hint in b.how_to_get(reference)


def test_the_engine_answers_first_and_each_reference_is_asked_once():
    asked, opened = [], []

    def engine():
        opened.append(1)
        return FakeEngine({"slipway/busybox:stable": LOCAL}, asked)

    resolver = b.BaseResolver(engine, registry_factory=lambda host: pytest.fail(f"registry {host} asked"))
    busybox = base("slipway/busybox:stable")
    assert [resolver(busybox), resolver(busybox), resolver(busybox)] == [LOCAL] * 3
    assert asked == ["slipway/busybox:stable"] and opened == [1]
    resolver.close()


def test_a_pinned_base_is_its_digest_without_asking():
    resolver = b.BaseResolver(lambda: pytest.fail("engine opened"))
    pinned = "sha256:" + "e" * 64
    assert resolver(base(f"team/base:1@{pinned}")) == pinned


def index(*platforms):
    keys = ("os", "architecture", "variant")
    return {"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"digest": f"sha256:{str(n) * 64}", "platform": dict(zip(keys[:p.count("/") + 1], p.split("/"), strict=True))}
        for n, p in enumerate(platforms, start=2)]}


def test_a_base_the_engine_lacks_is_the_config_digest_the_registry_has(fake_registry):
    fake_registry.manifests[("team/base", "1")] = ("sha256:" + "9" * 64, json.dumps(
        {"schemaVersion": 2, "config": {"digest": CONFIG}}).encode())
    registry = Registry(fake_registry.address, "slipway", fake_registry.password)
    resolver = b.BaseResolver(lambda: FakeEngine({}, []), registry)
    assert resolver(base(f"{fake_registry.address}/team/base:1")) == CONFIG


def test_an_index_is_followed_to_the_platform_asked_for(fake_registry):
    fake_registry.manifests[("team/multi", "1")] = ("sha256:" + "8" * 64,
                                                    json.dumps(index("linux/arm64/v8", "linux/amd64")).encode())
    for n, config in ((2, "sha256:" + "a" * 64), (3, CONFIG)):
        fake_registry.manifests[("team/multi", f"sha256:{str(n) * 64}")] = (
            f"sha256:{str(n) * 64}", json.dumps({"config": {"digest": config}}).encode())
    registry = Registry(fake_registry.address, "slipway", fake_registry.password)
    resolver = b.BaseResolver(lambda: FakeEngine({}, []), registry)
    assert resolver(base(f"{fake_registry.address}/team/multi:1")) == CONFIG  # the engine's platform
    assert resolver(base(f"{fake_registry.address}/team/multi:1", "linux/arm64")) == "sha256:" + "a" * 64
    with pytest.raises(SlipwayError, match="has no image for linux/s390x"):
        resolver(base(f"{fake_registry.address}/team/multi:1", "linux/s390x"))


def test_without_an_engine_the_registry_still_answers(fake_registry):
    fake_registry.manifests[("team/base", "1")] = ("sha256:" + "9" * 64, json.dumps(
        {"config": {"digest": CONFIG}}).encode())

    def no_engine():
        raise SlipwayError("the Docker Engine at unix:///nowhere does not answer")

    resolver = b.BaseResolver(no_engine, registry_factory=lambda host: Registry(host, "slipway",
                                                                                fake_registry.password))
    assert resolver(base(f"{fake_registry.address}/team/base:1")) == CONFIG


def test_a_base_nobody_has_fails_naming_it_and_the_command_that_builds_it():
    asked_hosts = []

    def unreachable(host):
        asked_hosts.append(host)
        return Registry("127.0.0.1:9", timeout=0.5)  # nothing listens on the discard port

    resolver = b.BaseResolver(lambda: FakeEngine({}, []), registry_factory=unreachable)
    with pytest.raises(SlipwayError) as caught:
        resolver(base("slipway/python:bookworm"))
    message = caught.value.msg
    assert message.startswith("base image slipway/python:bookworm cannot be resolved")
    assert "the Docker Engine at unix:///fake.sock does not have it" in message and "unreachable" in message
    assert message.endswith("slipway/python:bookworm is built by `make deps-images` (hack/deps-images.sh) "
                            "in the Slipway repository")
    assert caught.value.details["base_image"] == "slipway/python:bookworm"
    assert asked_hosts == ["registry-1.docker.io"]


def test_a_tag_the_registry_lacks_is_said_so(fake_registry):
    registry = Registry(fake_registry.address, "slipway", fake_registry.password)
    resolver = b.BaseResolver(lambda: FakeEngine({}, []), registry)
    with pytest.raises(SlipwayError, match=f"the registry {fake_registry.address} has no team/none:1.*docker pull"):
        resolver(base(f"{fake_registry.address}/team/none:1"))
