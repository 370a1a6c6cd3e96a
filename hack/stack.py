#!/usr/bin/env python3
"""Slipway's local stack: Docker Engine, registry, etcd, Kubernetes control plane and kwok nodes.

    hack/stack.py up [--nodes N] | down | status | env

Everything lives under one state folder (``.stack/`` at the repository root, or
``$SLIPWAY_STACK_DIR``). Every component is started only when it does not already
answer, so a second ``up`` changes nothing and says so. ``down`` stops what ``up``
started and nothing else. The script uses the standard library only: it must run
on a machine that has nothing but Debian's python3.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("SLIPWAY_STACK_DIR", ROOT / ".stack")).resolve()
KUBE_MODULE = ROOT / "hack" / "kube"
KWOK_MODULE = ROOT / "hack" / "kwok"
KWOK_NODE_LEASE_SECONDS = 40
KWOK_STAGES = STATE / "kwok" / "stages.yaml"
ETCD_MODULE = ROOT / "hack" / "etcd"
GATEWAY_API_MODULE = ROOT / "hack" / "gateway-api"

KUBERNETES_VERSION = "v1.36.3"
KWOK_VERSION = "v0.8.0"
ETCD_VERSION = "v3.6.8"
GATEWAY_API_VERSION = "v1.6.3"  # keep equal to hack/gateway-api/go.mod
# command -> (Go module folder, package, pinned version); each module pins its own dependency tree.
GO_COMMANDS = {
    "etcd": (ETCD_MODULE, "go.etcd.io/etcd/server/v3", ETCD_VERSION),
    "kube-apiserver": (KUBE_MODULE, "k8s.io/kubernetes/cmd/kube-apiserver", KUBERNETES_VERSION),
    "kube-controller-manager": (KUBE_MODULE, "k8s.io/kubernetes/cmd/kube-controller-manager", KUBERNETES_VERSION),
    "kube-scheduler": (KUBE_MODULE, "k8s.io/kubernetes/cmd/kube-scheduler", KUBERNETES_VERSION),
    "kubectl": (KUBE_MODULE, "k8s.io/kubernetes/cmd/kubectl", KUBERNETES_VERSION),
    "kwok": (KWOK_MODULE, "sigs.k8s.io/kwok/cmd/kwok", KWOK_VERSION),
}
APT_PACKAGES = [
    "docker.io", "docker-registry", "busybox-static", "debootstrap",
    "apache2-utils", "openssl", "iproute2", "ca-certificates",
]

PORTS = {
    "registry": int(os.environ.get("SLIPWAY_REGISTRY_PORT", "5001")),
    "etcd-client": 23790,
    "etcd-peer": 23800,
    "apiserver": int(os.environ.get("SLIPWAY_APISERVER_PORT", "6443")),
    "controller-manager": 10257,
    "scheduler": 10259,
    "kwok": 10247,
}
REGISTRY_USER = "slipway"
DEPLOYER_USER = "slipway:deployer"
DEPLOYER_NAMESPACES = ["slipway-system", "shop"]
BASE_IMAGES = {"busybox": "slipway/busybox:stable", "debian": "slipway/debian:bookworm"}

BIN = STATE / "bin"
LOGS = STATE / "logs"
RUN = STATE / "run"
PKI = STATE / "pki"
KUBECONFIGS = STATE / "kube"
SECRETS = STATE / "secrets"

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


# --------------------------------------------------------------------------- processes

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


# --------------------------------------------------------------------------- host packages

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


# --------------------------------------------------------------------------- docker

def docker_host() -> str:
    return (STATE / "docker" / "host").read_text().strip() if (STATE / "docker" / "host").exists() else ""


def docker_answers(host: str) -> bool:
    result = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                            env=dict(os.environ, DOCKER_HOST=host), timeout=20)
    return result.returncode == 0


@step("docker engine")
def ensure_docker() -> str:
    (STATE / "docker").mkdir(parents=True, exist_ok=True)
    own = f"unix://{STATE / 'docker' / 'docker.sock'}"
    if running_pid("dockerd") and docker_answers(own):
        (STATE / "docker" / "host").write_text(own)
        return f"already running at {own}"
    external = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if external != own and docker_answers(external):
        (STATE / "docker" / "host").write_text(external)
        return f"using the engine that answers at {external}"
    data = STATE / "docker"
    start_daemon("dockerd", [
        "dockerd", "--data-root", str(data / "data"), "--exec-root", str(data / "exec"),
        "--pidfile", str(data / "dockerd.pid"), "--host", own, "--storage-driver", "overlay2",
        "--ip", "127.0.0.1",
    ])
    wait_until(lambda: docker_answers(own), "dockerd", LOGS / "dockerd.log", timeout=60, daemon="dockerd")
    (STATE / "docker" / "host").write_text(own)
    return f"started at {own}"


def docker(*args: str, log: Path | None = None, check: bool = True, stdin: bytes | None = None):
    return run(["docker", *args], log=log, env={"DOCKER_HOST": docker_host()}, check=check, stdin=stdin)


# --------------------------------------------------------------------------- base images

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


def unmount_below(root: Path) -> None:
    """Unmount what debootstrap left mounted in a tree (seen here: its /proc), deepest first.

    Archived, a mounted /proc fails the import ("file changed as we read it"); removed, it is not a tree at all.
    """
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False)


@step("base image slipway/debian (debootstrap)")
def ensure_debian_image() -> str:
    ref = BASE_IMAGES["debian"]
    if image_present(ref):
        return "cached"
    root = STATE / "build" / "debian-rootfs"
    log = LOGS / "base-images.log"
    if root.exists():
        unmount_below(root)
        shutil.rmtree(root)
    run(["debootstrap", "--variant=minbase", "--include=python3,python3-apt,sudo", "bookworm", str(root),
         apt_mirror()], log=log)
    unmount_below(root)
    tar = subprocess.Popen(["tar", "-C", str(root), "--one-file-system", "-c", "."], stdout=subprocess.PIPE)
    with log.open("ab") as out:
        imported = subprocess.run(["docker", "import", "--change", 'CMD ["/bin/bash"]', "-", ref],
                                  stdin=tar.stdout, stdout=out, stderr=subprocess.STDOUT,
                                  env=dict(os.environ, DOCKER_HOST=docker_host()))
    tar.wait()
    if imported.returncode != 0 or tar.returncode != 0:
        raise StepFailed(f"docker import of {root} failed; see {log}")
    shutil.rmtree(root)
    return "built"


# --------------------------------------------------------------------------- registry

def registry_password() -> str:
    path = SECRETS / "registry-password"
    if not path.exists():
        SECRETS.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.urlsafe_b64encode(os.urandom(18)).decode())
        path.chmod(0o600)
    return path.read_text().strip()


def registry_answers() -> bool:
    url = f"http://127.0.0.1:{PORTS['registry']}/v2/"
    token = base64.b64encode(f"{REGISTRY_USER}:{registry_password()}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - fixed http://127.0.0.1 URL
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@step("registry")
def ensure_registry() -> str:
    if running_pid("registry") and registry_answers():
        return f"already running on 127.0.0.1:{PORTS['registry']}"
    base = STATE / "registry"
    (base / "data").mkdir(parents=True, exist_ok=True)
    htpasswd = base / "htpasswd"
    run(["htpasswd", "-Bbc", str(htpasswd), REGISTRY_USER, registry_password()], log=LOGS / "registry.log")
    config = base / "config.yml"
    config.write_text(json.dumps({
        "version": 0.1,
        "log": {"level": "info"},
        "storage": {"filesystem": {"rootdirectory": str(base / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{PORTS['registry']}", "secret": registry_password()},
        "auth": {"htpasswd": {"realm": "slipway-local", "path": str(htpasswd)}},
    }, indent=2))
    start_daemon("registry", ["docker-registry", "serve", str(config)])
    wait_until(registry_answers, "registry", LOGS / "registry.log", timeout=30, daemon="registry")
    return f"started on 127.0.0.1:{PORTS['registry']} (user {REGISTRY_USER})"


# --------------------------------------------------------------------------- kubernetes binaries

def go_env() -> dict:
    return {"GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}


def go_command_cached(command: str, version: str) -> bool:
    stamp = BIN / f"{command}.VERSION"
    return (BIN / command).exists() and stamp.exists() and stamp.read_text().strip() == version


def build_go_command(command: str, module: Path, package: str, version: str) -> None:
    """Build one pinned command into .stack/bin, stamped with its version so a warm up skips it."""
    if not shutil.which("go"):
        raise StepFailed("go is not on PATH; install Go (the module proxy must be reachable)")
    BIN.mkdir(parents=True, exist_ok=True)
    # Kubernetes commands report the release they were built from (kubectl version, /version, node info).
    version_pkg = "k8s.io/component-base/version"
    stamps = {"gitVersion": KUBERNETES_VERSION, "gitMajor": "1", "gitMinor": KUBERNETES_VERSION.split(".")[1],
              "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z"}
    ldflags = " ".join(["-s", "-w", *(f"-X {version_pkg}.{key}={value}" for key, value in stamps.items())])
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


# --------------------------------------------------------------------------- pki

def openssl(*args: str) -> None:
    run(["openssl", *args], log=LOGS / "pki.log")


def issue_certificate(name: str, subject: str, *, server_names: list[str] | None = None,
                      client: bool = True) -> None:
    key, crt = PKI / f"{name}.key", PKI / f"{name}.crt"
    if crt.exists() and key.exists():
        return
    csr, ext = PKI / f"{name}.csr", PKI / f"{name}.ext"
    usages = ["clientAuth"] if client else []
    lines = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment"]
    if server_names:
        usages.append("serverAuth")
        alt = [f"IP:{n}" if n.replace(".", "").isdigit() else f"DNS:{n}" for n in server_names]
        lines.append("subjectAltName=" + ",".join(alt))
    lines.append("extendedKeyUsage=" + ",".join(usages))
    ext.write_text("\n".join(lines) + "\n")
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", subject)
    openssl("x509", "-req", "-in", str(csr), "-CA", str(PKI / "ca.crt"), "-CAkey", str(PKI / "ca.key"),
            "-CAcreateserial", "-days", "3650", "-out", str(crt), "-extfile", str(ext))
    key.chmod(0o600)
    csr.unlink()
    ext.unlink()


@step("certificates and kubeconfigs")
def ensure_pki() -> str:
    PKI.mkdir(parents=True, exist_ok=True)
    if not (PKI / "ca.crt").exists():
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-keyout",
                str(PKI / "ca.key"), "-out", str(PKI / "ca.crt"), "-subj", "/CN=slipway-local-ca")
    if not (PKI / "sa.key").exists():
        openssl("genrsa", "-out", str(PKI / "sa.key"), "2048")
        openssl("rsa", "-in", str(PKI / "sa.key"), "-pubout", "-out", str(PKI / "sa.pub"))
    issue_certificate("apiserver", "/CN=kube-apiserver", client=False,
                      server_names=["127.0.0.1", "localhost", "kubernetes", "kubernetes.default",
                                    "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"])
    identities = {
        "admin": "/O=system:masters/CN=slipway-admin",
        "controller-manager": "/CN=system:kube-controller-manager",
        "scheduler": "/CN=system:kube-scheduler",
        "kwok": "/O=system:masters/CN=kwok-controller",
        "deployer": f"/O=slipway:deployers/CN={DEPLOYER_USER}",
    }
    for name, subject in identities.items():
        issue_certificate(name, subject)
        write_kubeconfig(name)
    for component in ("controller-manager", "scheduler"):
        # Serving certificates from the stack's CA, so health checks verify TLS instead of skipping it.
        issue_certificate(f"{component}-serving", f"/CN={component}", client=False,
                          server_names=["127.0.0.1", "localhost"])
    return f"CA at {PKI / 'ca.crt'}; kubeconfigs in {KUBECONFIGS}"


def write_kubeconfig(name: str) -> None:
    KUBECONFIGS.mkdir(parents=True, exist_ok=True)
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "slipway-local", "cluster": {
            "server": f"https://127.0.0.1:{PORTS['apiserver']}", "certificate-authority": str(PKI / "ca.crt")}}],
        "users": [{"name": name, "user": {
            "client-certificate": str(PKI / f"{name}.crt"), "client-key": str(PKI / f"{name}.key")}}],
        "contexts": [{"name": f"slipway-local-{name}", "context": {"cluster": "slipway-local", "user": name}}],
        "current-context": f"slipway-local-{name}",
    }
    path = KUBECONFIGS / f"{name}.kubeconfig"
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


# --------------------------------------------------------------------------- etcd and control plane

def etcd_answers() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORTS['etcd-client']}/health", timeout=1) as resp:
            return b"true" in resp.read()
    except (urllib.error.URLError, OSError):
        return False


@step("etcd")
def ensure_etcd() -> str:
    if running_pid("etcd") and etcd_answers():
        return "already running"
    data, stamp = STATE / "etcd", STATE / "etcd.VERSION"
    if data.exists() and (not stamp.exists() or stamp.read_text().strip() != ETCD_VERSION):
        raise StepFailed(f"{data} was written by another etcd version than {ETCD_VERSION}; the local cluster's "
                         f"state cannot be carried over: run hack/stack.py down, remove {data}, then up again")
    stamp.write_text(ETCD_VERSION)
    client = f"http://127.0.0.1:{PORTS['etcd-client']}"
    peer = f"http://127.0.0.1:{PORTS['etcd-peer']}"
    start_daemon("etcd", [
        str(BIN / "etcd"), "--name", "slipway", "--data-dir", str(data),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"slipway={peer}", "--listen-metrics-urls", "http://127.0.0.1:23810",
        "--quota-backend-bytes", str(4 * 1024**3), "--snapshot-count", "10000",
    ], env={"ETCD_LOG_LEVEL": "warn"})
    wait_until(etcd_answers, "etcd", LOGS / "etcd.log", timeout=30, daemon="etcd")
    return f"started on {client}"


def https_ok(port: int, path: str, identity: str = "admin") -> bool:
    context = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
    context.load_cert_chain(str(PKI / f"{identity}.crt"), str(PKI / f"{identity}.key"))
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", context=context, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def apiserver_ready() -> bool:
    return https_ok(PORTS["apiserver"], "/readyz")


@step("kube-apiserver")
def ensure_apiserver() -> str:
    if running_pid("kube-apiserver") and apiserver_ready():
        return "already running"
    audit_policy = STATE / "audit-policy.yaml"
    audit_policy.write_text(json.dumps({
        "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            # Secrets and tokens are audited without their bodies: the audit log must never hold a secret.
            {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"]},
                                                {"group": "authentication.k8s.io", "resources": ["tokenreviews"]}]},
            {"level": "None", "users": ["system:kube-scheduler", "system:kube-controller-manager",
                                        "kwok-controller"], "verbs": ["get", "list", "watch"]},
            {"level": "None", "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}],
             "users": ["system:kube-scheduler", "system:kube-controller-manager", "kwok-controller"]},
            {"level": "Request", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
            {"level": "Metadata"},
        ],
    }))
    start_daemon("kube-apiserver", [
        str(BIN / "kube-apiserver"),
        "--bind-address=127.0.0.1", f"--secure-port={PORTS['apiserver']}", "--advertise-address=127.0.0.1",
        f"--etcd-servers=http://127.0.0.1:{PORTS['etcd-client']}",
        f"--tls-cert-file={PKI / 'apiserver.crt'}", f"--tls-private-key-file={PKI / 'apiserver.key'}",
        f"--client-ca-file={PKI / 'ca.crt'}",
        f"--service-account-key-file={PKI / 'sa.pub'}", f"--service-account-signing-key-file={PKI / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc",
        "--authorization-mode=Node,RBAC", "--anonymous-auth=false",
        "--service-cluster-ip-range=10.96.0.0/16", "--endpoint-reconciler-type=none",
        "--allow-privileged=true", "--enable-priority-and-fairness=false",
        f"--audit-policy-file={audit_policy}", f"--audit-log-path={LOGS / 'audit.log'}",
        "--audit-log-maxsize=200", "--audit-log-maxbackup=2",
        f"--kubelet-client-certificate={PKI / 'admin.crt'}", f"--kubelet-client-key={PKI / 'admin.key'}",
        # Reach kubelets (logs, exec, port-forward) by InternalIP: node names do not resolve here.
        "--kubelet-preferred-address-types=InternalIP,Hostname",
    ])
    wait_until(apiserver_ready, "kube-apiserver /readyz", LOGS / "kube-apiserver.log", timeout=120,
               daemon="kube-apiserver")
    return f"ready at https://127.0.0.1:{PORTS['apiserver']}"


def ensure_controller(component: str, extra_args: list[str]) -> str:
    """Start kube-<component> with its own client identity and a serving certificate from the stack's CA."""
    name, port = f"kube-{component}", PORTS[component]
    if running_pid(name) and https_ok(port, "/healthz"):
        return "already running"
    kubeconfig = KUBECONFIGS / f"{component}.kubeconfig"
    start_daemon(name, [
        str(BIN / name),
        f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1", f"--secure-port={port}", "--leader-elect=false",
        f"--tls-cert-file={PKI / f'{component}-serving.crt'}",
        f"--tls-private-key-file={PKI / f'{component}-serving.key'}",
        "--kube-api-qps=200", "--kube-api-burst=400",
        *extra_args,
    ])
    wait_until(lambda: https_ok(port, "/healthz"), name, LOGS / f"{name}.log", timeout=60, daemon=name)
    return "running"


