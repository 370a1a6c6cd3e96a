"""The artifact source: the binaries Debian lacks, served over HTTP on the lab gateway with URL + sha256 each.

Like kubespray's offline "files repo": nodes download ``http://GATEWAY:PORT/<name>/<version>/<file>`` and check
the sha256 from the manifest before installing. The files are links to what the stack builds (.stack/bin), so
nothing is copied; the manifest is re-hashed only for a file whose size or time changed.
"""

from __future__ import annotations

import hashlib
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from stacklib.config import BIN, ETCD_VERSION, GATEWAY_API_VERSION, KUBE_ROUTER_VERSION, KUBERNETES_VERSION, LOGS
from stacklib.gateway_api import gateway_api_bundle
from stacklib.gobuild import ensure_binaries
from stacklib.proc import StepFailed, running_pid, start_daemon, step, wait_until
from stacklib.realnode.kubelet import ensure_kubelet_binary
from stacklib.realnode.layout import BASE as REAL_NODE_BASE
from stacklib.realnode.layout import PAUSE_IMAGE

from lablib.config import ARTIFACT_DAEMON, ARTIFACT_PORT, ARTIFACTS, GATEWAY, MANIFEST

KUBERNETES = ["kubelet", "kube-proxy", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"]
# The sandbox image as a docker-save archive: containerd imports it, so no node pulls it from anywhere.
PAUSE_ARCHIVE = REAL_NODE_BASE / "pause.tar"


def sources() -> dict[str, tuple[str, Path]]:
    """name -> (path below the server root, the file on the controller)."""
    found = {name: (f"kubernetes/{KUBERNETES_VERSION}/{name}", BIN / name) for name in KUBERNETES}
    found["etcd"] = (f"etcd/{ETCD_VERSION}/etcd", BIN / "etcd")
    # NetworkPolicy enforcement (roles/network_policy): the build the stack's real node runs.
    found["kube-router"] = (f"kube-router/{KUBE_ROUTER_VERSION}/kube-router", BIN / "kube-router")
    found["pause"] = (f"pause/{PAUSE_IMAGE.rsplit(':', 1)[1]}/pause.tar", PAUSE_ARCHIVE)
    # The Gateway API CRDs (roles/cluster_gateway): the stack's pinned module, as the project's release file.
    found["gateway-api"] = (f"gateway-api/{GATEWAY_API_VERSION}/standard-install.yaml", gateway_api_bundle())
    return found


def base_url() -> str:
    return f"http://{GATEWAY}:{ARTIFACT_PORT}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for chunk in iter(lambda: data.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_manifest() -> dict[str, dict]:
    """Link every source below ARTIFACTS and hash it (reusing the last hash of an unchanged file)."""
    previous = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    manifest = {}
    for name, (relative, source) in sources().items():
        if not source.exists():
            raise StepFailed(f"{source} is missing: "
                             + ("the real node builds the sandbox image (hack/stack.py up --real-node)"
                                if name == "pause" else "hack/stack.py up builds it"))
        link = ARTIFACTS / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink() or link.readlink() != source:
            link.unlink(missing_ok=True)
            link.symlink_to(source)
        stat = source.stat()
        seen = previous.get(name, {})
        unchanged = (seen.get("size"), seen.get("mtime"), seen.get("url")) == (stat.st_size, stat.st_mtime_ns,
                                                                               f"{base_url()}/{relative}")
        manifest[name] = {"url": f"{base_url()}/{relative}",
                          "sha256": seen["sha256"] if unchanged else sha256_of(source),
                          "size": stat.st_size, "mtime": stat.st_mtime_ns}
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    (ARTIFACTS / "manifest.json").write_text(json.dumps(published(manifest), indent=2) + "\n")
    return manifest


def published(manifest: dict[str, dict]) -> dict[str, dict]:
    """What roles see (``slipway_artifacts``): name -> {url, sha256}."""
    return {name: {"url": entry["url"], "sha256": entry["sha256"]} for name, entry in manifest.items()}


def server_answers() -> bool:
    try:
        with urllib.request.urlopen(f"{base_url()}/manifest.json", timeout=2) as response:  # noqa: S310 - lab URL
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@step("lab: artifact source")
def ensure_artifacts() -> str:
    ensure_binaries()
    ensure_kubelet_binary()
    manifest = build_manifest()
    if not (running_pid(ARTIFACT_DAEMON) and server_answers()):
        start_daemon(ARTIFACT_DAEMON, [sys.executable, "-m", "http.server", "--bind", GATEWAY,
                                       "--directory", str(ARTIFACTS), str(ARTIFACT_PORT)])
        wait_until(server_answers, "artifact server", LOGS / f"{ARTIFACT_DAEMON}.log", timeout=20,
                   daemon=ARTIFACT_DAEMON)
    return f"{len(manifest)} files at {base_url()}/ (manifest {base_url()}/manifest.json)"
