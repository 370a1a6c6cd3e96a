"""Rollback planning: which release, which systems, the record it writes, automatic rollback."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release import rollback as rb
from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Delivery, Options, SystemRun
from fake_kube import FakeClient

SNAP = {"format": 1, "stored": {}, "parts": 0, "objects": 0, "secrets": 0}


def rec(revision, outcome="succeeded", snapshot=True, **systems):
    record = {"revision": revision, "outcome": outcome,
              "systems": {name: {"images": {name: image}, "manifest_digest": image, "namespace": "shop"}
                          for name, image in systems.items()}}
    if snapshot:
        record["snapshot"] = dict(SNAP, stored={name: revision for name in systems})
    return record


HISTORY = [rec(1, app="a"), rec(2, app="b"), rec(3, "failed", app="c")]


def test_a_failed_current_release_goes_back_to_the_last_good_one():
    target, current = rb.choose_target(HISTORY, "local")
    assert (target["revision"], current["revision"]) == (2, 3)


def test_the_default_skips_releases_identical_to_the_current_one():
    history = HISTORY + [rec(4, app="b")]  # 4 = rollback to 2
    assert rb.choose_target(history, "local")[0]["revision"] == 1  # a default rollback again goes further back


def test_named_revisions_and_explicit_errors_listing_what_is_available():
    assert rb.choose_target(HISTORY, "local", revision=3)[0]["revision"] == 3  # a failed one, if asked for
    with pytest.raises(SlipwayError) as err:
        rb.choose_target(HISTORY, "local", revision=9)
    assert "revisions available: 1 (succeeded), 2 (succeeded), 3 (failed)" in err.value.msg
    assert err.value.details["available"] == [1, 2, 3]
    old = [rec(1, snapshot=False, app="a")] + HISTORY[1:]
    with pytest.raises(SlipwayError, match="recorded without its objects"):
        rb.choose_target(old, "local", revision=1)
    with pytest.raises(SlipwayError, match="no recorded release"):
        rb.choose_target([], "local")
    with pytest.raises(SlipwayError, match="no earlier successful release"):
        rb.choose_target([rec(1, app="a")], "local")


def test_one_system_is_compared_alone():
    history = [rec(1, app="a", db="x"), rec(2, app="a", db="y")]
    with pytest.raises(SlipwayError, match="for app"):
        rb.choose_target(history, "local", systems=["app"])
    assert rb.choose_target(history, "local", systems=["db"])[0]["revision"] == 1


class FakeReader:
    def __init__(self, stored):
        self.stored = stored

    def release_objects(self, record, systems=None):
        return {n: self.stored[n] for n in (systems or record["systems"])}


def entry(name):
    return {"namespace": "shop", "depends_on": [], "images": {}, "git_sha": None,
            "objects": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}]}


def test_systems_added_after_the_target_are_emptied_and_dropped():
    target, current = rec(1, app="a"), rec(2, app="b", newcomer="n")
    raw, dropped = rb.rollback_systems(FakeReader({"app": entry("app")}), target, current)
    assert dropped == ["newcomer"]
    assert [(r["name"], len(r["documents"])) for r in raw] == [("app", 1), ("newcomer", 0)]
    assert raw[0]["documents"][0]["file"] == "snapshot of release 1"
    raw, dropped = rb.rollback_systems(FakeReader({"app": entry("app")}), target, current, systems=["app"])
    assert dropped == [] and [r["name"] for r in raw] == ["app"]
    with pytest.raises(SlipwayError, match="neither in release 1 nor in the current release 2"):
        rb.rollback_systems(FakeReader({}), target, current, systems=["ghost"])


def test_the_commit_comes_from_the_target_record_when_its_objects_were_stored_by_an_earlier_revision():
    target = rec(3, app="a")
    target["systems"]["app"]["git_sha"] = "c3"
    stored = dict(entry("app"), git_sha="c1")  # revision 1 stored the same objects from an older commit
    raw, _dropped = rb.rollback_systems(FakeReader({"app": stored}), target, rec(4, app="b"))
    assert raw[0]["git_sha"] == "c3"


def test_the_record_tells_the_story_and_drops_removed_systems():
    emptied = {"name": "newcomer", "namespace": "shop", "documents": []}
    run = Delivery(FakeClient(), [emptied], Options(context="local"),
                   action={"kind": "rollback", "to": 1, "summary": "rollback to 1: why"}, drop=["newcomer"])
    run.validate_locally()
    run.runs = {"newcomer": SystemRun(system=run.systems[0], result="retired")}
    run.last = rec(2, app="b", newcomer="n")
    record = run.new_record("succeeded", "")
    assert record["action"] == {"kind": "rollback", "to": 1, "summary": "rollback to 1: why", "from": 2}
    assert record["message"] == "rollback to 1: why"
    assert list(record["systems"]) == ["app"] and record["retired"] == ["newcomer"]
    run.runs["newcomer"].result = "skipped"  # its objects were not pruned: it stays in the release
    failed = run.new_record("failed", "app: not ready")
    assert failed["message"] == "rollback to 1: why; failed: app: not ready"
    assert sorted(failed["systems"]) == ["app", "newcomer"] and "retired" not in failed


def recorded_failure(client, raw, options, progress=None, runner=None, recover=None):
    """Stands in for ``deliver``: fails after writing and, as it does, hands the error to ``recover`` first."""
    error = SlipwayError("delivery to local failed (recorded as revision 3): app: boom", recorded=True, revision=3)
    if recover is not None:
        recover(error, "the failed delivery's lease")
    raise error


def test_automatic_rollback_only_after_a_recorded_failure(monkeypatch):
    calls = []

    def fake_rollback(client, options, systems=None, progress=None, reason=None, lease=None):
        calls.append((systems, reason, lease))
        return {"rollback": {"to": 2}, "revision": 4, "recorded": True}

    monkeypatch.setattr(rb, "deliver", recorded_failure)
    monkeypatch.setattr(rb, "rollback", fake_rollback)
    raw = [{"name": "app"}]
    with pytest.raises(SlipwayError) as err:
        rb.deliver_or_roll_back(None, raw, Options(context="local"), on_failure="rollback")
    assert "app: boom" in err.value.msg
    assert "Rolled back automatically to release 2 (recorded as revision 4)." in err.value.msg
    assert err.value.details["rollback"]["revision"] == 4 and err.value.details["revision"] == 3
    assert calls == [(["app"], "automatic, release 3 failed: delivery to local failed (recorded as revision 3): "
                               "app: boom", "the failed delivery's lease")]
    calls.clear()
    with pytest.raises(SlipwayError) as err:
        rb.deliver_or_roll_back(None, raw, Options(context="local"), on_failure="fail")
    assert "Rolled back" not in err.value.msg and not calls
    with pytest.raises(SlipwayError):
        rb.deliver_or_roll_back(None, raw, Options(context="local", check_mode=True), on_failure="rollback")
    assert not calls

    def unrecorded(client, raw, options, progress=None, runner=None, recover=None):
        raise SlipwayError("1 object(s) failed the server-side dry-run; nothing was written")

    monkeypatch.setattr(rb, "deliver", unrecorded)
    with pytest.raises(SlipwayError, match="nothing was written"):
        rb.deliver_or_roll_back(None, raw, Options(context="local"), on_failure="rollback")
    assert not calls
    with pytest.raises(SlipwayError, match="on_failure must be one of"):
        rb.deliver_or_roll_back(None, raw, Options(context="local"), on_failure="retry")


def test_a_failing_automatic_rollback_tells_both_failures(monkeypatch):
    monkeypatch.setattr(rb, "deliver", recorded_failure)

    def broken(*args, **kwargs):
        raise SlipwayError("rollback of local to revision 2 failed: still broken", revision=4)

    monkeypatch.setattr(rb, "rollback", broken)
    with pytest.raises(SlipwayError) as err:
        rb.deliver_or_roll_back(SimpleNamespace(), [{"name": "app"}], Options(context="local"),
                                on_failure="rollback")
    assert "boom" in err.value.msg and "The automatic rollback failed too: rollback of local" in err.value.msg
    assert err.value.details["rollback"]["failed"] is True


class ScriptedRun:
    """Stands in for ``Delivery`` in ``deliver()``: plans nothing, and its execution fails or succeeds as told."""

    failures = {"app": "system app: health gate command false failed after 1 attempt(s) in 0.0s: exit 1"}

    def __init__(self, client, raw_systems, options, progress=None):
        self.opts, self.lease = options, None

    def validate_locally(self):
        pass

    connect = read_journal = plan = predict = validate_locally

    def nothing_to_do(self):
        return False

    def execute(self):
        return dict(self.failures)

    def record(self, outcome, message):
        return {"revision": 3, "outcome": outcome, "message": message}

    def result(self, changed, record=None):
        return {"changed": changed, "revision": record["revision"], "recorded": True}


LEASE = "/apis/coordination.k8s.io/v1/namespaces/slipway-system/leases/slipway-lock-local"


def lease_writes(client):
    return [(method, path) for method, path, _query in client.calls
            if method != "GET" and path.startswith(LEASE.rsplit("/", 1)[0])]


def test_the_automatic_rollback_runs_under_the_failed_delivery_s_lease(monkeypatch):
    from ansible_collections.slipway.platform.plugins.module_utils._release import delivery
    from ansible_collections.slipway.platform.plugins.module_utils._release.lease import Lease

    client = FakeClient()
    seen = {}

    def rollback_while_held(client_, options, systems=None, progress=None, reason=None, lease=None):
        seen["holder"] = client.store[LEASE]["spec"]["holderIdentity"]
        seen["writes"] = lease_writes(client)
        intruder = Lease(client, "local", "another delivery")
        with pytest.raises(SlipwayError, match="context local is locked by the failing delivery"):
            intruder.acquire(0)  # a delivery arriving now must wait: the lock was never let go
        seen["lease"] = lease
        return {"rollback": {"to": 2}, "revision": 4, "recorded": True}

    monkeypatch.setattr(delivery, "Delivery", ScriptedRun)
    monkeypatch.setattr(rb, "rollback", rollback_while_held)
    with pytest.raises(SlipwayError, match="Rolled back automatically to release 2"):
        rb.deliver_or_roll_back(client, [{"name": "app"}], Options(context="local", holder="the failing delivery"),
                                on_failure="rollback")
    assert seen["holder"] == "the failing delivery"
    assert seen["writes"] == [("POST", LEASE.rsplit("/", 1)[0])]  # taken once, not yet released
    assert seen["lease"].held is False  # released once, after the rollback
    assert lease_writes(client) == [("POST", LEASE.rsplit("/", 1)[0]), ("PUT", LEASE)]
    assert client.store[LEASE]["spec"]["holderIdentity"] is None


def test_a_delivery_under_a_held_lease_uses_it_and_leaves_it_held(monkeypatch):
    from ansible_collections.slipway.platform.plugins.module_utils._release import delivery
    from ansible_collections.slipway.platform.plugins.module_utils._release.lease import Lease

    client = FakeClient()
    held = Lease(client, "local", "the rollback's caller")
    assert held.take(None)
    try:
        monkeypatch.setattr(ScriptedRun, "failures", {})
        before = lease_writes(client)
        result = delivery.deliver(client, [], Options(context="local", holder="someone else"), runner=ScriptedRun,
                                  lease=held)
        assert result["revision"] == 3
        assert lease_writes(client) == before  # neither taken again nor released
        assert held.held and client.store[LEASE]["spec"]["holderIdentity"] == "the rollback's caller"
    finally:
        held.release()


def test_a_timed_out_condition_of_an_earlier_revision_does_not_fail_the_rollback_wait():
    from ansible_collections.slipway.platform.plugins.module_utils._kube.wait import stale_deadline

    def rs(name, revision, owner="d1"):
        return {"metadata": {"name": name, "ownerReferences": [{"uid": owner}],
                             "annotations": {"deployment.kubernetes.io/revision": revision}}}

    deployment = {"metadata": {"uid": "d1", "annotations": {"deployment.kubernetes.io/revision": "3"}},
                  "status": {"conditions": [{"type": "Progressing", "status": "False",
                                             "reason": "ProgressDeadlineExceeded",
                                             "message": 'ReplicaSet "web-c" has timed out progressing.'}]}}
    assert stale_deadline(deployment, [rs("web-b", "3"), rs("web-c", "2")])  # rolled back to web-b
    assert not stale_deadline(deployment, [rs("web-b", "1"), rs("web-c", "3")])  # web-c itself timed out
    assert not stale_deadline(deployment, [rs("web-b", "3", owner="other")])  # unknown: trust the condition
