"""Stage: the Debian packages the stack needs (``up`` without ``--skip-packages``, ``packages``)."""

from __future__ import annotations

import shutil
import subprocess

from stacklib.config import APT_PACKAGES, LOGS
from stacklib.proc import run, step


@step("host packages (apt)")
def ensure_packages() -> str:
    wanted = {"docker.io": "dockerd", "docker-registry": "docker-registry",
              "busybox-static": None, "debootstrap": "debootstrap", "apache2-utils": "htpasswd",
              "openssl": "openssl", "iproute2": "ip", "ca-certificates": None}
    missing = [pkg for pkg in APT_PACKAGES if not package_installed(pkg, wanted.get(pkg))]
    if not missing:
        return "all present"
    log = LOGS / "apt.log"
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], log=log, env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], log=log, env=env)
    return f"installed {' '.join(missing)}"


def package_installed(package: str, command: str | None) -> bool:
    if command and shutil.which(command):
        return True
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return result.returncode == 0 and "install ok installed" in result.stdout
