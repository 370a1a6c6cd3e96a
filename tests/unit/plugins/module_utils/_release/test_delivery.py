"""The delivery's execution order, with a fake API: what runs beside what."""

from __future__ import annotations

import threading

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import (
    Delivery,
    Options,
    SystemRun,
    execute_and_record,
)
from fake_kube import FakeClient


class WaitingTogether(Delivery):
    """Every system 'waits for readiness' until all of them wait at once (or the barrier gives up)."""

    def __init__(self, client, raw_systems, options):
        super().__init__(client, raw_systems, options)
        self.barrier = threading.Barrier(len(raw_systems), timeout=10)

    def deliver_system(self, run, requests, hub):
        self.barrier.wait()  # raises BrokenBarrierError when fewer systems than all can run at once


def test_a_system_waiting_for_readiness_never_holds_back_one_that_could_start():
    raw = [{"name": f"s{i:02d}", "namespace": "shop", "documents": []} for i in range(40)]
    run = WaitingTogether(FakeClient(), raw, Options(context="local"))
    run.validate_locally()
    run.waves = [[system.name for system in run.systems]]
    run.runs = {system.name: SystemRun(system=system) for system in run.systems}
    assert run.execute() == {}  # all 40 were waiting at the same time


class FailingUnrecorded(Delivery):
    """A delivery whose system failed and whose failure record cannot be written (the API went away)."""

    def nothing_to_do(self):
        return False

    def execute(self):
        return {"app": "system app: Deployment shop/app failed: connection refused"}

    def record(self, outcome, message):
        raise SlipwayError("cannot reach the Kubernetes API at https://127.0.0.1:6443: connection refused")


def test_a_failure_that_cannot_be_recorded_tells_both_and_how_to_recover():
    run = FailingUnrecorded(FakeClient(), [], Options(context="local"))
    with pytest.raises(SlipwayError) as err:
        execute_and_record(run)
    assert "delivery to local failed: system app" in err.value.msg
    assert "the failure could not be recorded either: cannot reach" in err.value.msg
    assert err.value.details["recorded"] is False and "takes over the expired lock" in err.value.details["hint"]
