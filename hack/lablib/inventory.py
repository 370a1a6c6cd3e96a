"""The lab's Ansible inventory: its running machines in kubespray's groups, the artifact manifest and registry.

    .stack/lab/inventory/hosts.yml                   machines and groups, SSH as root with the lab key
    .stack/lab/inventory/group_vars/all/artifacts.yml    slipway_artifacts: {name: {url, sha256}}
    .stack/lab/inventory/group_vars/all/registry.yml     how nodes reach the stack's registry (0600: a password)
    .stack/lab/inventory/group_vars/all/sso.yml          slipway_control_plane_oidc: the stack's dex (lablib/sso.py)

Machine 1 is the control plane and etcd, the others are workers; a one-machine lab is all three.
Written with the standard library: block YAML whose scalars are JSON strings.
"""

from __future__ import annotations

import json
import os
import re

from stacklib.config import PORTS, REGISTRY_USER
from stacklib.registry import registry_password
from stacklib.sso import sso_up

from lablib.artifacts import published
from lablib.config import GATEWAY, INVENTORY, KEY, MANIFEST, REGISTRY_PORT, machine_ip, machine_name
from lablib.sso import oidc_vars


def yaml_key(key: str) -> str:
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key) and key.lower() not in ("null", "true", "false", "yes", "no")
    return key if plain else json.dumps(key)


def yaml_lines(value, indent: int = 0) -> list[str]:
    """Block-style YAML for dicts of dicts, lists and scalars; scalars as JSON (valid YAML flow scalars)."""
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{yaml_key(key)}:")
                lines.extend(yaml_lines(item, indent + 1))
            elif item is None:
                lines.append(f"{pad}{yaml_key(key)}:")
            else:
                lines.append(f"{pad}{yaml_key(key)}: {json.dumps(item)}")
    else:
        for item in value:
            if isinstance(item, dict) and item:
                first, *rest = yaml_lines(item, indent + 1)
                lines.append(f"{pad}- {first.lstrip()}")
                lines.extend(rest)
            else:
                lines.append(f"{pad}- {json.dumps(item)}")
    return lines


def write(name: str, header: str, data: dict, mode: int = 0o644) -> None:
    path = INVENTORY / name
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"---\n# {header}\n# Written by hack/lab.py inventory; rewritten on every lab up.\n" + \
        "\n".join(yaml_lines(data)) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, mode)


def hosts(indexes: list[int]) -> dict:
    names = {index: machine_name(index) for index in indexes}
    control = [names[indexes[0]]] if indexes else []
    workers = [names[index] for index in indexes[1:]] or control
    return {"all": {
        "vars": {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(KEY),
            # Lab machines are re-created with new host keys: host key checking is off for the lab only.
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            "ansible_python_interpreter": "/usr/bin/python3",
            # Root needs no sudo, so modules can go through the SSH session's stdin: one round trip less per task.
            "ansible_pipelining": True,
        },
        "hosts": {names[index]: {"ansible_host": machine_ip(index)} for index in indexes},
        "children": {
            "kube_control_plane": {"hosts": {name: None for name in control}},
            "etcd": {"hosts": {name: None for name in control}},
            "kube_node": {"hosts": {name: None for name in workers}},
        },
    }}


def registry_vars() -> dict:
    endpoint = f"{GATEWAY}:{REGISTRY_PORT}"
    return {"slipway_container_runtime_registries": [{
        # Images are named after the registry as the controller sees it; nodes pull them through the gateway.
        "name": f"127.0.0.1:{PORTS['registry']}",
        "endpoints": [f"http://{endpoint}"],
        "username": REGISTRY_USER,
        "password": registry_password(),
    }]}


def write_inventory(indexes: list[int]) -> str:
    write("hosts.yml", "The lab's machines (hack/lab.py up).", hosts(indexes))
    artifacts = published(json.loads(MANIFEST.read_text())) if MANIFEST.exists() else {}
    write("group_vars/all/artifacts.yml", "The binaries Debian lacks: URL + sha256 each, served by the lab.",
          {"slipway_artifacts": artifacts})
    write("group_vars/all/registry.yml", "The stack's registry, reached through the lab gateway.",
          registry_vars(), mode=0o600)
    if sso_up():
        write("group_vars/all/sso.yml", "People log in with the stack's dex (hack/lablib/sso.py).", oidc_vars())
    else:
        (INVENTORY / "group_vars/all/sso.yml").unlink(missing_ok=True)
    return str(INVENTORY)
