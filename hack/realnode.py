"""One real node for the local stack: a kubelet on its own containerd, so delivered pods really run.

Loaded by hack/stack.py: ``up --real-node`` calls :func:`up`, ``status`` shows :func:`components`,
``down`` calls :func:`down`. Like stack.py it uses the standard library only. The layout, the
network and the reasons behind each choice are in docs/real-node.md.

Everything the node owns lives in ``.stack/realnode/`` (containerd root and state, kubelet root,
pod logs, CNI config and IP allocations) plus three host objects that ``down`` removes again:
the bridge ``slipway0`` (pod subnet 10.77.0.0/24, no default route out of the pods, no NAT), one
``FORWARD`` rule that lets pods on that bridge talk to each other, and the cgroup ``/slipway-realnode``.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

if Path(getattr(sys.modules.get("__main__"), "__file__", None) or "/").resolve() == \
        Path(__file__).resolve().with_name("stack.py"):
    # Loaded by `hack/stack.py up|down|status`: share that run's module (its StepFailed, its clock).
    stack = sys.modules["__main__"]
else:
    import stack

NODE_NAME = "slipway-real-0"
NODE_LABELS = {"slipway.io/node-kind": "real"}
NODE_TAINT = {"key": "slipway.io/real-node", "value": "true", "effect": "NoSchedule"}

BASE = stack.STATE / "realnode"
MARKER = stack.RUN / "real-node"
LOG = stack.LOGS / "realnode.log"
CONTAINERD_SOCK = BASE / "containerd.sock"
CONTAINERD_STATE = BASE / "containerd-state"
NETNS_DIR = CONTAINERD_STATE / "io.containerd.grpc.v1.cri" / "netns"  # netns_mounts_under_state_dir
KUBELET_ROOT = BASE / "kubelet"
# The kubelet's own, empty HOME: the kubelet takes any ~/.docker/config.json as credentials for every pod, so with
# root's HOME a `docker login` on this machine would let pods without a pull secret pull from the registry.
KUBELET_HOME = BASE / "kubelet-home"
POD_LOGS = BASE / "pod-logs"
LEGACY_LOGS = Path("/var/log/containers")  # the kubelet links container logs there, whatever podLogsDir is
IDENTITY = "realnode-kubelet"           # client certificate and kubeconfig of the kubelet
SERVING = "realnode-kubelet-serving"    # the kubelet's serving certificate, signed by the stack CA

# Pod network: a bridge with a private /24 that exists only on this machine. The bridge address is the
# node's InternalIP (the kubelet listens there); pods get no default route and no NAT: nothing leaves.
BRIDGE = "slipway0"
POD_SUBNET = "10.77.0.0/24"
NODE_IP = "10.77.0.1"
FORWARD_RULE = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-m", "comment", "--comment", "slipway-real-node",
                "-j", "ACCEPT"]
CGROUP_PARENT = "slipway-realnode"
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248
PAUSE_IMAGE = "slipway.local/pause:1"
PAUSE_MODULE = stack.ROOT / "hack" / "pause"
CNI_BIN = Path("/usr/lib/cni")
DNS_IDENTITY = "realnode-dns"          # client certificate of the cluster DNS (read services, endpointslices)
DNS_PORT = 53
CLUSTER_DOMAIN = "cluster.local"
PULL_SECRET = "slipway-registry"  # noqa: S105 - the name of a Secret object, not a password
# The kubelet sets these kernel parameters at start; down puts back what was there before.
SYSCTLS = ["vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
           "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"]
HOST_PACKAGES = {"containerd": "/usr/bin/containerd", "runc": "/usr/sbin/runc",
                 "containernetworking-plugins": str(CNI_BIN / "bridge"), "iptables": "/usr/sbin/iptables"}


# --------------------------------------------------------------------------- helpers

def ctr(*args: str, check: bool = True, namespace: str = "k8s.io") -> subprocess.CompletedProcess:
    return stack.run(["ctr", "--address", str(CONTAINERD_SOCK), "--namespace", namespace, *args],
                     check=check)


def containerd_answers() -> bool:
    if not CONTAINERD_SOCK.exists():
        return False
    result = subprocess.run(["ctr", "--address", str(CONTAINERD_SOCK), "--timeout", "2s", "version"],
                            capture_output=True)
    return result.returncode == 0


def kubelet_healthy() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{KUBELET_HEALTHZ_PORT}/healthz", timeout=2) as resp:  # noqa: S310
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def node_object() -> dict | None:
    result = stack.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def node_ready(since: float = 0.0) -> bool:
    """The node reports Ready, in a heartbeat sent at or after ``since`` (epoch seconds)."""
    node = node_object() or {}
    for condition in node.get("status", {}).get("conditions", []):
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            beat = calendar.timegm(time.strptime(condition["lastHeartbeatTime"], "%Y-%m-%dT%H:%M:%SZ"))
            return beat >= int(since)
    return False


def cgroup_roots() -> list[Path]:
    """Every mounted cgroup hierarchy (v1 controllers and, on hybrid hosts, the unified one)."""
    roots = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        fstype = fields[fields.index("-") + 1]
        if fstype in ("cgroup", "cgroup2"):
            roots.append(Path(fields[4]))
    return roots


def our_mounts() -> list[str]:
    """Mount points under the node's folder (netns bind mounts, container rootfs, pod volumes), deepest first."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(BASE) or point.startswith(f"{BASE}/"):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def our_pids() -> set[int]:
    """Processes in the node's cgroup (pods) and containerd shims serving our socket."""
    pids: set[int] = set()
    for root in cgroup_roots():
        for procs in (root / CGROUP_PARENT).rglob("cgroup.procs") if (root / CGROUP_PARENT).exists() else []:
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in procs.read_text().split())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if argv and argv[0].endswith(b"containerd-shim-runc-v2") and str(CONTAINERD_SOCK).encode() in argv:
                pids.add(int(proc.name))
    return pids


