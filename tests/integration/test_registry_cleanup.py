"""The catalogue's registry and its cleanup (issue 17), on the stack's real node.

The ops context delivers ``catalogue/registry`` (``playbooks/site.yml`` for that system alone); the test pushes two
images to it through the Registry API as ``pusher``, delivers a tiny system using one of them in a test context
(its release records the digest; the pod runs on a simulated node, like the other delivery tests', since the real
node's containerd has no way to pull from an HTTP registry at a pod address), and runs
``playbooks/registry_cleanup.yml``: in check mode it lists the unreferenced image and deletes nothing; then the
referenced digest stays, the other is gone, and the garbage collection the playbook runs frees its layer.

Slow (``-m slow``): about 40 s for the delivery when the image is to be built and tested, 20 s for the rest.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from fixtures.deliver.support import deployment, run, system, unique
from test_catalogue_bus import deliver_ops_system, secret_values

ROOT = Path(__file__).resolve().parents[2]
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
SERVICE_NAME = "registry.registry.svc:5000"  # how a system in the cluster names the catalogue's registry

pytestmark = pytest.mark.slow


class RegistryApi:
    """The Registry HTTP API as one identity (Basic authentication, as htpasswd wants)."""

    def __init__(self, address, user, password):
        self.base = f"http://{address}"
        self.authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def call(self, method, path, body=None, headers=None):
        url = path if path.startswith("http") else self.base + path
        request = urllib.request.Request(url, data=body, method=method,  # noqa: S310 - http only
                                         headers=dict(headers or {}, Authorization=self.authorization))
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - the test's own registry
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as refused:
            return refused.code, refused.headers, refused.read()

    def upload(self, repository, blob):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        status, headers, _body = self.call("POST", f"/v2/{repository}/blobs/uploads/")
        assert status == 202, f"upload refused: HTTP {status}"
        location = headers["Location"]
        location = location if location.startswith("http") else self.base + location
        status, _headers, body = self.call("PUT", f"{location}{'&' if '?' in location else '?'}digest={digest}", blob,
                                           {"Content-Type": "application/octet-stream"})
        assert status == 201, f"blob not stored: HTTP {status} {body[:200]!r}"
        return digest

    def push_image(self, repository, tag, marker):
        """A one-layer image whose layer holds ``marker``; returns ``(manifest digest, layer digest)``."""
        tar_bytes = io.BytesIO()
        with tarfile.open(fileobj=tar_bytes, mode="w") as archive:
            content = marker.encode()
            info = tarfile.TarInfo("marker")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
        layer = gzip.compress(tar_bytes.getvalue(), mtime=0)
        config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2020-01-01T00:00:00Z",
                             "config": {}, "rootfs": {"type": "layers", "diff_ids": [
                                 "sha256:" + hashlib.sha256(tar_bytes.getvalue()).hexdigest()]}}).encode()
        layer_digest, config_digest = self.upload(repository, layer), self.upload(repository, config)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_V2,
                               "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                          "size": len(config), "digest": config_digest},
                               "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                           "size": len(layer), "digest": layer_digest}]}).encode()
        status, headers, body = self.call("PUT", f"/v2/{repository}/manifests/{tag}", manifest,
                                          {"Content-Type": MANIFEST_V2})
        assert status == 201, f"manifest not stored: HTTP {status} {body[:200]!r}"
        return headers["Docker-Content-Digest"], layer_digest

    def has(self, repository, kind, digest):
        status, _headers, _body = self.call("HEAD", f"/v2/{repository}/{kind}/{digest}",
                                            headers={"Accept": MANIFEST_V2})
        assert status in (200, 404), f"HEAD {kind} {digest}: HTTP {status}"
        return status == 200


@pytest.fixture(scope="module")
def catalogue_registry(stack, kubectl):
    """The registry the ops context delivers: its pod's address and the users' passwords the cluster holds."""
    pod = deliver_ops_system(kubectl, "registry", "registry")
    passwords = secret_values(kubectl, "registry", "registry-users")
    generated = (Path(stack["SLIPWAY_STACK_DIR"]) / "secrets" / "catalogue-registry-pusher").read_text().strip()
    assert passwords["pusher"] == generated, "the cluster's pusher password is not the ops context's"
    return {"address": f"{pod['status']['podIP']}:5000", "passwords": passwords}


def cleanup(registry, repository, tmp_path, check):
    """Run playbooks/registry_cleanup.yml against the catalogue registry for ``repository``; its output."""
    extra = tmp_path / "cleanup-vars.json"  # the password in a file, not on a command line
    extra.write_text(json.dumps({
        "slipway_registry_cleanup_registry": registry["address"], "slipway_registry_cleanup_scheme": "http",
        "slipway_registry_cleanup_username": "pusher", "slipway_registry_cleanup_password":
            registry["passwords"]["pusher"],
        "slipway_registry_cleanup_names": [SERVICE_NAME], "slipway_registry_cleanup_repositories": [repository],
        "slipway_registry_cleanup_keep_younger_than": 0,
        "slipway_registry_cleanup_gc_command": [
            "kubectl", f"--kubeconfig={os.environ['SLIPWAY_STACK_DIR']}/kube/admin.kubeconfig", "-n", "registry",
            "exec", "deploy/registry", "--", "docker-registry", "garbage-collect", "/etc/docker/registry/config.yml"],
    }))
    extra.chmod(0o600)
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "inventories/ops",
                           "playbooks/registry_cleanup.yml", "-e", f"@{extra}", *(["--check"] if check else [])],
                          cwd=ROOT, capture_output=True, text=True, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    assert done.returncode == 0, f"the cleanup failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    assert registry["passwords"]["pusher"] not in done.stdout + done.stderr
    return done.stdout


def test_the_cleanup_keeps_what_a_release_references_and_deletes_the_rest(
        catalogue_registry, stack_dir, ns, tmp_path):
    pusher = RegistryApi(catalogue_registry["address"], "pusher", catalogue_registry["passwords"]["pusher"])
    puller = RegistryApi(catalogue_registry["address"], "puller", catalogue_registry["passwords"]["puller"])
    repository = f"cleanup-{uuid.uuid4().hex[:8]}/app"
    live, live_layer = pusher.push_image(repository, "live", f"live {uuid.uuid4()}")
    stale, stale_layer = pusher.push_image(repository, "stale", f"stale {uuid.uuid4()}")
    assert live != stale
    assert puller.has(repository, "manifests", live) and puller.has(repository, "manifests", stale)

    context = unique("t-cleanup")
    image = f"{SERVICE_NAME}/{repository}@{live}"
    result, _client = run(stack_dir, [system("app", ns, deployment("app", image=image), images={"app": image})],
                          context)
    assert result["changed"], result

    listed = cleanup(catalogue_registry, repository, tmp_path, check=True)
    assert "1 manifest(s) would be deleted" in listed and f"{repository}@{stale}" in listed
    assert live not in listed
    assert pusher.has(repository, "manifests", live) and pusher.has(repository, "manifests", stale), \
        "check mode deleted a manifest"

    done = cleanup(catalogue_registry, repository, tmp_path, check=False)
    assert "1 manifest(s) were deleted" in done, done
    assert pusher.has(repository, "manifests", live), "the digest a release references was deleted"
    assert not pusher.has(repository, "manifests", stale), "the unreferenced digest is still there"
    assert pusher.has(repository, "blobs", live_layer)
    assert not pusher.has(repository, "blobs", stale_layer), "the garbage collection left the deleted image's layer"

    again = cleanup(catalogue_registry, repository, tmp_path, check=False)
    assert "0 manifest(s) were deleted" in again