@step("kube-controller-manager")
def ensure_controller_manager() -> str:
    return ensure_controller("controller-manager", [
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={PKI / 'sa.key'}", f"--root-ca-file={PKI / 'ca.crt'}",
        f"--cluster-signing-cert-file={PKI / 'ca.crt'}", f"--cluster-signing-key-file={PKI / 'ca.key'}",
        "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller",
        "--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
        # On two busy cores a node Lease renewal (kwok's or the real kubelet's) can come late; past the
        # default 50 s grace the node lifecycle controller marks every pod of the node NotReady, and kwok never
        # makes them Ready again.
        "--node-monitor-grace-period=180s",
    ])


@step("kube-scheduler")
def ensure_scheduler() -> str:
    return ensure_controller("scheduler", [])


def kwok_stages() -> None:
    """kwok needs its Stage objects as configuration; take the 'fast' set from the pinned module."""
    listed = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok"], cwd=KWOK_MODULE,
                            capture_output=True, text=True, env=dict(os.environ, **go_env()))
    if listed.returncode != 0:
        raise StepFailed(f"cannot locate the kwok module: {listed.stderr.strip()}")
    module_dir = Path(listed.stdout.strip())
    stage_files = [
        "kustomize/stage/node/fast/node-initialize.yaml",
        "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
        "kustomize/stage/pod/fast/pod-ready.yaml",
        "kustomize/stage/pod/fast/pod-complete.yaml",
        "kustomize/stage/pod/fast/pod-delete.yaml",
    ]
    KWOK_STAGES.parent.mkdir(parents=True, exist_ok=True)
    KWOK_STAGES.write_text("\n---\n".join((module_dir / name).read_text() for name in stage_files))