# --------------------------------------------------------------------------- up steps

@stack.step("real node: host packages (containerd, runc, CNI plugins)")
def ensure_host_packages() -> str:
    missing = [pkg for pkg, path in HOST_PACKAGES.items() if not Path(path).exists()]
    if not missing:
        return "all present"
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    stack.run(["apt-get", "update", "-qq"], log=LOG, env=env)
    stack.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], log=LOG, env=env)
    return f"installed {' '.join(missing)}"


@stack.step(f"real node: kubelet {stack.KUBERNETES_VERSION}")
def ensure_kubelet_binary() -> str:
    """Build the kubelet from the control plane's pinned module (hack/kube), with the same version stamp."""
    if stack.go_command_cached("kubelet", stack.KUBERNETES_VERSION):
        return "cached"
    stack.build_go_command("kubelet", stack.KUBE_MODULE, "k8s.io/kubernetes/cmd/kubelet", stack.KUBERNETES_VERSION)
    return "built"


@stack.step(f"real node: pod network (bridge {BRIDGE}, {POD_SUBNET})")
def ensure_network() -> str:
    cni_conf = BASE / "cni" / "net.d"
    cni_conf.mkdir(parents=True, exist_ok=True)
    (cni_conf / "10-slipway.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "slipway-real",
        "plugins": [{
            "type": "bridge", "bridge": BRIDGE, "isGateway": True, "isDefaultGateway": False,
            "ipMasq": False, "hairpinMode": True,
            "ipam": {"type": "host-local", "dataDir": str(BASE / "cni" / "ipam"),
                     "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP}]]},
        }],
    }, indent=2))
    created = []
    if stack.run(["ip", "link", "show", BRIDGE], check=False).returncode != 0:
        stack.run(["ip", "link", "add", BRIDGE, "type", "bridge"], log=LOG)
        created.append("bridge")
    if NODE_IP not in stack.run(["ip", "-4", "addr", "show", "dev", BRIDGE]).stdout.decode():
        stack.run(["ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE], log=LOG)
        created.append("address")
    stack.run(["ip", "link", "set", BRIDGE, "up"], log=LOG)
    # Docker's FORWARD policy is DROP and bridged frames pass iptables here (br_netfilter): allow
    # pod-to-pod traffic on our bridge, and only there.
    if stack.run(["iptables", "-C", *FORWARD_RULE], check=False).returncode != 0:
        stack.run(["iptables", "-I", *FORWARD_RULE], log=LOG)
        created.append("forward rule")
    return f"created {', '.join(created)}" if created else "present"


def containerd_config() -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    hosts = BASE / "certs.d" / f"127.0.0.1:{stack.PORTS['registry']}"
    hosts.mkdir(parents=True, exist_ok=True)
    # The local registry speaks plain HTTP on 127.0.0.1; credentials come from the pod's imagePullSecret.
    (hosts / "hosts.toml").write_text(
        f'server = "http://127.0.0.1:{stack.PORTS["registry"]}"\n\n'
        f'[host."http://127.0.0.1:{stack.PORTS["registry"]}"]\n  capabilities = ["pull", "resolve"]\n')
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


@stack.step("real node: containerd (CRI) on its own socket")
def ensure_containerd() -> str:
    if stack.running_pid("realnode-containerd") and containerd_answers():
        return f"already running at {CONTAINERD_SOCK}"
    BASE.mkdir(parents=True, exist_ok=True)
    config = BASE / "containerd.toml"
    config.write_text(containerd_config())
    stack.start_daemon("realnode-containerd", ["containerd", "--config", str(config)])
    stack.wait_until(containerd_answers, "containerd", stack.LOGS / "realnode-containerd.log", timeout=30,
                     daemon="realnode-containerd")
    return f"started at {CONTAINERD_SOCK}"


@stack.step(f"real node: sandbox image {PAUSE_IMAGE}")
def ensure_pause_image() -> str:
    """Build hack/pause (static Go), wrap it FROM scratch, import it into containerd's k8s.io namespace."""
    digest = hashlib.sha256(b"".join((PAUSE_MODULE / n).read_bytes() for n in ("go.mod", "main.go"))).hexdigest()
    stamp = BASE / "pause.sha256"
    listed = ctr("images", "ls", "-q").stdout.decode().split()
    if PAUSE_IMAGE in listed and stamp.exists() and stamp.read_text() == digest:
        return "present"
    context = BASE / "pause-build"
    context.mkdir(parents=True, exist_ok=True)
    stack.run(["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(context / "pause"), "."],
              log=LOG, cwd=PAUSE_MODULE, env={"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"})
    (context / "Dockerfile").write_text('FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n')
    stack.docker("build", "-q", "-t", PAUSE_IMAGE, str(context), log=LOG)
    archive = BASE / "pause.tar"
    stack.docker("save", "-o", str(archive), PAUSE_IMAGE, log=LOG)
    ctr("images", "import", str(archive))
    stamp.write_text(digest)
    return "built and imported"


@stack.step("real node: kubelet credentials")
def ensure_credentials() -> str:
    # CN=system:node:<name>, O=system:nodes: the API server's Node authorizer applies to this kubelet.
    stack.issue_certificate(IDENTITY, f"/O=system:nodes/CN=system:node:{NODE_NAME}")
    stack.write_kubeconfig(IDENTITY)
    stack.issue_certificate(SERVING, f"/CN={NODE_NAME}", client=False,
                            server_names=[NODE_IP, NODE_NAME, "127.0.0.1", "localhost"])
    return f"system:node:{NODE_NAME}; kubeconfig {stack.KUBECONFIGS / f'{IDENTITY}.kubeconfig'}"


def apiserver_dials_internal_ip() -> bool:
    pid = stack.running_pid("kube-apiserver")
    if pid is None:
        return False
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return any(a.startswith(b"--kubelet-preferred-address-types=InternalIP") for a in argv)


@stack.step("real node: API server reaches kubelets by InternalIP")
def ensure_apiserver_reaches_kubelet() -> str:
    """logs, exec and port-forward go API server -> kubelet; the node's Hostname does not resolve here."""
    if apiserver_dials_internal_ip():
        return "yes"
    stack.stop_daemon("kube-apiserver")
    stack.ensure_apiserver()
    if not apiserver_dials_internal_ip():
        raise stack.StepFailed("kube-apiserver does not pass --kubelet-preferred-address-types=InternalIP,... "
                               "(hack/stack.py ensure_apiserver); logs and port-forward to the real node would fail")
    return "restarted kube-apiserver with --kubelet-preferred-address-types=InternalIP,Hostname"


def ensure_cgroup_parent() -> None:
    """The kubelet's cgroupRoot must exist in every hierarchy; cpuset children need cpus/mems filled in."""
    for root in cgroup_roots():
        path = root / CGROUP_PARENT
        path.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if (path / name).exists() and not (path / name).read_text().strip():
                (path / name).write_text((root / name).read_text())


def save_host_state() -> None:
    """Record what the kubelet changes on the host whatever its configuration, for down to put back."""
    saved = BASE / "sysctl-before.json"
    if not saved.exists():  # never overwrite: a second up would record the kubelet's own values
        saved.write_text(json.dumps({k: (Path("/proc/sys") / k).read_text().strip() for k in SYSCTLS}))
    if not LEGACY_LOGS.exists():
        (BASE / "created-var-log-containers").touch()


def kubelet_config() -> dict:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "address": NODE_IP, "port": KUBELET_PORT, "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": KUBELET_HEALTHZ_PORT,
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(stack.PKI / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(stack.PKI / f"{SERVING}.crt"), "tlsPrivateKeyFile": str(stack.PKI / f"{SERVING}.key"),
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCK}",
        # This machine has cgroup v1 (cgroupfs, no systemd): 1.35+ refuses v1 unless told.
        "cgroupDriver": "cgroupfs", "failCgroupV1": False, "cgroupRoot": f"/{CGROUP_PARENT}",
        "podLogsDir": str(POD_LOGS), "volumePluginDir": str(BASE / "volume-plugins"),
        "registerNode": True, "registerWithTaints": [NODE_TAINT],
        "maxPods": 40, "serializeImagePulls": False,
        # The node's own small cluster DNS (see serve_dns) on the bridge address.
        "clusterDNS": [NODE_IP], "clusterDomain": CLUSTER_DOMAIN,
        # The disk is shared with the rest of the stack: do not evict or collect images because of it.
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 99, "imageGCLowThresholdPercent": 98,
        "nodeStatusReportFrequency": "10s", "nodeStatusUpdateFrequency": "5s",
        "syncFrequency": "10s", "fileCheckFrequency": "10s",
        "shutdownGracePeriod": "0s",
    }


@stack.step(f"real node: kubelet ({NODE_NAME})")
def kubelet_home_is_private(pid: int) -> bool:
    """Whether a running kubelet has the node's own HOME (see ``ensure_kubelet``)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"HOME={KUBELET_HOME}".encode() in environ


def ensure_kubelet() -> str:
    begin, started, restarted = time.monotonic(), 0.0, ""
    config, wanted = BASE / "kubelet-config.json", json.dumps(kubelet_config(), indent=2)
    pid = stack.running_pid("realnode-kubelet")
    if pid and (not config.exists() or config.read_text() != wanted or not kubelet_home_is_private(pid)):
        stack.stop_daemon("realnode-kubelet")  # its configuration changed; its pods keep running meanwhile
        restarted = "restarted for a new configuration; "
    if not (stack.running_pid("realnode-kubelet") and kubelet_healthy()):
        started = time.time()  # a Ready condition from before this start does not count
        for folder in (KUBELET_ROOT, POD_LOGS, BASE / "volume-plugins", KUBELET_HOME):
            folder.mkdir(parents=True, exist_ok=True)
        ensure_cgroup_parent()
        save_host_state()
        config.write_text(wanted)
        stack.start_daemon("realnode-kubelet", [
            str(stack.BIN / "kubelet"), f"--config={config}",
            f"--kubeconfig={stack.KUBECONFIGS / f'{IDENTITY}.kubeconfig'}",
            f"--hostname-override={NODE_NAME}", f"--node-ip={NODE_IP}",
            "--node-labels=" + ",".join(f"{k}={v}" for k, v in NODE_LABELS.items()),
            f"--root-dir={KUBELET_ROOT}", "--v=2",
        ], env={"HOME": str(KUBELET_HOME)})
        stack.wait_until(kubelet_healthy, "kubelet /healthz", stack.LOGS / "realnode-kubelet.log", timeout=60,
                         daemon="realnode-kubelet")
    stack.wait_until(lambda: node_ready(started), f"node {NODE_NAME} Ready", stack.LOGS / "realnode-kubelet.log",
                     timeout=120, daemon="realnode-kubelet")
    return f"{restarted}node {NODE_NAME} Ready ({time.monotonic() - begin:.1f}s after the kubelet step began)"


def pull_secret(namespace: str) -> dict:
    registry = f"127.0.0.1:{stack.PORTS['registry']}"
    password = stack.registry_password()
    auth = base64.b64encode(f"{stack.REGISTRY_USER}:{password}".encode()).decode()
    config = {"auths": {registry: {"username": stack.REGISTRY_USER, "password": password, "auth": auth}}}
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": PULL_SECRET, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "slipway-stack"}},
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}}


@stack.step("real node: registry pull secret")
def ensure_pull_secrets(namespaces: list[str] | None = None) -> str:
    """The registry's credentials as an imagePullSecret, attached to each namespace's default service account."""
    namespaces = namespaces or stack.DEPLOYER_NAMESPACES
    for namespace in namespaces:
        install_pull_secret(namespace)
    return f"secret {PULL_SECRET} on the default service account of {', '.join(namespaces)}"


def install_pull_secret(namespace: str) -> None:
    stack.kubectl("apply", "--server-side", "--field-manager=slipway-stack", "-f", "-",
                  stdin=json.dumps(pull_secret(namespace)).encode(), log=LOG)
    stack.wait_until(lambda: stack.kubectl("-n", namespace, "get", "serviceaccount", "default",
                                           check=False).returncode == 0,
                     f"default service account in {namespace}", LOG, timeout=30)
    account = json.loads(stack.kubectl("-n", namespace, "get", "serviceaccount", "default", "-o", "json").stdout)
    secrets = account.get("imagePullSecrets", [])
    if {"name": PULL_SECRET} not in secrets:
        patch = {"imagePullSecrets": [*secrets, {"name": PULL_SECRET}]}
        stack.kubectl("-n", namespace, "patch", "serviceaccount", "default", "--type=merge", "-p", json.dumps(patch),
                      log=LOG)


# --------------------------------------------------------------------------- cluster DNS

def dns_records(services: dict, slices: dict) -> dict[str, list[str]]:
    """``<service>.<namespace>.svc.cluster.local`` -> the ready endpoint addresses on the real node.

    The stack runs no kube-proxy, so a ClusterIP leads nowhere: names resolve to the pods behind the
    service instead (like a headless service). Clients must therefore use the port the pods listen on
    (targetPort); addresses outside the pod subnet (kwok's simulated pods) are left out.
    """
    subnet = ipaddress.ip_network(POD_SUBNET)
    ready: dict[tuple[str, str], list[str]] = {}
    for item in slices.get("items", []):
        meta = item["metadata"]
        key = (meta["namespace"], meta.get("labels", {}).get("kubernetes.io/service-name", ""))
        for endpoint in item.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            ready.setdefault(key, []).extend(
                a for a in endpoint.get("addresses", []) if ipaddress.ip_address(a) in subnet)
    return {f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc.{CLUSTER_DOMAIN}":
            sorted(set(ready.get((svc["metadata"]["namespace"], svc["metadata"]["name"]), [])))
            for svc in services.get("items", [])}


def dns_answer(query: bytes, records: dict[str, list[str]]) -> bytes | None:
    """One DNS response (RFC 1035) for one query: A records from ``records``; nothing is forwarded."""
    if len(query) < 17:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    labels, pos = [], 12
    while pos < len(query) and query[pos]:
        if query[pos] & 0xC0 or pos + 1 + query[pos] > len(query):
            return None
        labels.append(query[pos + 1:pos + 1 + query[pos]].decode("ascii", "replace").lower())
        pos += 1 + query[pos]
    if pos + 5 > len(query):
        return None
    qtype = struct.unpack("!H", query[pos + 1:pos + 3])[0]
    question = query[12:pos + 5]
    name = ".".join(labels)
    answers = []
    if name == CLUSTER_DOMAIN or name.endswith(f".{CLUSTER_DOMAIN}"):
        addresses = records.get(name)
        rcode = 3 if addresses is None else 0  # NXDOMAIN for unknown names of the cluster's zone
        if qtype in (1, 255):  # A, ANY
            answers = [struct.pack("!HHHIH", 0xC00C, 1, 1, 5, 4) + ipaddress.ip_address(a).packed
                       for a in addresses or []]
    else:
        rcode = 5  # REFUSED: not a recursive resolver, nothing leaves the machine
    header = struct.pack("!HHHHHH", ident, 0x8400 | (flags & 0x0100) | rcode, 1, len(answers), 0, 0)
    return header + question + b"".join(answers)


def api_get(path: str, identity: str) -> dict:
    context = ssl.create_default_context(cafile=str(stack.PKI / "ca.crt"))
    context.load_cert_chain(str(stack.PKI / f"{identity}.crt"), str(stack.PKI / f"{identity}.key"))
    url = f"https://127.0.0.1:{stack.PORTS['apiserver']}{path}"
    with urllib.request.urlopen(url, context=context, timeout=5) as response:  # noqa: S310 - fixed 127.0.0.1 URL
        return json.loads(response.read())


def serve_dns() -> None:
    """``hack/realnode.py dns``: the node's cluster DNS on NODE_IP:53 (UDP), refreshed from the API every second."""
    current: dict[str, dict[str, list[str]]] = {"records": {}}

    def refresh() -> None:
        while True:
            with contextlib.suppress(OSError, ValueError, KeyError):  # keep the last good answer meanwhile
                current["records"] = dns_records(api_get("/api/v1/services", DNS_IDENTITY),
                                                 api_get("/apis/discovery.k8s.io/v1/endpointslices", DNS_IDENTITY))
            time.sleep(1)

    threading.Thread(target=refresh, daemon=True).start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind((NODE_IP, DNS_PORT))
        while True:
            query, client = server.recvfrom(512)
            response = dns_answer(query, current["records"])
            if response:
                server.sendto(response, client)


def dns_answers() -> bool:
    query = struct.pack("!HHHHHH", 0x5157, 0x0100, 1, 0, 0, 0) + b"".join(
        bytes([len(label)]) + label.encode() for label in f"kubernetes.default.svc.{CLUSTER_DOMAIN}".split(".")
    ) + b"\0" + struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(1)
        try:
            client.sendto(query, (NODE_IP, DNS_PORT))
            return client.recv(512)[:2] == b"\x51\x57"
        except OSError:
            return False


@stack.step(f"real node: cluster DNS on {NODE_IP}:{DNS_PORT}")
def ensure_dns() -> str:
    if stack.running_pid("realnode-dns") and dns_answers():
        return "already running"
    stack.issue_certificate(DNS_IDENTITY, "/CN=slipway:real-node-dns")
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "slipway:real-node-dns"},
            "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]},
                      {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                       "verbs": ["get", "list", "watch"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "slipway:real-node-dns"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "slipway:real-node-dns"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                             "name": "slipway:real-node-dns"}]}
    stack.kubectl("apply", "--server-side", "--field-manager=slipway-stack", "-f", "-", log=LOG,
                  stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [role, binding]}).encode())
    stack.start_daemon("realnode-dns", [sys.executable, str(Path(__file__).resolve()), "dns"])
    stack.wait_until(dns_answers, "cluster DNS", stack.LOGS / "realnode-dns.log", timeout=20, daemon="realnode-dns")
    return f"*.svc.{CLUSTER_DOMAIN} -> ready pods on this node"


