"""The lab's machine image: a minbase Debian tree with systemd and sshd, imported once and tagged by content.

The tag is a hash of the recipe (packages, mirror, the files written into the tree, the code that edits it): change
any of them and the next ``up`` builds a new image and drops the older ones no machine uses; otherwise the cached
one is used.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

from stacklib.base_images import apt_mirror, debootstrap_image, image_present
from stacklib.docker import docker
from stacklib.proc import step

from lablib.config import LAB

PACKAGES = ["systemd", "systemd-sysv", "dbus", "openssh-server", "iproute2", "iptables", "kmod", "python3", "sudo",
            "ca-certificates"]
PROC_SYS_UNIT = "etc/systemd/system/slipway-lab-proc-sys.service"
# Written into the tree before the import (path -> content).
FILES = {
    # Key only, root allowed with a key (Ansible logs in as root), no DNS lookups of the controller.
    "etc/ssh/sshd_config.d/slipway-lab.conf":
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n",
    # Every machine makes its own host keys at first boot (the tree's would be shared by all of them); Debian's
    # unit checks the config with `sshd -t` first, which needs the keys, so the key step goes before it.
    "etc/systemd/system/ssh.service.d/slipway-lab-host-keys.conf":
        "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n",
    # Docker mounts /proc/sys read-only; a real machine's is writable, and node_prep, the kubelet and kube-proxy set
    # parameters there (the net.* ones belong to the machine's own network namespace). After systemd-sysctl, which
    # then skips (read-only at that time) rather than write Debian's defaults for the whole host kernel.
    PROC_SYS_UNIT:
        "[Unit]\nDescription=Writable /proc/sys, as on a real machine (Docker mounts it read-only)\n"
        "DefaultDependencies=no\nAfter=systemd-sysctl.service\nBefore=sysinit.target\n"
        "ConditionPathIsReadWrite=!/proc/sys\n\n"
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/mount -o remount,rw,bind /proc/sys\n\n"
        "[Install]\nWantedBy=sysinit.target\n",
}
CHANGES = ['CMD ["/sbin/init"]', "ENV container=docker"]


def recipe_digest() -> str:
    recipe = {"packages": PACKAGES, "mirror": apt_mirror(), "files": FILES, "changes": CHANGES,
              "customise": inspect.getsource(customise)}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def image_ref() -> str:
    return f"slipway/lab-machine:{recipe_digest()}"


def customise(root: Path) -> None:
    for relative, content in FILES.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(content)
    for key in (root / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    # Empty: systemd gives each machine its own id at boot (the kubelet and journald read it). systemd would copy
    # the dbus package's id instead, the same on every machine: that one points at /etc/machine-id, as Debian does.
    (root / "etc" / "machine-id").write_text("")
    dbus_id = root / "var" / "lib" / "dbus" / "machine-id"
    dbus_id.unlink(missing_ok=True)
    dbus_id.symlink_to("/etc/machine-id")
    (root / "root" / ".ssh").mkdir(mode=0o700, exist_ok=True)
    wants = root / "etc" / "systemd" / "system" / "sysinit.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / Path(PROC_SYS_UNIT).name).symlink_to(f"/{PROC_SYS_UNIT}")


@step("lab: machine image")
def ensure_machine_image() -> str:
    ref = image_ref()
    if image_present(ref):
        return f"{ref} (cached)"
    LAB.mkdir(parents=True, exist_ok=True)
    debootstrap_image(ref, PACKAGES, LAB / "image.log", CHANGES, customise)
    older = docker("images", "slipway/lab-machine", "--format", "{{.Repository}}:{{.Tag}}").stdout.decode().split()
    for stale in set(older) - {ref}:
        docker("rmi", stale, check=False)  # refused while a machine runs on it: then it stays
    return f"{ref} built"
