#!/usr/bin/env python3
"""Slipway's provisioning lab: "bare" Debian machines (systemd, sshd) that Ansible reaches over real SSH.

    hack/lab.py up [--machines N] | down | status | inventory

``up`` builds the machine image once (cached by content), creates the network slipway-lab (172.31.250.0/24),
starts machines slipway-lab-1..N, serves the binaries Debian lacks on the gateway (URL + sha256 manifest),
forwards the stack's registry to the gateway and writes an Ansible inventory to .stack/lab/inventory.
``down`` removes every container, volume and the network, and stops the lab's two processes.
Needs the local stack's Docker Engine and registry (hack/stack.py up --real-node). Standard library only.

This file is the command line; the lab's parts are in hack/lablib/ (docs/provisioning.md).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from lablib.artifacts import ensure_artifacts, server_answers
from lablib.config import (
    ARTIFACT_DAEMON,
    BRIDGE,
    DEFAULT_MACHINES,
    FORWARD_DAEMON,
    INVENTORY,
    LOCK,
    NETWORK,
    SSO_FORWARD_DAEMON,
    SUBNET,
    machine_ip,
    machine_name,
)
from lablib.forward import ensure_forward, registry_reachable, serve_forward
from lablib.image import ensure_machine_image, image_ref
from lablib.inventory import write_inventory
from lablib.machines import (
    ensure_inotify_instances,
    ensure_key,
    ensure_machines,
    ensure_network,
    machines,
    network_exists,
    remove_everything,
    ssh_answers,
    system_state,
)
from lablib.sso import ensure_sso, forward_answers
from stacklib.config import STATE
from stacklib.docker import docker_answers, docker_host
from stacklib.proc import file_lock, print_components, run_steps, running_pid, say, stop_daemon

LAUNCHER = [sys.executable, os.path.abspath(__file__)]


def require_engine() -> None:
    if not docker_host():
        raise SystemExit("the stack's Docker Engine is not up: run `make up` (hack/stack.py up --real-node) first")


def cmd_up(args) -> int:
    require_engine()

    def steps() -> None:
        ensure_machine_image()
        ensure_key()
        ensure_inotify_instances()
        ensure_network()
        ensure_machines(args.machines, image_ref())
        ensure_artifacts()
        ensure_forward(LAUNCHER)
        ensure_sso(LAUNCHER, list(machines()))
        write_inventory(list(machines()))

    if run_steps(steps):
        return 1
    say(f"lab up; inventory: ansible-playbook -i {INVENTORY} ...")
    return 0


def down_every_lab() -> int:
    """``down --all`` (hack/stack.py down runs it): every lab in the state folder, each as its own SLIPWAY_LAB."""
    folders = [folder for folder in sorted(STATE.glob("lab*")) if folder.is_dir()
               and (folder.name == "lab" or folder.name.startswith("lab-"))]
    codes = [subprocess.run([*LAUNCHER, "down"], check=False, env=dict(os.environ, SLIPWAY_LAB=folder.name[4:]))
             .returncode for folder in folders]
    return max(codes, default=0)


def cmd_down(args) -> int:
    if args.all:
        return down_every_lab()
    # The processes first: they must not outlive the lab even when the engine is already gone.
    stopped = [name for name in (FORWARD_DAEMON, SSO_FORWARD_DAEMON, ARTIFACT_DAEMON) if stop_daemon(name)]
    removed = remove_everything() if docker_host() and docker_answers(docker_host()) else []
    for stale in ("hosts.yml", "group_vars/all/artifacts.yml", "group_vars/all/registry.yml",
                  "group_vars/all/sso.yml"):
        (INVENTORY / stale).unlink(missing_ok=True)
    say(f"lab down: removed {', '.join(removed) or 'nothing'}; stopped {', '.join(stopped) or 'nothing'}"
        f" (the machine image {image_ref()} and the key stay cached)")
    return 0


def bridge_exists() -> bool:
    return subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True, check=False).returncode == 0


def cmd_status(_args) -> int:
    if not docker_host():
        print("docker engine down: the stack is not up")
        return 3
    rows = [(f"network {NETWORK}", network_exists() and bridge_exists(), f"{SUBNET} (bridge {BRIDGE})")]
    for index, state in machines().items():
        system = system_state(index) if state == "running" else state
        ok = system == "running" and ssh_answers(index)
        rows.append((machine_name(index), ok, f"{machine_ip(index)} systemd {system}, ssh {'ok' if ok else 'no'}"))
    rows.append(("artifact source", bool(running_pid(ARTIFACT_DAEMON)) and server_answers(), "lablib/artifacts"))
    rows.append(("registry forwarder", bool(running_pid(FORWARD_DAEMON)) and registry_reachable(),
                 "lablib/forward"))
    rows.append(("SSO forwarder", bool(running_pid(SSO_FORWARD_DAEMON)) and forward_answers(), "lablib/sso"))
    return print_components(rows)


def cmd_inventory(_args) -> int:
    require_engine()
    print(write_inventory(list(machines())))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/lab.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start (or confirm) the lab's machines, artifact source and inventory")
    up.add_argument("--machines", type=int, default=int(os.environ.get("SLIPWAY_LAB_MACHINES", DEFAULT_MACHINES)),
                    help=f"machines slipway-lab-1..N (default {DEFAULT_MACHINES}); existing ones beyond N are kept")
    up.set_defaults(func=cmd_up, locked=True)
    down = sub.add_parser("down", help="remove every machine, volume and the network; stop the lab's processes")
    down.add_argument("--all", action="store_true", help="every lab in the state folder (SLIPWAY_LAB=...)")
    down.set_defaults(func=cmd_down, locked=True)
    sub.add_parser("status", help="show what answers").set_defaults(func=cmd_status, locked=False)
    sub.add_parser("inventory", help="write the Ansible inventory and print its folder").set_defaults(
        func=cmd_inventory, locked=False)
    forward = sub.add_parser("forward-registry", help="(the registry forwarder's process; up starts it)")
    forward.add_argument("--listen", required=True)
    forward.add_argument("--to", required=True)
    forward.set_defaults(func=lambda args: serve_forward(args.listen, args.to), locked=False)
    args = parser.parse_args(argv)
    if args.locked and not getattr(args, "all", False):  # --all runs one locked down per lab
        with file_lock(LOCK, "hack/lab.py up/down of this lab"):
            return args.func(args)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
