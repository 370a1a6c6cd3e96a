# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker Engine, through the Docker SDK for Python: build, push, pull, run one-off containers.

Every failure is a SlipwayError that carries the equivalent ``docker`` command line and the tail of what
the engine said, so a user can reproduce it by hand. Registry passwords never enter a message or a log.
"""

from __future__ import annotations

import collections
import os
import shlex
import tempfile

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._image.digest import write_context_tar

TAIL_LINES = 40


def tail(lines, count=TAIL_LINES):
    """The last ``count`` lines of an iterable of lines, as one string."""
    return "\n".join(list(collections.deque(lines, maxlen=count)))


def docker_sdk():
    try:
        import docker  # noqa: PLC0415 - optional dependency, reported cleanly when missing
    except ImportError:
        raise SlipwayError("the Docker SDK for Python is required on the controller: pip install docker") from None
    return docker


class Engine:
    """A connection to one Docker Engine; ``docker_host`` defaults to ``$DOCKER_HOST``."""

    def __init__(self, docker_host=None, timeout=600):
        docker = docker_sdk()
        self.host = docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        self.errors = docker.errors
        import requests.exceptions  # noqa: PLC0415 - the Docker SDK's own transport

        self.timeouts = requests.exceptions
        try:
            self.api = docker.APIClient(base_url=self.host, version="auto", timeout=timeout)
            self.api.ping()
        except Exception as err:  # the SDK raises several unrelated types for "no engine here"
            raise SlipwayError(f"the Docker Engine at {self.host} does not answer: {err}",
                               docker_host=self.host) from None

    def close(self):
        self.api.close()

    # -- images ---------------------------------------------------------------------------------------
    def build(self, context, dockerfile, tag, build_args=None, target=None):
        """Build ``tag`` from ``context``; returns the image id. Raises SlipwayError with the log tail."""
        command = ["docker", "build", "-t", tag, "-f", dockerfile]
        for key, value in sorted((build_args or {}).items()):
            command += ["--build-arg", f"{key}={value}"]
        if target:
            command += ["--target", target]
        command.append(context)
        log, image_id = [], None
        try:
            with tempfile.TemporaryFile() as archive:
                inside = write_context_tar(context, dockerfile, archive)
                archive.seek(0)
                stream = self.api.build(fileobj=archive, custom_context=True, dockerfile=inside, tag=tag,
                                        buildargs=build_args or {}, target=target or None, rm=True, forcerm=True,
                                        pull=False, decode=True)
                image_id = self._follow_build(stream, tag, command, log)
        except self.errors.APIError as err:
            raise SlipwayError(f"docker build of {tag} failed: {err.explanation or err}",
                               command=shlex.join(command), stdout=tail(log), stderr=str(err)) from None
        if image_id is None:
            image_id = self.api.inspect_image(tag)["Id"]
        return image_id

    @staticmethod
    def _follow_build(stream, tag, command, log):
        """Collect the build log into ``log``; returns the image id the engine announced, if any."""
        image_id = None
        for chunk in stream:
            if "stream" in chunk:
                log.extend(chunk["stream"].rstrip("\n").splitlines())
            if "error" in chunk:
                log.append(chunk["error"].rstrip("\n"))
                raise SlipwayError(f"docker build of {tag} failed: {chunk['error'].strip()}",
                                   command=shlex.join(command), stdout=tail(log), stderr=chunk["error"])
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
        return image_id

    def push(self, repository, tag, auth=None):
        """Push ``repository:tag``; returns the manifest digest the registry answered with."""
        command = shlex.join(["docker", "push", f"{repository}:{tag}"])
        log, digest = [], None
        try:
            for chunk in self.api.push(repository, tag=tag, auth_config=auth or None, stream=True, decode=True):
                if "status" in chunk and "progressDetail" not in chunk:
                    log.append(chunk["status"])
                if "error" in chunk:
                    raise SlipwayError(f"docker push of {repository}:{tag} failed: {chunk['error'].strip()}",
                                       command=command, stdout=tail(log), stderr=chunk["error"])
                if "aux" in chunk and "Digest" in chunk["aux"]:
                    digest = chunk["aux"]["Digest"]
        except self.errors.APIError as err:
            raise SlipwayError(f"docker push of {repository}:{tag} failed: {err.explanation or err}",
                               command=command, stdout=tail(log), stderr=str(err)) from None
        if not digest:
            raise SlipwayError(f"docker push of {repository}:{tag} reported no digest", command=command,
                               stdout=tail(log))
        return digest

    def has_image(self, reference):
        return self.image_id(reference) is not None

    def image_id(self, reference):
        """The ID of the image ``reference`` names in this engine, or None when the engine has no such image."""
        try:
            return self.api.inspect_image(reference)["Id"]
        except self.errors.ImageNotFound:
            return None
        except self.errors.APIError as err:
            raise SlipwayError(f"the Docker Engine at {self.host} could not inspect {reference}: "
                               f"{err.explanation or err}", command=shlex.join(["docker", "image", "inspect",
                                                                                reference])) from None

    def platform(self):
        """The engine's ``os/architecture``: the platform it builds and pulls for."""
        version = self.api.version()
        return f"{version['Os']}/{version['Arch']}"

    def pull(self, repository, reference, auth=None):
        """Pull ``repository:reference`` (a tag, or ``sha256:...`` for a digest)."""
        separator = "@" if reference.startswith("sha256:") else ":"
        command = shlex.join(["docker", "pull", f"{repository}{separator}{reference}"])
        try:
            self.api.pull(repository, tag=reference, auth_config=auth or None)
        except self.errors.APIError as err:
            raise SlipwayError(f"docker pull of {repository}{separator}{reference} failed: "
                               f"{err.explanation or err}", command=command, stderr=str(err)) from None

    # -- containers -----------------------------------------------------------------------------------
    def run(self, image, command, timeout, network="none", environment=None, labels=None):
        """Run ``command`` in a new container of ``image``; kill it after ``timeout`` seconds.

        Returns ``(exit_code or None, output bytes, timed_out)``; the container is always removed.
        """
        container = self.api.create_container(
            image, command=list(command), environment=environment or {}, labels=labels or {},
            host_config=self.api.create_host_config(network_mode=network),
        )["Id"]
        timed_out, exit_code = False, None
        try:
            self.api.start(container)
            try:
                exit_code = self.api.wait(container, timeout=timeout)["StatusCode"]
            except (self.timeouts.ReadTimeout, self.timeouts.ConnectionError):  # how the SDK says "timeout"
                timed_out = True
                self.api.kill(container)
            output = self.api.logs(container, stdout=True, stderr=True)
        finally:
            self.api.remove_container(container, force=True, v=True)
        return exit_code, output, timed_out

    def remove_labelled(self, label):
        """Remove every container carrying ``label`` (``key=value``); returns how many there were."""
        found = self.api.containers(all=True, filters={"label": label})
        for container in found:
            self.api.remove_container(container["Id"], force=True, v=True)
        return len(found)
