"""Running things for the stack: commands, daemons with pid files, waits, announced steps, the stack lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from stacklib.config import LOGS, RUN, STATE

_started = time.monotonic()


class StepFailed(RuntimeError):
    """A step of ``up`` failed; the message names its log file."""


def say(message: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f}s] {message}", flush=True)


def run(cmd: list[str], *, log: Path | None = None, env: dict | None = None, check: bool = True,
        cwd: Path | None = None, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Run a command; its output goes to ``log`` when given, and a failure names that log."""
    merged_env = dict(os.environ, **(env or {}))
    if log is None:
        result = subprocess.run(cmd, capture_output=True, env=merged_env, cwd=cwd, input=stdin)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            out.write(f"\n$ {' '.join(cmd)}\n".encode())
            out.flush()
            result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=merged_env, cwd=cwd,
                                    input=stdin)
    if check and result.returncode != 0:
        where = f"see {log}" if log else (result.stderr or b"").decode(errors="replace")[-2000:]
        raise StepFailed(f"command failed ({result.returncode}): {' '.join(cmd)}; {where}")
    return result


def step(name: str):
    """Decorate an ``up`` step: announce it, time it, and name its log on failure."""
    def wrap(func):
        def inner(*args, **kwargs):
            begin = time.monotonic()
            say(f"{name} ...")
            outcome = func(*args, **kwargs)
            say(f"{name}: {outcome or 'done'} ({time.monotonic() - begin:.1f}s)")
            return outcome
        inner.__name__ = func.__name__
        return inner
    return wrap


def run_steps(steps) -> int:
    """Exit status of a command made of steps: 0, or 1 after saying which step failed and why."""
    try:
        steps()
    except StepFailed as failure:
        say(f"FAILED: {failure}")
        return 1
    return 0


@contextlib.contextmanager
def file_lock(path: Path, holders: str):
    """One holder at a time: a second caller waits, then finds the work done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"another {holders} is running; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def stack_lock():
    """One up/down at a time, whichever launcher runs it."""
    return file_lock(STATE / "stack.lock", "hack/stack.py up/down")


# --------------------------------------------------------------------------- daemons

def pid_file(name: str) -> Path:
    return RUN / f"{name}.pid"


def running_pid(name: str) -> int | None:
    path = pid_file(name)
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    # A zombie or a reused pid is not our process.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return None
    return None if state == "Z" else pid


def running_command(name: str) -> list[str] | None:
    """The command line a recorded daemon runs with (``None`` when it is not running)."""
    pid = running_pid(name)
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1] if pid else None
    except FileNotFoundError:
        return None


def start_daemon(name: str, cmd: list[str], env: dict | None = None) -> int:
    """Start a long-running process in its own session, logging to ``logs/<name>.log``.

    A recorded process of the same name that did not answer is stopped first: one pid file, one process.
    """
    stop_daemon(name)
    LOGS.mkdir(parents=True, exist_ok=True)
    RUN.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name}.log"
    with log.open("ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} $ {' '.join(cmd)}\n".encode())
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(os.environ, **(env or {})), start_new_session=True)
    pid_file(name).write_text(str(proc.pid))
    return proc.pid


def stop_daemon(name: str, timeout: float = 20.0) -> bool:
    pid = running_pid(name)
    if pid is None:
        pid_file(name).unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running_pid(name):
        time.sleep(0.2)
    if running_pid(name):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        time.sleep(0.5)
    pid_file(name).unlink(missing_ok=True)
    return True


def wait_until(predicate, what: str, log: Path, timeout: float = 60.0, daemon: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if daemon and running_pid(daemon) is None:
            raise StepFailed(f"{what}: the process exited; see {log}")
        time.sleep(0.25)
    if daemon:
        stop_daemon(daemon)
    raise StepFailed(f"{what}: not ready after {timeout:.0f}s (stopped it); see {log}")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def print_components(rows: list[tuple[str, bool, str]]) -> int:
    """``status``: one line per component; exit status 0 when all answer, 3 otherwise."""
    for name, ok, where in rows:
        print(f"{name:24} {'up' if ok else 'down':5} {where}")
    return 0 if all(ok for _, ok, _ in rows) else 3


def unmount_below(root: Path) -> None:
    """Unmount whatever is still mounted below ``root``, deepest first.

    Seen here: debootstrap's /proc in a tree about to be archived ("file changed as we read it"), and dockerd's
    default network namespace under its exec root after it stopped (the state folder could not be removed).
    """
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False)
