"""The per-context lock: acquire, wait, take over an expired holder, renew, release."""

from __future__ import annotations

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release import lease as lk
from fake_kube import FakeClient


class Clock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def make(client, holder, clock, duration=10):
    return lk.Lease(client, "local", holder, duration, clock=clock, monotonic=clock, sleep=clock.sleep)


def test_micro_time_round_trip():
    assert lk.parse_time(lk.micro_time(1_800_000_000.25)) == pytest.approx(1_800_000_000.25)


def test_expiry_rules():
    now = 1_800_000_000.0
    held = {"spec": {"holderIdentity": "a", "renewTime": lk.micro_time(now - 5), "leaseDurationSeconds": 10}}
    assert not lk.expired(held, now)
    assert lk.expired(held, now + 6)
    assert lk.expired({"spec": {"holderIdentity": None}}, now)


def test_first_delivery_creates_and_holds_the_lease_then_releases_it():
    client, clock = FakeClient(), Clock()
    lease = make(client, "ci-1", clock)
    assert lease.take(lease.peek())
    stored = client.store[lease.path]
    assert stored["spec"]["holderIdentity"] == "ci-1"
    lease.release()
    assert client.store[lease.path]["spec"]["holderIdentity"] is None


def test_second_delivery_waits_then_fails_naming_the_holder():
    client, clock = FakeClient(), Clock()
    first = make(client, "alice@laptop pid 1", clock, duration=600)
    first.take(None)
    first._stop.set()  # no background renewal in this test
    second = make(client, "bob@ci pid 2", clock)
    with pytest.raises(SlipwayError) as err:
        second.acquire(timeout=3)
    assert "locked by alice@laptop pid 1" in err.value.msg
    assert err.value.details["holder"] == "alice@laptop pid 1"
    assert clock.now >= 1_800_000_003.0


def take_over(client, clock, first, second):
    """``first`` takes the lock and stops renewing (killed); ``second`` comes after it expired."""
    killed = make(client, first, clock, duration=5)
    killed.take(None)
    killed._stop.set()
    clock.now += 6
    taker = make(client, second, clock)
    taker.acquire(timeout=1)
    taker._stop.set()
    return killed, taker


def test_an_expired_holder_is_taken_over():
    client, clock = FakeClient(), Clock()
    _killed, taker = take_over(client, clock, "killed pid 9", "next pid 10")
    assert taker.took_over == "killed pid 9"
    assert client.store[taker.path]["spec"]["holderIdentity"] == "next pid 10"
    assert client.store[taker.path]["spec"]["leaseTransitions"] == 1


def test_renewal_after_a_takeover_reports_the_lock_lost():
    client, clock = FakeClient(), Clock()
    slow, _fast = take_over(client, clock, "slow", "fast")
    with pytest.raises(SlipwayError, match="lost the lock"):
        slow.renew()


def unreachable_for(client, renewals):
    """The next ``renewals`` Lease updates fail as if the API server were restarting."""
    send, left = client.request, [renewals]

    def request(method, path, *args, **kwargs):
        if method == "PUT" and "/leases/" in path and left[0] > 0:
            left[0] -= 1
            raise SlipwayError("cannot reach the Kubernetes API at https://127.0.0.1:6443: connection refused")
        return send(method, path, *args, **kwargs)
    client.request = request


def held_lease(duration=9):
    client, clock = FakeClient(), Clock()
    lease = make(client, "ci-1", clock, duration=duration)
    lease.take(None)
    lease._stop.set()  # renewals are driven by the test, not by the background thread
    return client, clock, lease


def test_a_renewal_that_cannot_reach_the_api_is_retried_and_the_lock_kept():
    client, clock, lease = held_lease()
    unreachable_for(client, 2)
    before = client.store[lease.path]["spec"]["renewTime"]
    assert lease.keep_renewing() == lk.RENEW_RETRY  # soon again, not in a third of the duration
    clock.now += 1
    assert lease.keep_renewing() == lk.RENEW_RETRY
    clock.now += 1
    assert lease.keep_renewing() == lease.renew_interval == 3.0
    assert lease.lost is None and lease.held
    lease.check()
    assert client.store[lease.path]["spec"]["renewTime"] > before


def test_a_silence_as_long_as_the_lease_loses_the_lock():
    client, clock, lease = held_lease(duration=9)
    unreachable_for(client, 100)
    pauses = []
    while (pause := lease.keep_renewing()) is not None:
        pauses.append(pause)
        clock.now += pause
    assert pauses == [1.0] * 9
    with pytest.raises(SlipwayError, match=r"lost the lock of context local: it could not be renewed for 9s "
                                           r"\(the lease duration is 9s\): cannot reach the Kubernetes API"):
        lease.check()


