"""Where the lab keeps its state, and the names and addresses every part of it agrees on."""

from __future__ import annotations

import os
import re
import zlib

from stacklib.config import PORTS, STATE

# More than one lab can run side by side (a test's lab beside the one you work with): SLIPWAY_LAB=<name> gives
# every name, address and folder below its own value. Unset, the lab is "slipway-lab" on 172.31.250.0/24.
NAME = os.environ.get("SLIPWAY_LAB", "")
if NAME and not re.fullmatch(r"[a-z][a-z0-9]{0,7}", NAME):
    raise SystemExit(f"SLIPWAY_LAB={NAME!r}: use up to 8 lower-case letters and digits, starting with a letter")
LAB = STATE / (f"lab-{NAME}" if NAME else "lab")
KEY = LAB / "id_ed25519"                 # the SSH key Ansible logs in with (root)
INVENTORY = LAB / "inventory"            # ansible-playbook -i .stack/lab/inventory
ARTIFACTS = LAB / "artifacts"            # what the artifact server serves (links to the stack's binaries)
MANIFEST = LAB / "artifacts.json"        # name -> {url, sha256}, with the sizes and times it was hashed at
# The lab's own lock, not the stack's: a stack up that builds something for minutes must not hold up the lab.
LOCK = LAB / "lab.lock"

PREFIX = f"slipway-lab-{NAME}" if NAME else "slipway-lab"  # machines PREFIX-1.., volumes PREFIX-1-containerd..
NETWORK = PREFIX
BRIDGE = f"slab-{NAME}" if NAME else "slipway-lab0"  # the host side, named so down can prove it is gone
LABEL = "io.slipway.lab"                 # value: the lab's name, on every container, volume and network it creates
LABEL_VALUE = NAME or "default"
# A named lab's /24 is picked from its name (172.31.200-249); Docker refuses an overlapping one with a clear error.
THIRD_OCTET = 200 + zlib.crc32(NAME.encode()) % 50 if NAME else 250
SUBNET = f"172.31.{THIRD_OCTET}.0/24"
GATEWAY = f"172.31.{THIRD_OCTET}.1"      # the controller as the machines see it
FIRST_MACHINE_HOST = 10                  # machine n gets .(10 + n)
DEFAULT_MACHINES = 3                     # one control plane + etcd, two workers

ARTIFACT_PORT = 18780
REGISTRY_PORT = PORTS["registry"]        # the forwarder listens on GATEWAY with the registry's own port
ARTIFACT_DAEMON = f"{PREFIX}-artifacts"  # pid files in the stack's run folder
FORWARD_DAEMON = f"{PREFIX}-registry-forward"
SSO_FORWARD_DAEMON = f"{PREFIX}-sso-forward"  # the stack's dex for the lab's API servers (lablib/sso.py)

# Docker volumes per machine: containerd's snapshots fail on overlayfs (nested), and the kubelet mounts below its root.
VOLUMES = {"containerd": "/var/lib/containerd", "kubelet": "/var/lib/kubelet"}

# Measured on this machine kind (/work/shared/ENVIRONMENT.md): systemd reaches `running` with exactly these;
# --privileged is refused because root here lacks CAP_SYS_RESOURCE.
RUN_FLAGS = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock",
]


def machine_name(index: int) -> str:
    return f"{PREFIX}-{index}"


def machine_ip(index: int) -> str:
    return SUBNET.rsplit(".", 1)[0] + f".{FIRST_MACHINE_HOST + index}"
