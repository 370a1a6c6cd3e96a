# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Applying the admission baseline: what is written, check mode writes nothing, the second run writes nothing."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

from ansible_collections.slipway.platform.plugins.module_utils._security.baseline import apply_baseline

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_kube"))
from fake_kube import FakeClient  # noqa: E402

SYSTEMS = {"backend": {"namespace": "shop"}, "worker": {"namespace": "shop"}}


def cluster():
    client = FakeClient()

    def patch(path, body, query):
        assert query["fieldManager"] == "slipway-security"
        if query.get("dryRun"):
            return copy.deepcopy(body)
        merged = copy.deepcopy(client.store.get(path) or {})
        merged.setdefault("metadata", {}).setdefault("labels", {}).update(body["metadata"].get("labels") or {})
        merged["metadata"]["name"] = body["metadata"]["name"]
        if "spec" in body:
            merged["spec"] = copy.deepcopy(body["spec"])
        return client._save(path, merged)  # noqa: SLF001 - the fake's own store

    client.patch = patch
    client.store["/api/v1/namespaces/shop"] = {"metadata": {"name": "shop", "labels": {"team": "web"}}}
    client.store["/api/v1/namespaces/shop/pods/debug"] = {"metadata": {"name": "debug"}, "spec": {
        "containers": [{"name": "sh", "image": "busybox:latest"}]}}
    return client


def test_check_mode_writes_nothing_and_lists_what_would_be_rejected():
    client = cluster()
    result = apply_baseline(client, "local", "127.0.0.1:5001", SYSTEMS, check_mode=True)
    assert client.writes == 0
    assert result["changed"] is True
    assert result["applied"] == ["ValidatingAdmissionPolicy slipway-admission-local",
                                 "ValidatingAdmissionPolicyBinding slipway-admission-local", "Namespace shop"]
    assert [r["pod"] for r in result["would_reject"]] == ["shop/debug"]
    assert any("referenced by digest" in reason for reason in result["would_reject"][0]["reasons"])


def test_apply_keeps_other_labels_and_a_second_run_writes_nothing():
    client = cluster()
    first = apply_baseline(client, "local", "127.0.0.1:5001", SYSTEMS, check_mode=False)
    assert first["changed"] is True
    labels = client.store["/api/v1/namespaces/shop"]["metadata"]["labels"]
    assert labels["team"] == "web"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    writes = client.writes
    second = apply_baseline(client, "local", "127.0.0.1:5001", SYSTEMS, check_mode=False)
    assert second["changed"] is False
    assert client.writes == writes