def up() -> None:
    begin = time.monotonic()
    BASE.mkdir(parents=True, exist_ok=True)
    ensure_host_packages()
    ensure_kubelet_binary()
    ensure_network()
    ensure_containerd()
    ensure_pause_image()
    ensure_credentials()
    ensure_apiserver_reaches_kubelet()
    ensure_dns()
    MARKER.write_text(NODE_NAME)
    ensure_kubelet()
    ensure_pull_secrets()
    stack.say(f"real node {NODE_NAME} Ready {time.monotonic() - begin:.1f}s after the real-node steps began")


# --------------------------------------------------------------------------- down

def sandbox_netns_paths() -> list[str]:
    paths = []
    for container in ctr("containers", "ls", "-q", check=False).stdout.decode().split():
        info = ctr("containers", "info", container, check=False)
        if info.returncode != 0:
            continue
        spec = json.loads(info.stdout).get("Spec") or {}
        for namespace in spec.get("linux", {}).get("namespaces", []):
            if namespace.get("type") == "network" and namespace.get("path"):
                paths.append(namespace["path"])
    return paths


def remove_containers() -> int:
    """Kill and delete every container of containerd's k8s.io namespace (the pods of this node)."""
    containers = ctr("containers", "ls", "-q", check=False).stdout.decode().split()
    for container in containers:
        ctr("tasks", "kill", "--all", "--signal", "SIGKILL", container, check=False)
    for container in containers:
        for _ in range(20):
            if ctr("tasks", "delete", "--force", container, check=False).returncode == 0 or \
                    b"not found" in ctr("tasks", "ps", container, check=False).stderr:
                break
            time.sleep(0.25)
        ctr("containers", "delete", container, check=False)
    return len(containers)


