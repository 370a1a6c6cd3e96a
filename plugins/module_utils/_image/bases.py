# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each image a build starts from is, for the content digest: asked of the Docker Engine, else of a registry.

An image pinned by digest (``name@sha256:...``) is that digest. Otherwise the engine's image ID for the reference
counts; when the engine does not have it (or does not answer), the registry the reference names is asked for the
config digest of the image for the platform, which is the ID the engine gives the same image once pulled, so the
tag does not change when the base arrives. A base that neither can resolve fails the image, naming the base and
the command that makes it: the digest is never computed without it. Plain Python; engine and registries are
passed in.
"""

from __future__ import annotations

import platform as host_platform
import re
import threading

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._image.registry import Registry

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")
# Slipway's own images, which no registry serves: the command (in the Slipway repository) that builds each.
BUILT_BY = {
    "slipway/busybox": "the local stack: `make up`",
    "slipway/debian": "the local stack: `make up`",
    "slipway/jaeger": "the local stack: `make up` (Jaeger built from hack/jaeger/go.mod)",
    "slipway/victorialogs": "the local stack: `make up` (VictoriaLogs built from hack/victorialogs/go.mod)",
    "slipway/python": "`make deps-images` (hack/deps-images.sh)",
    "slipway/postgres": "`make deps-images` (hack/deps-images.sh)",
    "slipway/redis": "`make deps-images` (hack/deps-images.sh)",
}


def split_reference(reference):
    """``(registry host, repository, tag or digest)`` of an image reference, normalised as the engine does:
    a first component with ``.`` or ``:``, or ``localhost``, is a registry; otherwise Docker Hub, where a
    one-component name is under ``library/``; no tag means ``latest``."""
    name, at, digest = reference.partition("@")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = DOCKER_HUB, name
    last = path.rsplit("/", 1)[-1]
    tag = "latest"
    if ":" in last:
        path, tag = path.rsplit(":", 1)
    if host == DOCKER_HUB and "/" not in path:
        path = "library/" + path
    return host, path, digest if at else tag


def pinned_digest(reference):
    """The digest a reference is pinned to (``name@sha256:...``), or None."""
    match = DIGEST.search(reference)
    return match.group(1) if match else None


def how_to_get(reference):
    """What to run so that ``reference`` resolves."""
    host, repository, _tag = split_reference(reference)
    short = repository if host == DOCKER_HUB else None
    if short in BUILT_BY:
        return f"{reference} is built by {BUILT_BY[short]} in the Slipway repository"
    return (f"pull or build it ({'docker pull ' + reference}), or name it by digest "
            f"(FROM {reference.split('@')[0]}@sha256:...)")


def controller_platform():
    machine = host_platform.machine().lower()
    return "linux/" + {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


class BaseResolver:
    """``resolver(base)`` -> the image ID or digest of a ``dockerfile.BaseImage``; one answer per reference and
    platform for the resolver's life, shared by the images digested in parallel.

    ``engine_factory()`` opens the Docker Engine (asked first); ``registry`` is the build's registry (its
    credentials serve bases under it); ``registry_factory(host)`` opens any other registry, anonymously.
    """

    def __init__(self, engine_factory, registry=None, registry_factory=None):
        self.engine_factory = engine_factory
        self.registry = registry
        self.registry_factory = registry_factory
        self._engine = None
        self._engine_problem = None
        self._platform = None
        self._registries = {}
        self._answers = {}
        self._lock = threading.Lock()

    def __call__(self, base):
        pinned = pinned_digest(base.reference)
        if pinned:
            return pinned
        key = (base.reference, base.platform)
        with self._lock:
            if key not in self._answers:
                self._answers[key] = self._resolve(base)
            return self._answers[key]

    def _resolve(self, base):
        engine = self._open_engine()
        if engine is not None:
            found = engine.image_id(base.reference)
            if found:
                return found
            local = f"the Docker Engine at {engine.host} does not have it"
        else:
            local = self._engine_problem
        host, repository, tag = split_reference(base.reference)
        try:
            found = self._registry(host).config_digest(repository, tag, base.platform or self._default_platform())
            remote = f"the registry {host} has no {repository}:{tag}"
        except SlipwayError as err:
            found, remote = None, err.msg
        if found:
            return found
        raise SlipwayError(f"base image {base.reference} cannot be resolved ({local}; {remote}), so the tag of "
                           f"an image built on it cannot be computed: {how_to_get(base.reference)}",
                           base_image=base.reference)

    def _open_engine(self):
        if self._engine is None and self._engine_problem is None:
            try:
                self._engine = self.engine_factory()
            except SlipwayError as err:
                self._engine_problem = err.msg
        return self._engine

    def _default_platform(self):
        if self._platform is None:
            self._platform = self._engine.platform() if self._engine is not None else controller_platform()
        return self._platform

    def _registry(self, host):
        if self.registry is not None and host == self.registry.registry:
            return self.registry
        if host not in self._registries:
            factory = self.registry_factory or Registry
            self._registries[host] = factory(DOCKER_HUB_API if host == DOCKER_HUB else host)
        return self._registries[host]

    def close(self):
        if self._engine is not None:
            self._engine.close()
            self._engine = None
