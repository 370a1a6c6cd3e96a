"""The delivery's execution order, with a fake API: what runs beside what."""

from __future__ import annotations

import threading

from ansible_collections.slipway.platform.plugins.module_utils._release.delivery import Delivery, Options, SystemRun
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
