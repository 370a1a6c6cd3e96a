"""build_all: the registry predicate decides; bounded parallelism; failures reported, others go on."""

from __future__ import annotations

import threading
import time

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._image import build as b
from ansible_collections.slipway.platform.plugins.module_utils._image.digest import build_digest, tag_of
from ansible_collections.slipway.platform.plugins.module_utils._image.registry import Registry
from ansible_collections.slipway.platform.plugins.module_utils._image.spec import ImageSpec


class FakeEngine:
    """Records builds, pushes and base image lookups; fails the build of any tag containing a name in ``broken``;
    has the images of ``bases`` (reference -> ID)."""

    lock = threading.Lock()
    host = "unix:///fake.sock"

    def __init__(self, log, broken=(), delay=0.0, running=None, bases=None):
        self.log, self.broken, self.delay, self.running = log, broken, delay, running
        self.bases = bases or {}

    def image_id(self, reference):
        self.log.append(("inspect", reference))
        return self.bases.get(reference)

    def platform(self):
        return "linux/amd64"

    def build(self, context, dockerfile, tag, build_args, target):
        with self.lock:
            self.running[0] += 1
            self.running[1] = max(self.running[1], self.running[0])
        try:
            time.sleep(self.delay)
            if any(f"/{name}:" in tag for name in self.broken):
                raise SlipwayError(f"docker build of {tag} failed: boom", command=f"docker build -t {tag}",
                                   stdout="Step 2/2 : RUN false\nboom")
            self.log.append(("build", tag))
            return "sha256:image"
        finally:
            with self.lock:
                self.running[0] -= 1

    def push(self, repository, tag, auth):
        self.log.append(("push", f"{repository}:{tag}"))
        return "sha256:" + tag.ljust(64, "0")

    def close(self):
        pass


@pytest.fixture
def images(tmp_path):
    specs = []
    for name in ("alpha", "beta", "gamma", "delta"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "Dockerfile").write_text(f"FROM scratch\nLABEL name={name}\n")
        specs.append(ImageSpec(name, name, str(folder), "Dockerfile"))
    return specs


def run(images, registry, log, check_mode=False, broken=(), workers=2, delay=0.0, force=False, bases=None):
    running = [0, 0]
    results = b.build_all(images, Registry(registry.address, "slipway", registry.password),
                          lambda: FakeEngine(log, broken, delay, running, bases), auth={"username": "slipway"},
                          workers=workers, check_mode=check_mode, force=force)
    return results, running[1]


def test_absent_images_are_built_and_pushed_then_skipped(images, fake_registry):
    log = []
    results = run(images, fake_registry, log)[0]
    assert [r["action"] for r in results] == ["built"] * 4
    assert sorted(kind for kind, image in log) == ["build"] * 4 + ["push"] * 4
    first = results[0]
    assert first["tag"] == tag_of(build_digest(images[0].context))
    assert first["reference"] == f"{fake_registry.address}/alpha@{first['digest']}"
    # the registry now has them: nothing is built or pushed
    for r in results:
        fake_registry.manifests[(r["name"], r["tag"])] = (r["digest"], b"{}")
    log.clear()
    again = run(images, fake_registry, log)[0]
    assert [r["action"] for r in again] == ["skipped"] * 4 and log == []
    assert [r["reference"] for r in again] == [r["reference"] for r in results]
    changed, failed, references = b.summary(again)
    assert (changed, failed) == (False, []) and set(references) == {"alpha", "beta", "gamma", "delta"}


def test_one_byte_changes_the_tag(images, fake_registry):
    log = []
    results = run(images, fake_registry, log)[0]
    for r in results:
        fake_registry.manifests[(r["name"], r["tag"])] = (r["digest"], b"{}")
    with open(images[1].context + "/Dockerfile", "a") as handle:
        handle.write(" ")
    log.clear()
    again = run(images, fake_registry, log)[0]
    assert [r["action"] for r in again] == ["skipped", "built", "skipped", "skipped"]
    assert again[1]["tag"] != results[1]["tag"] and len(log) == 2


