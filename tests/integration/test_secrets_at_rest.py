"""Secrets at rest and in the audit log (issue 16): read etcd and the API server's audit log directly, the way an
attacker with a disk image or a log shipper would, and look for a secret's value.

The stack's API server encrypts Secrets with secretbox (``--encryption-provider-config``) and audits them at
Metadata level only; access rules and workloads are audited with their request and response bodies.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import urllib.request

import pytest

ETCD = "http://127.0.0.1:23790"


def etcd_value(key: str) -> bytes:
    """The raw bytes etcd stores under ``key`` (its JSON gateway; no client library needed)."""
    body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
    request = urllib.request.Request(f"{ETCD}/v3/kv/range", data=body,  # noqa: S310 - fixed loopback URL
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - fixed loopback URL
        kvs = json.load(response).get("kvs") or []
    assert kvs, f"etcd holds nothing under {key}"
    return base64.b64decode(kvs[0]["value"])


@pytest.fixture
def audit_log(stack_dir):
    """Reads the audit events written since the test began (the file only grows within a test)."""
    path = stack_dir / "logs" / "audit.log"
    start = path.stat().st_size if path.exists() else 0

    def events_since(match, attempts=20):
        # The API server writes its audit log in batches: give the event a moment to arrive.
        for _attempt in range(attempts):
            with path.open("rb") as log:
                log.seek(start)
                text = log.read().decode()
            found = [event for event in map(json.loads, text.splitlines()) if match(event)]
            if found:
                return text, found
            time.sleep(0.5)
        return text, []
    return events_since


def test_a_secret_is_encrypted_in_etcd_and_its_value_is_never_audited(kubectl, ns, audit_log):
    sentinel = f"sentinel-{secrets.token_hex(12)}"
    kubectl("create", "secret", "generic", "at-rest", "-n", ns, f"--from-literal=password={sentinel}")
    assert kubectl("get", "secret", "at-rest", "-n", ns, "-o", "jsonpath={.data.password}").stdout == \
        base64.b64encode(sentinel.encode()).decode(), "the API server must still return the value to its readers"

    stored = etcd_value(f"/registry/secrets/{ns}/at-rest")
    assert stored.startswith(b"k8s:enc:secretbox:v1:"), f"stored unencrypted: {stored[:40]!r}"
    assert sentinel.encode() not in stored
    assert base64.b64encode(sentinel.encode()) not in stored

    text, events = audit_log(lambda e: (e.get("objectRef") or {}).get("name") == "at-rest"
                             and e["objectRef"].get("namespace") == ns and e["verb"] == "create")
    assert events, "the Secret's creation was not audited"
    assert {event["level"] for event in events} == {"Metadata"}
    assert sentinel not in text
    assert base64.b64encode(sentinel.encode()).decode() not in text


def test_access_rule_changes_are_audited_with_who_and_what(kubectl, ns, audit_log):
    kubectl("create", "role", "audited-reader", "-n", ns, "--verb=get", "--resource=configmaps")
    _text, events = audit_log(lambda e: (e.get("objectRef") or {}).get("resource") == "roles"
                              and e["objectRef"].get("name") == "audited-reader" and e["verb"] == "create")
    assert events, "the Role's creation was not audited"
    event = events[0]
    assert event["level"] == "RequestResponse"
    assert event["user"]["username"], "the audit event does not say who"
    assert event["responseObject"]["rules"][0]["resources"] == ["configmaps"]


def test_the_control_planes_own_writes_are_audited_without_bodies(kubectl, ns, audit_log):
    """The policy provisioned clusters get (roles/control_plane/files/audit-policy.yaml): a person's Deployment
    whole, the ReplicaSet the controller makes of it as who/what/when only, and no events at all."""
    kubectl("create", "deployment", "audited-app", "-n", ns, "--image=registry.invalid/app:1")
    _text, made = audit_log(lambda e: (e.get("objectRef") or {}).get("resource") == "replicasets"
                            and e["objectRef"].get("namespace") == ns and e["verb"] == "create"
                            and e.get("stage") == "ResponseComplete")
    assert made, "the controller's ReplicaSet was not audited"
    assert made[0]["user"]["username"] == "system:serviceaccount:kube-system:deployment-controller"
    assert made[0]["level"] == "Metadata" and "requestObject" not in made[0] and "responseObject" not in made[0]
    text, asked = audit_log(lambda e: (e.get("objectRef") or {}).get("resource") == "deployments"
                            and e["objectRef"].get("name") == "audited-app" and e["verb"] == "create")
    assert asked and asked[0]["level"] == "RequestResponse"
    assert asked[0]["requestObject"]["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.invalid/app:1"
    events = [e for e in map(json.loads, text.splitlines())
              if (e.get("objectRef") or {}).get("resource") == "events" and e["objectRef"].get("namespace") == ns]
    assert events == [], "events are left out of the audit log"