def kubectl(*args: str, identity: str = "admin", check: bool = True, stdin: bytes | None = None,
            log: Path | None = None) -> subprocess.CompletedProcess:
    return run([str(BIN / "kubectl"), f"--kubeconfig={KUBECONFIGS / f'{identity}.kubeconfig'}", *args],
               check=check, stdin=stdin, log=log)


def kwok_command() -> list[str]:
    return [
        str(BIN / "kwok"), f"--kubeconfig={KUBECONFIGS / 'kwok.kubeconfig'}", f"--config={KWOK_STAGES}",
        "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--cidr=10.244.0.0/16", "--node-ip=127.0.0.1", f"--server-address=127.0.0.1:{PORTS['kwok']}",
        # Without node Leases the only heartbeat is the node status stage, every 10-20 minutes: the node
        # lifecycle controller then declares each node lost one grace period after it starts, marks its
        # pods NotReady, and kwok's pod stages never make a Running pod Ready again (kwok issue 1464).
        f"--node-lease-duration-seconds={KWOK_NODE_LEASE_SECONDS}",
    ]


def kwok_up() -> bool:
    """kwok answers and runs with the command line this version of the stack starts it with."""
    return running_pid("kwok") is not None and port_open(PORTS["kwok"]) and running_command("kwok") == kwok_command()