def test_check_mode_builds_nothing_and_predicts(images, fake_registry):
    log = []
    fake_registry.manifests[("alpha", tag_of(build_digest(images[0].context)))] = ("sha256:" + "1" * 64, b"{}")
    results = run(images, fake_registry, log, check_mode=True)[0]
    assert [r["action"] for r in results] == ["skipped", "would_build", "would_build", "would_build"]
    assert log == []
    assert b.summary(results)[0] is True
    real = run(images, fake_registry, log)[0]
    assert [r["action"] == "built" for r in real] == [r["action"] == "would_build" for r in results]


def test_a_broken_image_fails_alone_with_its_log_and_is_not_pushed(images, fake_registry):
    log = []
    results = run(images, fake_registry, log, broken=("beta",))[0]
    beta = results[1]
    assert beta["action"] == "failed" and not beta["pushed"] and beta["reference"] is None
    assert "boom" in beta["msg"] and "RUN false" in beta["stdout"] and beta["command"].startswith("docker build")
    assert not any("beta" in target for kind, target in log if kind == "push")
    assert [r["action"] for r in results if r["name"] != "beta"] == ["built"] * 3
    changed, failed, references = b.summary(results)
    assert [f["name"] for f in failed] == ["beta"] and "beta" not in references


def test_parallelism_is_bounded(images, fake_registry):
    peak = run(images, fake_registry, [], workers=2, delay=0.2)[1]
    assert peak == 2
    peak = run(images, fake_registry, [], workers=1, delay=0.05, force=True)[1]
    assert peak == 1


def test_registry_refusal_fails_before_any_build(images, fake_registry):
    log = []
    client = Registry(fake_registry.address, "slipway", "wrong")
    with pytest.raises(SlipwayError, match="refused"):
        b.build_all(images, client, lambda: FakeEngine(log, running=[0, 0]), workers=2)
    assert log == []
    with pytest.raises(SlipwayError, match="workers"):
        b.build_all(images, client, lambda: None, workers=0)


def test_a_rebuilt_base_changes_the_tags_of_the_images_on_it_and_only_theirs(images, fake_registry):
    for image in images[:2]:
        with open(image.context + "/Dockerfile", "w") as handle:
            handle.write(f"FROM slipway/busybox:stable\nLABEL name={image.name}\n")
    log, bases = [], {"slipway/busybox:stable": "sha256:" + "1" * 64}
    results = run(images, fake_registry, log, bases=bases)[0]
    assert [r["action"] for r in results] == ["built"] * 4
    assert results[0]["bases"] == {"slipway/busybox:stable": "sha256:" + "1" * 64} and results[2]["bases"] == {}
    assert log.count(("inspect", "slipway/busybox:stable")) == 1  # one lookup for the images sharing it
    for r in results:
        fake_registry.manifests[(r["name"], r["tag"])] = (r["digest"], b"{}")
    log.clear()
    assert [r["action"] for r in run(images, fake_registry, log, bases=bases)[0]] == ["skipped"] * 4
    bases["slipway/busybox:stable"] = "sha256:" + "2" * 64  # rebuilt under the same name
    log.clear()
    again = run(images, fake_registry, log, bases=bases)[0]
    assert [r["action"] for r in again] == ["built", "built", "skipped", "skipped"]
    assert [r["tag"] != s["tag"] for r, s in zip(again, results, strict=True)] == [True, True, False, False]


def test_an_unresolvable_base_fails_its_image_before_any_build(images, fake_registry):
    missing = f"{fake_registry.address}/team/none:1"  # neither the engine nor the registry has it
    with open(images[1].context + "/Dockerfile", "w") as handle:
        handle.write(f"FROM {missing}\n")
    log = []
    results = run(images, fake_registry, log)[0]
    beta = results[1]
    assert beta["action"] == "failed" and beta["tag"] is None and beta["base_image"] == missing
    assert f"base image {missing} cannot be resolved" in beta["msg"] and f"docker pull {missing}" in beta["msg"]
    assert not [target for kind, target in log if kind != "inspect" and "/beta:" in target]
    assert [r["action"] for r in results if r["name"] != "beta"] == ["built"] * 3