def test_a_renewal_whose_answer_was_lost_carries_on_from_the_server_s_lease():
    client, clock, lease = held_lease()
    stored = client.store[lease.path]
    client._save(lease.path, stored)  # our own renewal applied, its answer never arrived: a newer resourceVersion
    assert lease.keep_renewing() == lease.renew_interval
    assert lease.held and lease.lost is None
    assert client.store[lease.path]["spec"]["holderIdentity"] == "ci-1"


def job_hold(client, clock, holder="job 42", duration=1800):
    return lk.hold(client, "local", holder, duration, timeout=1, clock=clock, monotonic=clock, sleep=clock.sleep)


def test_a_delivery_of_the_job_runs_inside_its_hold_and_hands_the_lease_back():
    client, clock = FakeClient(), Clock()
    job_hold(client, clock)
    held = client.store[lk.Lease(client, "local", "x").path]
    assert lk.is_hold(held) and held["spec"]["leaseDurationSeconds"] == 1800
    clock.now += 100
    delivery = make(client, "job 42", clock, duration=30)
    delivery.acquire(timeout=1)
    delivery._stop.set()
    during = client.store[delivery.path]["spec"]
    assert during["holderIdentity"] == "job 42" and during["leaseDurationSeconds"] == 30
    assert during["acquireTime"] == held["spec"]["acquireTime"] and during["leaseTransitions"] == 0
    clock.now += 10
    delivery.release()
    after = client.store[delivery.path]
    assert after["spec"]["holderIdentity"] == "job 42" and after["spec"]["leaseDurationSeconds"] == 1800
    assert after["spec"]["renewTime"] == lk.micro_time(clock.now) and lk.is_hold(after)


def test_another_holder_waits_for_the_job_and_only_the_job_releases_it():
    client, clock = FakeClient(), Clock()
    job_hold(client, clock)
    with pytest.raises(SlipwayError, match="locked by job 42"):
        make(client, "someone else", clock).acquire(timeout=2)
    with pytest.raises(SlipwayError, match="is held by job 42 .*, not by someone else; nothing was changed"):
        lk.release_hold(client, "local", "someone else", clock=clock)
    assert lk.release_hold(client, "local", "job 42", check_mode=True, clock=clock)["changed"] is True
    assert client.store[lk.Lease(client, "local", "x").path]["spec"]["holderIdentity"] == "job 42"
    released = lk.release_hold(client, "local", "job 42", clock=clock)
    assert released == {"changed": True, "holder": "job 42", "was": "job 42"}
    freed = client.store[lk.Lease(client, "local", "x").path]
    assert freed["spec"]["holderIdentity"] is None and not lk.is_hold(freed)
    assert lk.release_hold(client, "local", "job 42", clock=clock)["changed"] is False  # twice: nothing to do


def test_a_run_that_reuses_a_holder_name_without_a_hold_frees_the_lease_as_before():
    client, clock = FakeClient(), Clock()
    first = make(client, "ci-7", clock, duration=30)
    first.take(None)
    first._stop.set()  # killed, then run again with the same explicit holder before the Lease expired
    again = make(client, "ci-7", clock, duration=30)
    again.acquire(timeout=1)
    again._stop.set()
    again.release()
    assert client.store[again.path]["spec"]["holderIdentity"] is None


def test_a_delivery_that_takes_over_an_expired_hold_ends_it():
    client, clock = FakeClient(), Clock()
    job_hold(client, clock, duration=60)
    clock.now += 61  # the job was killed between two steps
    taker = make(client, "next job", clock)
    taker.acquire(timeout=1)
    taker._stop.set()
    assert not lk.is_hold(client.store[taker.path]) and taker.took_over == "job 42"
    taker.release()
    assert client.store[taker.path]["spec"]["holderIdentity"] is None


def test_holding_again_renews_the_hold_and_says_nothing_changed():
    client, clock = FakeClient(), Clock()
    assert job_hold(client, clock)["changed"] is True
    clock.now += 500
    again = job_hold(client, clock)
    assert again == {"changed": False, "holder": "job 42", "was": "job 42", "expires_in": 1800}
    assert client.store[lk.Lease(client, "local", "x").path]["spec"]["renewTime"] == lk.micro_time(clock.now)
    with pytest.raises(SlipwayError, match="locked by job 42 .* a real run would wait up to 1s"):
        lk.hold(client, "local", "other job", 60, timeout=1, check_mode=True, clock=clock)