@step("kwok")
def ensure_kwok(nodes: int) -> str:
    if kwok_up():
        started = "already running"
    else:
        started = "restarted with a new command line" if running_pid("kwok") else "started"
        if not KWOK_STAGES.exists():
            kwok_stages()
        start_daemon("kwok", kwok_command(), env={
            # Streaming list-watch needs etcd's watch progress requests, which Debian's etcd 3.4 lacked: with it
            # on, kwok's watches ended every few seconds and pods waited 20-50 s to become Ready. The stack runs
            # etcd 3.6 now; plain list-watch is kept because it is what the test suite has been proven on.
            "KUBE_FEATURE_WatchListClient": "false",
        })
        wait_until(lambda: port_open(PORTS["kwok"]), "kwok", LOGS / "kwok.log", timeout=30, daemon="kwok")
    manifests = [kwok_node(i) for i in range(nodes)]
    kubectl("apply", "--server-side", "--field-manager=slipway-stack", "-f", "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}).encode(),
            log=LOGS / "kwok.log")
    wait_until(lambda: nodes_ready() >= nodes, f"{nodes} kwok nodes Ready", LOGS / "kwok.log", timeout=60)
    return f"{started}; {nodes} simulated nodes Ready"


def kwok_node(index: int) -> dict:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": f"kwok-node-{index}",
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": f"kwok-node-{index}", "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "type": "kwok", "slipway.io/node-kind": "simulated"},
        },
        "spec": {},
        "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "250"},
                   "capacity": {"cpu": "32", "memory": "256Gi", "pods": "250"}},
    }


