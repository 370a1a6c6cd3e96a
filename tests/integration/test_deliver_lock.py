"""One delivery per context at a time, against the real API server: kill -9 takeover and concurrent runs."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fixtures.deliver.support import (
    Journal,
    SlipwayError,
    client_for,
    configmap,
    deployment,
    run,
    system,
    unique,
)

HERE = Path(__file__).resolve().parent
ONCE = HERE / "fixtures" / "deliver" / "deliver_once.py"


def lease_holder(kubectl, context):
    found = kubectl("get", "lease", f"slipway-lock-{context}", "-n", "slipway-system", "-o", "json", check=False)
    return json.loads(found.stdout)["spec"].get("holderIdentity") if found.returncode == 0 else None


def test_a_killed_delivery_leaves_a_lock_the_next_one_takes_over(stack_dir, ns, kubectl, tmp_path):
    context = unique("t")
    stuck = deployment("web", pod={"nodeSelector": {"slipway.io/nowhere": "true"}})
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"stack_dir": str(stack_dir), "context": context,
                                "systems": [system("app", ns, stuck)],
                                "options": {"lock_duration": 4, "wait_timeout": 300, "holder": "doomed run"}}))
    victim = subprocess.Popen([sys.executable, str(ONCE), str(args)], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while lease_holder(kubectl, context) != "doomed run":
        assert time.monotonic() < deadline, "the first delivery never took the lock"
        assert victim.poll() is None, victim.stdout.read()
        time.sleep(0.2)
    victim.kill()  # SIGKILL: no release, no record
    victim.wait()
    start = time.monotonic()
    result = run(stack_dir, [system("app", ns, deployment("web"))], context, lock_timeout=30,
                 holder="rescue run")[0]
    assert result["lock_taken_over_from"] == "doomed run"
    assert time.monotonic() - start < 30
    assert lease_holder(kubectl, context) is None  # released at the end
    records = Journal(client_for(stack_dir, "admin"), context).records()
    assert [(r["revision"], r["outcome"]) for r in records] == [(1, "succeeded")]


def test_two_deliveries_at_once_one_waits_and_the_journal_stays_consistent(stack_dir, ns):
    context = unique("t")
    outcomes = {}
    barrier = threading.Barrier(2)

    def deliver(name, value):
        barrier.wait()
        try:
            outcomes[name] = run(stack_dir, [system("app", ns, configmap("shared", value=value),
                                                    deployment("web"))], context, holder=name)[0]
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcomes[name] = exc
    threads = [threading.Thread(target=deliver, args=(f"run-{i}", str(i))) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(isinstance(o, dict) for o in outcomes.values()), outcomes
    waited = [o for o in outcomes.values() if any("waiting for the lock" in line for line in o["progress"])]
    assert len(waited) == 1, [o["progress"] for o in outcomes.values()]
    records = Journal(client_for(stack_dir, "admin"), context).records()
    assert [r["revision"] for r in records] == [1, 2]
    assert sorted(r["actor"]["holder"] for r in records) == ["run-0", "run-1"]


def test_a_held_lock_makes_the_next_delivery_fail_naming_the_holder(stack_dir, ns, kubectl):
    context = unique("t")
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": f"slipway-lock-{context}", "namespace": "slipway-system"},
        "spec": {"holderIdentity": "ci job 42 on runner-7", "leaseDurationSeconds": 600, "acquireTime": now,
                 "renewTime": now}}))
    try:
        with pytest.raises(SlipwayError) as err:
            run(stack_dir, [system("app", ns, configmap("c", a="1"))], context, lock_timeout=2)
        assert "locked by ci job 42 on runner-7" in err.value.msg
    finally:
        kubectl("delete", "lease", f"slipway-lock-{context}", "-n", "slipway-system", check=False)