def kill_leftovers() -> int:
    pids = our_pids() - {os.getpid()}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.2)
    return len(pids)


def remove_cgroups() -> None:
    for root in cgroup_roots():
        parent = root / CGROUP_PARENT
        if not parent.exists():
            continue
        for folder in sorted((p for p in parent.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        with contextlib.suppress(OSError):
            parent.rmdir()


def restore_sysctls() -> None:
    saved = BASE / "sysctl-before.json"
    if saved.exists():
        for key, value in json.loads(saved.read_text()).items():
            with contextlib.suppress(OSError):
                (Path("/proc/sys") / key).write_text(value)
        saved.unlink()


def remove_network(netns: list[str]) -> None:
    for path in netns:
        subprocess.run(["umount", path], capture_output=True)
        with contextlib.suppress(OSError):
            Path(path).unlink()
    for point in our_mounts():
        subprocess.run(["umount", "-l", point], capture_output=True)
    for path in NETNS_DIR.glob("cni-*"):
        with contextlib.suppress(OSError):
            path.unlink()
    shutil.rmtree(BASE / "cni" / "ipam", ignore_errors=True)  # host-local allocations of the pods just removed
    subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True)
    while subprocess.run(["iptables", "-D", *FORWARD_RULE], capture_output=True).returncode == 0:
        pass
    for link in LEGACY_LOGS.glob("*.log") if LEGACY_LOGS.exists() else []:
        if link.is_symlink() and str(os.readlink(link)).startswith(f"{POD_LOGS}/"):
            link.unlink()
    if (BASE / "created-var-log-containers").exists():
        with contextlib.suppress(OSError):
            LEGACY_LOGS.rmdir()  # only when empty: other tools may have put logs there since
        (BASE / "created-var-log-containers").unlink()


def down() -> None:
    """Stop the kubelet, its pods, containerd and its shims; remove pod netns, mounts, bridge and cgroups."""
    stopped = []
    if stack.stop_daemon("realnode-kubelet"):
        stopped.append("kubelet")
    netns: list[str] = []
    if stack.running_pid("realnode-containerd") and containerd_answers():
        netns = sandbox_netns_paths()
        removed = remove_containers()
        stopped.append(f"{removed} containers")
    if stack.stop_daemon("realnode-containerd"):
        stopped.append("containerd")
    if stack.stop_daemon("realnode-dns"):
        stopped.append("DNS")
    leftovers = kill_leftovers()
    if leftovers:
        stopped.append(f"{leftovers} leftover processes")
    remove_network(netns)
    remove_cgroups()
    restore_sysctls()
    api_up = (stack.PKI / "ca.crt").exists() and (stack.BIN / "kubectl").exists() and stack.apiserver_ready()
    if api_up and stack.kubectl("delete", "node", NODE_NAME, "--ignore-not-found", "--wait=false", check=False).stdout:
        stopped.append(f"node {NODE_NAME} deleted")
    MARKER.unlink(missing_ok=True)
    stack.say(f"real node: stopped {', '.join(stopped) if stopped else 'nothing was running'}")


# --------------------------------------------------------------------------- status

def components() -> list[tuple[str, bool, str]]:
    pid = stack.running_pid("realnode-kubelet")
    # a kubelet started by an older version, with root's HOME, is restarted by the next up
    kubelet_ok = pid is not None and kubelet_home_is_private(pid) and kubelet_healthy()
    return [
        ("real-node containerd", stack.running_pid("realnode-containerd") is not None and containerd_answers(),
         str(CONTAINERD_SOCK)),
        ("real-node kubelet", kubelet_ok, f"https://{NODE_IP}:{KUBELET_PORT}"),
        ("real-node Ready", kubelet_ok and node_ready(), f"node {NODE_NAME} ({POD_SUBNET})"),
        ("real-node DNS", stack.running_pid("realnode-dns") is not None and dns_answers(),
         f"{NODE_IP}:{DNS_PORT} (*.svc.{CLUSTER_DOMAIN})"),
    ]


def main(argv: list[str]) -> int:
    """``hack/realnode.py up|down|status``: the real node alone (the control plane must be up for ``up``)."""
    if argv == ["dns"]:
        serve_dns()
    if len(argv) != 1 or argv[0] not in ("up", "down", "status"):
        print("usage: hack/realnode.py up|down|status  (the whole stack: hack/stack.py up --real-node)")
        return 2
    if argv[0] == "status":
        rows = components()
        for name, ok, where in rows:
            print(f"{name:24} {'up' if ok else 'down':5} {where}")
        return 0 if all(ok for _, ok, _ in rows) else 3
    stack.STATE.mkdir(parents=True, exist_ok=True)
    with (stack.STATE / "stack.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the same lock as hack/stack.py up/down
        try:
            up() if argv[0] == "up" else down()
        except stack.StepFailed as failure:
            stack.say(f"FAILED: {failure}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
