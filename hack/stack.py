#!/usr/bin/env python3
"""Slipway's local stack: Docker Engine, registry, etcd, Kubernetes control plane and kwok nodes.

    hack/stack.py up [--nodes N] | down | status | env

Everything lives under one state folder (``.stack/`` at the repository root, or
``$SLIPWAY_STACK_DIR``). Every component is started only when it does not already
answer, so a second ``up`` changes nothing and says so. ``down`` stops what ``up``
started and nothing else. The script uses the standard library only: it must run
on a machine that has nothing but Debian's python3.

This file is the command line; the stages and the helpers they share are in hack/stacklib/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from stacklib.base_images import ensure_busybox_image, ensure_debian_image
from stacklib.bootstrap import ensure_bootstrap
from stacklib.config import BIN, GATEWAY_API_VERSION, HACK, KUBECONFIGS, LOGS, PKI, PORTS, ROOT, RUN, SECRETS, STATE
from stacklib.control_plane import (
    apiserver_up,
    ensure_apiserver,
    ensure_controller_manager,
    ensure_etcd,
    ensure_scheduler,
    etcd_answers,
)
from stacklib.docker import docker_answers, docker_host, ensure_docker, stop_own_docker
from stacklib.gateway import components as gateway_components
from stacklib.gateway import ensure_gateway
from stacklib.gateway_api import ensure_gateway_api, gateway_api_installed
from stacklib.gobuild import ensure_binaries
from stacklib.jaeger import components as tracing_components
from stacklib.jaeger import ensure_jaeger_image
from stacklib.kubeapi import https_ok, nodes_ready
from stacklib.kwok import ensure_kwok, kwok_up
from stacklib.packages import ensure_packages
from stacklib.pki import ensure_pki
from stacklib.proc import (
    port_open,
    print_components,
    run,
    run_steps,
    running_pid,
    say,
    stack_lock,
    start_daemon,
    stop_daemon,
    wait_until,
)
from stacklib.realnode import down as real_node_down
from stacklib.realnode import probes as real_node_probes
from stacklib.realnode import up as real_node_up
from stacklib.realnode.layout import BASE as REAL_NODE_BASE
from stacklib.realnode.layout import MARKER as REAL_NODE_MARKER
from stacklib.registry import ensure_registry, registry_answers
from stacklib.sso import ISSUER, ensure_sso, sso_up
from stacklib.victorialogs import components as logs_components
from stacklib.victorialogs import ensure_victorialogs_image


def environment() -> dict:
    return {
        "SLIPWAY_STACK_DIR": str(STATE),
        "DOCKER_HOST": docker_host(),
        "KUBECONFIG": str(KUBECONFIGS / "admin.kubeconfig"),
        "SLIPWAY_DEPLOYER_KUBECONFIG": str(KUBECONFIGS / "deployer.kubeconfig"),
        "SLIPWAY_REGISTRY": f"127.0.0.1:{PORTS['registry']}",
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
    }


def write_env_file() -> None:
    lines = [f"export {key}={json.dumps(value)}" for key, value in environment().items() if key != "PATH"]
    # the stack's binaries (kubectl) and the pinned tools (ansible-playbook, molecule) the docs' commands call
    lines.append(f'export PATH="{BIN}:{ROOT / ".venv" / "bin"}:$PATH"')
    (STATE / "env").write_text("\n".join(lines) + "\n")


def components(with_real_node: bool = False) -> list[tuple[str, bool, str]]:
    own_docker = running_pid("dockerd") is not None
    host = docker_host()
    return [
        ("docker", bool(host) and docker_answers(host), host + ("" if own_docker or not host else " (external)")),
        ("registry", registry_answers() if (SECRETS / "registry-password").exists() else False,
         f"127.0.0.1:{PORTS['registry']}"),
        ("etcd", etcd_answers(), f"http://127.0.0.1:{PORTS['etcd-client']}"),
        ("sso (dex)", (PKI / "ca.crt").exists() and sso_up(), ISSUER),
        ("kube-apiserver", (PKI / "ca.crt").exists() and apiserver_up(),
         f"https://127.0.0.1:{PORTS['apiserver']}"),
        ("kube-controller-manager", (PKI / "ca.crt").exists() and https_ok(PORTS["controller-manager"], "/healthz"),
         f"127.0.0.1:{PORTS['controller-manager']}"),
        ("kube-scheduler", (PKI / "ca.crt").exists() and https_ok(PORTS["scheduler"], "/healthz"),
         f"127.0.0.1:{PORTS['scheduler']}"),
        ("kwok", kwok_up(), f"127.0.0.1:{PORTS['kwok']}"),
        ("gateway-api", gateway_api_installed(), f"{GATEWAY_API_VERSION} standard CRDs"),
        *(real_node_probes.components() if with_real_node or REAL_NODE_MARKER.exists() else []),
        # the gateway runs on the real node, so it comes (and is checked) with it
        *(gateway_components() if with_real_node or REAL_NODE_MARKER.exists() else []),
        # the tracing catalogue's base image: the catalogue runs on the real node only
        *(tracing_components() if with_real_node or REAL_NODE_MARKER.exists() else []),
        *(logs_components() if with_real_node or REAL_NODE_MARKER.exists() else []),
    ]


def cmd_status(_args) -> int:
    rows = components()
    code = print_components(rows)
    if dict((name, ok) for name, ok, _ in rows)["kube-apiserver"]:
        print(f"{'nodes Ready':24} {nodes_ready()}")
    return code


def cmd_env(_args) -> int:
    sys.stdout.write((STATE / "env").read_text() if (STATE / "env").exists() else "")
    return 0


def cmd_up(args) -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    for folder in (LOGS, RUN, SECRETS):
        folder.mkdir(parents=True, exist_ok=True)
    # A real node that was asked for once stays part of the stack until down: a plain up restores it too.
    args.real_node = args.real_node or REAL_NODE_MARKER.exists()
    if all(ok for _, ok, _ in components(args.real_node)) and not args.rebuild:
        write_env_file()
        say(f"stack already up; nothing to do (state in {STATE}). Use it with: source {STATE / 'env'}")
        return 0

    def steps() -> None:
        if not args.skip_packages:
            ensure_packages()
        ensure_docker()
        ensure_registry()
        ensure_busybox_image()
        ensure_debian_image()
        ensure_binaries()
        ensure_pki()
        ensure_etcd()
        ensure_sso()
        ensure_apiserver()
        ensure_controller_manager()
        ensure_scheduler()
        ensure_kwok(args.nodes)
        ensure_bootstrap()
        ensure_gateway_api()
        if args.real_node:
            real_node_up.up()
            ensure_gateway()
            ensure_jaeger_image()
            ensure_victorialogs_image()

    if run_steps(steps):
        return 1
    write_env_file()
    say(f"stack up; use it with: source {STATE / 'env'}")
    return 0


def cmd_packages(_args) -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    return run_steps(ensure_packages)


def cmd_forward(args) -> int:
    """Serve a Service of the stack on 127.0.0.1 through the API server (kubectl port-forward), until down."""
    namespace, _, service = args.service.partition("/")
    if not service:
        say("give the service as NAMESPACE/NAME, for example shop/frontend")
        return 2
    name = f"forward-{namespace}-{service}"
    url = f"http://127.0.0.1:{args.port}/"
    if running_pid(name) and port_open(args.port):
        say(f"{args.service} already forwarded: {url}")
        return 0
    start_daemon(name, [
        str(BIN / "kubectl"), f"--kubeconfig={KUBECONFIGS / 'admin.kubeconfig'}", "-n", namespace,
        "port-forward", "--address", "127.0.0.1", f"service/{service}", f"{args.port}:{args.target_port}",
    ])
    if run_steps(lambda: wait_until(lambda: port_open(args.port), f"port-forward of {args.service}",
                                    LOGS / f"{name}.log", timeout=30, daemon=name)):
        return 1
    say(f"{args.service} answers at {url}")
    return 0


def cmd_down(_args) -> int:
    for forward in sorted(RUN.glob("forward-*.pid")):
        stop_daemon(forward.stem)
    if any(STATE.glob("lab*/")):  # the provisioning labs run on this engine and registry: they go first
        run([sys.executable, str(HACK / "lab.py"), "down", "--all"], log=LOGS / "lab-down.log", check=False)
    if REAL_NODE_MARKER.exists() or REAL_NODE_BASE.exists():
        real_node_down.down()
    order = ["kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "dex", "etcd", "registry"]
    stopped = [name for name in order if stop_daemon(name)]
    if stop_own_docker():
        stopped.append("dockerd")
    say(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/stack.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start (or confirm) the local stack")
    up.add_argument("--nodes", type=int, default=int(os.environ.get("SLIPWAY_KWOK_NODES", "3")))
    up.add_argument("--skip-packages", action="store_true", help="do not check or install apt packages")
    up.add_argument("--rebuild", action="store_true", help="run every step even when all components answer")
    up.add_argument("--real-node", action="store_true",
                    default=os.environ.get("SLIPWAY_REAL_NODE", "") not in ("", "0", "false"),
                    help="also run one real node: kubelet + containerd (hack/realnode.py)")
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop everything up started").set_defaults(func=cmd_down)
    sub.add_parser("status", help="show which components answer").set_defaults(func=cmd_status)
    sub.add_parser("env", help="print shell exports for the running stack").set_defaults(func=cmd_env)
    sub.add_parser("packages", help="install the Debian packages the stack needs").set_defaults(func=cmd_packages)
    forward = sub.add_parser("forward", help="serve NAMESPACE/SERVICE on 127.0.0.1:PORT until down")
    forward.add_argument("service")
    forward.add_argument("--port", type=int, default=8080)
    forward.add_argument("--target-port", type=int, default=8080)
    forward.set_defaults(func=cmd_forward)
    args = parser.parse_args(argv)
    if args.command in ("up", "down", "packages", "forward"):
        with stack_lock():
            return args.func(args)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
