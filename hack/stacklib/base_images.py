"""Stage: the offline base images slipway/busybox (from the host's busybox) and slipway/debian (debootstrap)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from stacklib.config import BASE_IMAGES, LOGS, STATE
from stacklib.docker import docker, docker_host
from stacklib.proc import StepFailed, run, step, unmount_below


def image_present(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False).returncode == 0


@step("base image slipway/busybox")
def ensure_busybox_image() -> str:
    ref = BASE_IMAGES["busybox"]
    if image_present(ref):
        return "cached"
    context = STATE / "build" / "busybox"
    context.mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", context / "busybox")
    (context / "Dockerfile").write_text(
        "FROM scratch\n"
        "COPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "mkdir", "-p", "/usr/bin", "/sbin", "/usr/sbin", "/tmp", "/etc", "/root"]\n'
        'RUN ["/bin/busybox", "--install", "-s"]\n'
        "RUN echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && "
        "echo 'app:x:10001:10001:app:/home/app:/bin/sh' >> /etc/passwd && "
        "echo 'root:x:0:' > /etc/group && echo 'app:x:10001:' >> /etc/group && "
        "mkdir -p /home/app && chown 10001:10001 /home/app && chmod 1777 /tmp\n"
        'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin\n'
        'CMD ["sh"]\n'
    )
    docker("build", "-q", "-t", ref, str(context), log=LOGS / "base-images.log")
    return "built"


def apt_mirror() -> str:
    for source in [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]:
        if not source.exists():
            continue
        for line in source.read_text().splitlines():
            line = line.strip()
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
            if line.startswith("deb ") and "security" not in line:
                return [part for part in line.split() if "://" in part][0]
    return "http://deb.debian.org/debian"


def debootstrap_image(ref: str, includes: list[str], log: Path, changes: list[str],
                      customise=None) -> None:
    """A minbase Debian tree from the host's apt mirror, optionally customised, ``docker import``ed as ``ref``.

    ``customise(root)`` edits the tree before the import; ``changes`` are Dockerfile instructions for the import.
    """
    root = STATE / "build" / f"rootfs-{ref.replace('/', '_').replace(':', '_')}"
    if root.exists():
        unmount_below(root)
        shutil.rmtree(root)
    run(["debootstrap", "--variant=minbase", f"--include={','.join(includes)}", "bookworm", str(root),
         apt_mirror()], log=log)
    unmount_below(root)
    if customise:
        customise(root)
    tar = subprocess.Popen(["tar", "-C", str(root), "--one-file-system", "-c", "."], stdout=subprocess.PIPE)
    change_args = [arg for change in changes for arg in ("--change", change)]
    with log.open("ab") as out:
        imported = subprocess.run(["docker", "import", *change_args, "-", ref],
                                  stdin=tar.stdout, stdout=out, stderr=subprocess.STDOUT,
                                  env=dict(os.environ, DOCKER_HOST=docker_host()))
    tar.wait()
    if imported.returncode != 0 or tar.returncode != 0:
        raise StepFailed(f"docker import of {root} failed; see {log}")
    shutil.rmtree(root)


@step("base image slipway/debian (debootstrap)")
def ensure_debian_image() -> str:
    ref = BASE_IMAGES["debian"]
    if image_present(ref):
        return "cached"
    debootstrap_image(ref, ["python3", "python3-apt", "sudo"], LOGS / "base-images.log", ['CMD ["/bin/bash"]'])
    return "built"
