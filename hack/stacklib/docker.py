"""Stage: the Docker Engine (the stack's own dockerd, or one that already answers), and the docker CLI on it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from stacklib.config import LOGS, STATE
from stacklib.proc import run, running_pid, start_daemon, step, stop_daemon, unmount_below, wait_until


def docker_host() -> str:
    return (STATE / "docker" / "host").read_text().strip() if (STATE / "docker" / "host").exists() else ""


def docker_answers(host: str) -> bool:
    result = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                            env=dict(os.environ, DOCKER_HOST=host), timeout=20)
    return result.returncode == 0


@step("docker engine")
def ensure_docker() -> str:
    (STATE / "docker").mkdir(parents=True, exist_ok=True)
    own = f"unix://{STATE / 'docker' / 'docker.sock'}"
    if running_pid("dockerd") and docker_answers(own):
        (STATE / "docker" / "host").write_text(own)
        return f"already running at {own}"
    external = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if external != own and docker_answers(external):
        (STATE / "docker" / "host").write_text(external)
        return f"using the engine that answers at {external}"
    data = STATE / "docker"
    start_daemon("dockerd", [
        "dockerd", "--data-root", str(data / "data"), "--exec-root", str(data / "exec"),
        "--pidfile", str(data / "dockerd.pid"), "--host", own, "--storage-driver", "overlay2",
        "--ip", "127.0.0.1",
    ])
    wait_until(lambda: docker_answers(own), "dockerd", LOGS / "dockerd.log", timeout=60, daemon="dockerd")
    (STATE / "docker" / "host").write_text(own)
    return f"started at {own}"


def docker(*args: str, log: Path | None = None, check: bool = True, stdin: bytes | None = None):
    return run(["docker", *args], log=log, env={"DOCKER_HOST": docker_host()}, check=check, stdin=stdin)


def stop_own_docker() -> bool:
    """``down``: remove the containers of the stack's own dockerd and stop it; an external engine is left alone."""
    if not running_pid("dockerd"):
        return False
    host = docker_host()
    ids = subprocess.run(["docker", "ps", "-q"], capture_output=True, text=True,
                         env=dict(os.environ, DOCKER_HOST=host)).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, env=dict(os.environ, DOCKER_HOST=host))
    stop_daemon("dockerd", timeout=30)
    # dockerd leaves its default network namespace bind-mounted under its exec root: a mount, not a file to delete
    unmount_below(STATE / "docker" / "exec")
    return True
