"""Stage: etcd, Kubernetes and kwok commands built from the pinned Go modules under hack/ into .stack/bin."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from stacklib.config import BIN, ETCD_VERSION, GO_COMMANDS, KUBERNETES_VERSION, KWOK_VERSION, LOGS
from stacklib.proc import StepFailed, run, say, step


def go_env() -> dict:
    return {"GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}


def require_go() -> None:
    if not shutil.which("go"):
        raise StepFailed("go is not on PATH; install Go (the module proxy must be reachable)")


def go_command_cached(command: str, version: str) -> bool:
    stamp = BIN / f"{command}.VERSION"
    return (BIN / command).exists() and stamp.exists() and stamp.read_text().strip() == version


def kubernetes_ldflags() -> str:
    """Kubernetes commands report the release they were built from (kubectl version, /version, node info)."""
    version_pkg = "k8s.io/component-base/version"
    stamps = {"gitVersion": KUBERNETES_VERSION, "gitMajor": "1", "gitMinor": KUBERNETES_VERSION.split(".")[1],
              "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z"}
    return " ".join(["-s", "-w", *(f"-X {version_pkg}.{key}={value}" for key, value in stamps.items())])


def build_go_command(command: str, module: Path, package: str, version: str, ldflags: str | None = None) -> None:
    """Build one pinned command into .stack/bin, stamped with its version so a warm up skips it."""
    require_go()
    BIN.mkdir(parents=True, exist_ok=True)
    ldflags = kubernetes_ldflags() if ldflags is None else ldflags
    begin = time.monotonic()
    run(["go", "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(BIN / command), package],
        log=LOGS / "go-build.log", cwd=module, env=go_env())
    (BIN / f"{command}.VERSION").write_text(version)
    say(f"  built {command} {version} ({time.monotonic() - begin:.0f}s)")


@step(f"etcd {ETCD_VERSION}, kubernetes {KUBERNETES_VERSION} and kwok {KWOK_VERSION} binaries")
def ensure_binaries() -> str:
    missing = [name for name, (_, _, version) in GO_COMMANDS.items() if not go_command_cached(name, version)]
    for command in missing:
        module, package, version = GO_COMMANDS[command]
        build_go_command(command, module, package, version)
    return f"built {', '.join(missing)}" if missing else "cached"


def go_module_dir(module: Path, path: str) -> Path:
    """The pinned module's source folder in the Go module cache (downloaded from the proxy when missing)."""
    found = subprocess.run(["go", "mod", "download", "-json", path], cwd=module, capture_output=True, text=True,
                           env=dict(os.environ, **go_env()))
    info = json.loads(found.stdout or "{}") if found.stdout.strip().startswith("{") else {}
    if found.returncode != 0 or not info.get("Dir"):
        raise StepFailed(f"cannot download {path} pinned by {module / 'go.mod'}: "
                         f"{info.get('Error') or found.stderr.strip()}")
    return Path(info["Dir"])


def edit_copied_source(copy: Path, edits: dict, what: str, listed_in: str) -> None:
    """Make a copy of a module taken from the (read-only) module cache writable, and apply ``edits``
    (``{relative path: [(old, new), ...]}``), each old text found exactly once; ``what`` and ``listed_in`` name
    the module and the file that lists the edits when one no longer applies."""
    for path in copy.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)
    for relative, changes in edits.items():
        text = (copy / relative).read_text()
        for old, new in changes:
            if text.count(old) != 1:
                raise StepFailed(f"{what}: {relative} no longer contains {old.strip()!r} once; "
                                 f"update the edits in {listed_in}")
            text = text.replace(old, new)
        (copy / relative).write_text(text)