def nodes_ready() -> int:
    result = kubectl("get", "nodes", "-o", "json", check=False)
    if result.returncode != 0:
        return 0
    count = 0
    for node in json.loads(result.stdout).get("items", []):
        for condition in node.get("status", {}).get("conditions", []):
            if condition.get("type") == "Ready" and condition.get("status") == "True":
                count += 1
    return count


@step("cluster bootstrap (namespaces, deployer RBAC)")
def ensure_bootstrap() -> str:
    objects = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in DEPLOYER_NAMESPACES]
    objects.append({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "slipway:deployer"},
        "rules": [
            # Discovery and namespace reads are cluster-wide; writes stay in the bound namespaces.
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
             "verbs": ["get", "list", "watch"]},
        ],
    })
    objects.append({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "slipway:deployer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "slipway:deployer"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": DEPLOYER_USER}],
    })
    for namespace in DEPLOYER_NAMESPACES:
        objects.append({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "slipway:deployer", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": DEPLOYER_USER}],
        })
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}).encode()
    for _attempt in range(2):
        # An etcd that was just restarted under a running API server times the first writes out: try again.
        if kubectl("apply", "--server-side", "--field-manager=slipway-stack", "-f", "-", stdin=body,
                   log=LOGS / "bootstrap.log", check=False).returncode == 0:
            break
        time.sleep(3)
    else:
        kubectl("apply", "--server-side", "--field-manager=slipway-stack", "-f", "-", stdin=body,
                log=LOGS / "bootstrap.log")
    return f"deployer {DEPLOYER_USER!r} may write in {', '.join(DEPLOYER_NAMESPACES)}"


