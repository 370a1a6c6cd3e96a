"""The real node's containerd (CRI) on its own socket, and the pause image it starts every pod sandbox with."""

from __future__ import annotations

import hashlib

from stacklib.config import LOGS, PORTS
from stacklib.docker import docker
from stacklib.proc import run, running_pid, start_daemon, step, wait_until
from stacklib.realnode.layout import (
    BASE,
    CNI_BIN,
    CONTAINERD_SOCK,
    CONTAINERD_STATE,
    LOG,
    PAUSE_IMAGE,
    PAUSE_MODULE,
)
from stacklib.realnode.probes import containerd_answers, ctr


def containerd_config() -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    hosts = BASE / "certs.d" / f"127.0.0.1:{PORTS['registry']}"
    hosts.mkdir(parents=True, exist_ok=True)
    # The local registry speaks plain HTTP on 127.0.0.1; credentials come from the pod's imagePullSecret.
    (hosts / "hosts.toml").write_text(
        f'server = "http://127.0.0.1:{PORTS["registry"]}"\n\n'
        f'[host."http://127.0.0.1:{PORTS["registry"]}"]\n  capabilities = ["pull", "resolve"]\n')
    return "\n".join([
        "version = 2",
        f'root = "{BASE / "containerd-root"}"',
        f'state = "{CONTAINERD_STATE}"',
        'disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",'
        ' "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",'
        ' "io.containerd.tracing.processor.v1.otlp"]',
        "[grpc]", f'  address = "{CONTAINERD_SOCK}"',
        "[ttrpc]", f'  address = "{CONTAINERD_SOCK}.ttrpc"',
        "[debug]", '  level = "info"',
        '[plugins."io.containerd.internal.v1.opt"]', f'  path = "{BASE / "opt"}"',
        f"[{cri}]",
        f'  sandbox_image = "{PAUSE_IMAGE}"',
        '  stream_server_address = "127.0.0.1"', '  stream_server_port = "0"',
        "  netns_mounts_under_state_dir = true", "  disable_apparmor = true",
        # No CAP_SYS_RESOURCE here: a sandbox may not get an oom_score_adj below containerd's own.
        "  restrict_oom_score_adj = true",
        f"[{cri}.containerd]", '  snapshotter = "overlayfs"', '  default_runtime_name = "runc"',
        f"[{cri}.containerd.runtimes.runc]", '  runtime_type = "io.containerd.runc.v2"',
        f"[{cri}.containerd.runtimes.runc.options]", "  SystemdCgroup = false", '  BinaryName = "/usr/sbin/runc"',
        f"[{cri}.cni]", f'  bin_dir = "{CNI_BIN}"', f'  conf_dir = "{BASE / "cni" / "net.d"}"', "  max_conf_num = 1",
        f"[{cri}.registry]", f'  config_path = "{BASE / "certs.d"}"',
        "",
    ])


@step("real node: containerd (CRI) on its own socket")
def ensure_containerd() -> str:
    if running_pid("realnode-containerd") and containerd_answers():
        return f"already running at {CONTAINERD_SOCK}"
    BASE.mkdir(parents=True, exist_ok=True)
    config = BASE / "containerd.toml"
    config.write_text(containerd_config())
    start_daemon("realnode-containerd", ["containerd", "--config", str(config)])
    wait_until(containerd_answers, "containerd", LOGS / "realnode-containerd.log", timeout=30,
               daemon="realnode-containerd")
    return f"started at {CONTAINERD_SOCK}"


@step(f"real node: sandbox image {PAUSE_IMAGE}")
def ensure_pause_image() -> str:
    """Build hack/pause (static Go), wrap it FROM scratch, import it into containerd's k8s.io namespace."""
    digest = hashlib.sha256(b"".join((PAUSE_MODULE / n).read_bytes() for n in ("go.mod", "main.go"))).hexdigest()
    stamp = BASE / "pause.sha256"
    listed = ctr("images", "ls", "-q").stdout.decode().split()
    if PAUSE_IMAGE in listed and stamp.exists() and stamp.read_text() == digest:
        return "present"
    context = BASE / "pause-build"
    context.mkdir(parents=True, exist_ok=True)
    run(["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(context / "pause"), "."],
        log=LOG, cwd=PAUSE_MODULE, env={"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"})
    (context / "Dockerfile").write_text('FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n')
    docker("build", "-q", "-t", PAUSE_IMAGE, str(context), log=LOG)
    archive = BASE / "pause.tar"
    docker("save", "-o", str(archive), PAUSE_IMAGE, log=LOG)
    ctr("images", "import", str(archive))
    stamp.write_text(digest)
    return "built and imported"
