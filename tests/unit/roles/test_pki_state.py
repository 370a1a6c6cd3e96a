"""What the cluster_pki role issues (roles/cluster_pki/files/pki_state.py): missing, changed, due — nothing else."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "cluster_pki" / "files" / "pki_state.py"
spec = importlib.util.spec_from_file_location("pki_state", SCRIPT)
pki_state = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pki_state)

FRESH = {"renew": False, "not_after": "2027-11-30T00:00:00+00:00"}
DUE = {"renew": True, "not_after": "2026-12-10T00:00:00+00:00"}


def test_nothing_to_issue_when_every_certificate_exists_from_its_spec_and_is_fresh():
    specs = {"admin": "a1", "etcd/server-cp": "e1"}
    certificates = {"admin.crt": FRESH, "etcd/server-cp.crt": FRESH}
    assert pki_state.to_issue(specs, certificates, dict(specs), renew=True) == []


def test_missing_changed_and_due_certificates_are_issued():
    specs = {"admin": "a1", "apiserver": "new-sans", "scheduler": "s1", "kube-proxy": "k1"}
    certificates = {"admin.crt": DUE, "apiserver.crt": FRESH, "scheduler.crt": FRESH}
    issued = {"admin": "a1", "apiserver": "old-sans", "scheduler": "s1", "kube-proxy": "k1"}
    assert pki_state.to_issue(specs, certificates, issued, renew=True) == ["admin", "apiserver", "kube-proxy"]


def test_a_ca_is_never_issued_again_for_its_age():
    specs = {"ca": "c1"}
    assert pki_state.to_issue(specs, {"ca.crt": DUE}, {"ca": "c1"}, renew=False) == []


def test_a_folder_without_a_manifest_issues_everything_once(tmp_path):
    result = pki_state.main(tmp_path, 30, {"cas": {"ca": "c1"}, "leaves": {"admin": "a1"}})
    assert result == {"certificates": {}, "issue_cas": ["ca"], "issue_leaves": ["admin"]}