# --------------------------------------------------------------------------- gateway api CRDs
# The standard-channel Gateway API CRDs, so Slipway's canary can route by weight and header through an HTTPRoute.
# No controller implements them here: the stack proves the objects; a real context's gateway carries the traffic.

GATEWAY_API_STAMP = STATE / "gateway-api" / "crds.json"  # {"version": ..., "crds": [names]} after an install
GATEWAY_API_ROLE = {
    # Namespace admins (the deployer is one in its namespaces) may edit routes, as on clusters whose gateway
    # install aggregates route permissions into the built-in admin and edit roles.
    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
    "metadata": {"name": "slipway:gateway-api-routes",
                 "labels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true",
                            "rbac.authorization.k8s.io/aggregate-to-edit": "true"}},
    "rules": [{"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes"],
               "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}],
}


def https_json(port: int, path: str, identity: str = "admin", accept: str = "application/json") -> dict | None:
    context = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
    context.load_cert_chain(str(PKI / f"{identity}.crt"), str(PKI / f"{identity}.key"))
    request = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as resp:  # noqa: S310 - https, local
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ssl.SSLError, ValueError):
        return None


def gateway_api_installed() -> bool:
    """Every CRD of the last install is there at the pinned bundle version, and HTTPRoute is served.

    Two small reads (CRD metadata only, ~16 KB instead of ~750 KB of schemas, and one discovery document), so a
    warm ``up`` stays fast; an HTTPRoute that is served implies its CRD is Established.
    """
    if not GATEWAY_API_STAMP.exists() or not (PKI / "ca.crt").exists():
        return False
    stamp = json.loads(GATEWAY_API_STAMP.read_text())
    if stamp.get("version") != GATEWAY_API_VERSION or not stamp.get("crds"):
        return False
    found = https_json(PORTS["apiserver"], "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                       accept="application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
    versions = {item["metadata"]["name"]: (item["metadata"].get("annotations") or {}).get(
        "gateway.networking.k8s.io/bundle-version") for item in (found or {}).get("items", [])}
    if any(versions.get(name) != GATEWAY_API_VERSION for name in stamp["crds"]):
        return False
    served = https_json(PORTS["apiserver"], "/apis/gateway.networking.k8s.io/v1") or {}
    return any(r.get("name") == "httproutes" for r in served.get("resources", []))


def go_module_dir(module: Path, path: str) -> Path:
    """The pinned module's source folder in the Go module cache (downloaded from the proxy when missing)."""
    found = subprocess.run(["go", "mod", "download", "-json", path], cwd=module, capture_output=True, text=True,
                           env=dict(os.environ, **go_env()))
    info = json.loads(found.stdout or "{}") if found.stdout.strip().startswith("{") else {}
    if found.returncode != 0 or not info.get("Dir"):
        raise StepFailed(f"cannot download {path} pinned by {module / 'go.mod'}: "
                         f"{info.get('Error') or found.stderr.strip()}")
    return Path(info["Dir"])


@step(f"Gateway API {GATEWAY_API_VERSION} CRDs (standard channel, no controller)")
def ensure_gateway_api() -> str:
    if gateway_api_installed():
        return "already installed"
    if not shutil.which("go"):
        raise StepFailed("go is not on PATH; install Go (the module proxy must be reachable)")
    manifests = sorted((go_module_dir(GATEWAY_API_MODULE, "sigs.k8s.io/gateway-api") / "config" / "crd"
                        / "standard").glob("*.yaml"))
    log = LOGS / "gateway-api.log"
    # captured, not logged: its "-o name" lines say which CRDs to wait for
    applied = kubectl("apply", "--server-side", "--field-manager=slipway-stack", "-o", "name",
                      *(f"--filename={path}" for path in manifests)).stdout.decode()
    crds = sorted(line.split("/", 1)[1] for line in applied.split()
                  if line.startswith("customresourcedefinition"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{name}" for name in crds), log=log)
    kubectl("apply", "--server-side", "--field-manager=slipway-stack", "-f", "-",
            stdin=json.dumps(GATEWAY_API_ROLE).encode(), log=log)
    GATEWAY_API_STAMP.parent.mkdir(parents=True, exist_ok=True)
    GATEWAY_API_STAMP.write_text(json.dumps({"version": GATEWAY_API_VERSION, "crds": crds}, indent=2))
    return f"{len(crds)} CRDs established"


# --------------------------------------------------------------------------- env, status, down

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
    lines.append(f'export PATH="{BIN}:$PATH"')
    (STATE / "env").write_text("\n".join(lines) + "\n")


def real_node():
    """The real node (kubelet + containerd) lives in hack/realnode.py; it reuses this module's helpers."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import realnode  # noqa: PLC0415 - optional part of the stack, loaded only when asked for

    return realnode


def components(with_real_node: bool = False) -> list[tuple[str, bool, str]]:
    own_docker = running_pid("dockerd") is not None
    host = docker_host()
    return [
        ("docker", bool(host) and docker_answers(host), host + ("" if own_docker or not host else " (external)")),
        ("registry", registry_answers() if (SECRETS / "registry-password").exists() else False,
         f"127.0.0.1:{PORTS['registry']}"),
        ("etcd", etcd_answers(), f"http://127.0.0.1:{PORTS['etcd-client']}"),
        ("kube-apiserver", (PKI / "ca.crt").exists() and apiserver_ready(),
         f"https://127.0.0.1:{PORTS['apiserver']}"),
        ("kube-controller-manager", (PKI / "ca.crt").exists() and https_ok(PORTS["controller-manager"], "/healthz"),
         f"127.0.0.1:{PORTS['controller-manager']}"),
        ("kube-scheduler", (PKI / "ca.crt").exists() and https_ok(PORTS["scheduler"], "/healthz"),
         f"127.0.0.1:{PORTS['scheduler']}"),
        ("kwok", kwok_up(), f"127.0.0.1:{PORTS['kwok']}"),
        ("gateway-api", gateway_api_installed(), f"{GATEWAY_API_VERSION} standard CRDs (no controller)"),
        *(real_node().components() if with_real_node or (RUN / "real-node").exists() else []),
    ]


def cmd_status(_args) -> int:
    rows = components()
    for name, ok, where in rows:
        print(f"{name:24} {'up' if ok else 'down':5} {where}")
    if rows[3][1]:
        print(f"{'nodes Ready':24} {nodes_ready()}")
    return 0 if all(ok for _, ok, _ in rows) else 3


def cmd_env(_args) -> int:
    sys.stdout.write((STATE / "env").read_text() if (STATE / "env").exists() else "")
    return 0


def cmd_up(args) -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    for folder in (LOGS, RUN, SECRETS):
        folder.mkdir(parents=True, exist_ok=True)
    # A real node that was asked for once stays part of the stack until down: a plain up restores it too.
    args.real_node = args.real_node or (RUN / "real-node").exists()
    if all(ok for _, ok, _ in components(args.real_node)) and not args.rebuild:
        write_env_file()
        say(f"stack already up; nothing to do (state in {STATE}). Use it with: source {STATE / 'env'}")
        return 0
    try:
        if not args.skip_packages:
            ensure_packages()
        ensure_docker()
        ensure_registry()
        ensure_busybox_image()
        ensure_debian_image()
        ensure_binaries()
        ensure_pki()
        ensure_etcd()
        ensure_apiserver()
        ensure_controller_manager()
        ensure_scheduler()
        ensure_kwok(args.nodes)
        ensure_bootstrap()
        ensure_gateway_api()
        if args.real_node:
            real_node().up()
    except StepFailed as failure:
        say(f"FAILED: {failure}")
        return 1
    write_env_file()
    say(f"stack up; use it with: source {STATE / 'env'}")
    return 0


def cmd_packages(_args) -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    try:
        ensure_packages()
    except StepFailed as failure:
        say(f"FAILED: {failure}")
        return 1
    return 0


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
    try:
        wait_until(lambda: port_open(args.port), f"port-forward of {args.service}", LOGS / f"{name}.log",
                   timeout=30, daemon=name)
    except StepFailed as failure:
        say(f"FAILED: {failure}")
        return 1
    say(f"{args.service} answers at {url}")
    return 0


def cmd_down(_args) -> int:
    for forward in sorted(RUN.glob("forward-*.pid")):
        stop_daemon(forward.stem)
    if (RUN / "real-node").exists() or (STATE / "realnode").exists():
        real_node().down()
    order = ["kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd", "registry"]
    stopped = [name for name in order if stop_daemon(name)]
    if running_pid("dockerd"):
        host = docker_host()
        ids = subprocess.run(["docker", "ps", "-q"], capture_output=True, text=True,
                             env=dict(os.environ, DOCKER_HOST=host)).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, env=dict(os.environ, DOCKER_HOST=host))
        stop_daemon("dockerd", timeout=30)
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
        # One up/down at a time: a second caller waits, then finds the work done.
        STATE.mkdir(parents=True, exist_ok=True)
        with (STATE / "stack.lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                say("another hack/stack.py up/down is running; waiting for it")
                fcntl.flock(lock, fcntl.LOCK_EX)
            return args.func(args)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
