# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One delivery per context at a time: a ``coordination.k8s.io/v1`` Lease, renewed while held.

A holder killed with ``kill -9`` stops renewing; once ``leaseDurationSeconds`` pass without a renewal the next
delivery takes the Lease over. Expiry is judged on the server's renewTime and, to be safe against clock
skew, also on how long this process has seen the Lease unchanged.

A renewal that fails because the API did not answer (a restart, a timeout) is retried every second until the
Lease would expire: a blip does not cost the lock. Only another holder, or a silence as long as the Lease's
duration, does.

A job can hold the Lease across several steps (``hold``, the ``context_lock`` module): a delivery whose holder is the
job's own then runs inside that hold, and when it ends hands the Lease back to the job, renewed for the hold's
duration, instead of freeing it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import datetime, timezone

from ansible_collections.slipway.platform.plugins.module_utils._errors import Conflict, SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import api_path
from ansible_collections.slipway.platform.plugins.module_utils._ci.outcome import LOCK_NOT_OBTAINED

NAMESPACE = "slipway-system"
RENEW_RETRY = 1.0  # seconds between renewals after one failed
HELD_BY_ANOTHER = "held_by_another"  # the ``cause`` of a release refused: another job holds the context now
HOLD_ANNOTATION = "slipway.io/hold"  # on a Lease held by a job across steps (``hold``), not by one run


def lease_name(context):
    return f"slipway-lock-{context}"


def micro_time(epoch):
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text):
    if not text:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    return None


def expired(lease, now):
    """Whether a Lease's holder has stopped renewing (or there is none)."""
    spec = (lease or {}).get("spec") or {}
    if not spec.get("holderIdentity"):
        return True
    renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    return renewed is None or renewed + spec.get("leaseDurationSeconds", 0) < now


class Lease:
    def __init__(self, client, context, holder, duration=30, namespace=NAMESPACE,
                 clock=time.time, monotonic=time.monotonic, sleep=time.sleep, job_hold=False):
        self.client = client
        self.job_hold = job_hold  # held across a job's steps: marked on the Lease, not renewed in the background
        self.context = context
        self.holder = holder
        self.duration = int(duration)
        self.namespace = namespace
        self.clock, self.monotonic, self.sleep = clock, monotonic, sleep
        self.collection = api_path("coordination.k8s.io/v1", "leases", namespace)
        self.path = api_path("coordination.k8s.io/v1", "leases", namespace, lease_name(context))
        self.held = False
        self.lost = None
        self.waited = 0.0
        self.took_over = None
        self.outer_duration = None  # the duration of this holder's own earlier hold, which release() gives back
        self._current = None
        self._renewed = None  # monotonic time of the last write the server accepted
        self._stop = threading.Event()
        self._thread = None
        self._write_lock = threading.Lock()

    def peek(self):
        """The Lease as it is now (``None`` when absent); read only."""
        return self.client.get(self.path, ok_missing=True)

    def held_by_other(self, lease):
        spec = (lease or {}).get("spec") or {}
        return bool(lease) and not expired(lease, self.clock()) and spec.get("holderIdentity") != self.holder

    def _spec(self, transitions):
        now = micro_time(self.clock())
        return {"holderIdentity": self.holder, "leaseDurationSeconds": self.duration, "acquireTime": now,
                "renewTime": now, "leaseTransitions": transitions}

    def try_acquire(self, lease):
        """One attempt against the Lease as read (``lease``); True when this process now holds it."""
        previous = ((lease or {}).get("spec") or {}).get("holderIdentity")
        inside = own_hold(lease, self.holder, self.clock())
        outer_duration = (lease.get("spec") or {}).get("leaseDurationSeconds") if inside else None
        if lease is None:
            method, path = "POST", self.collection
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": lease_name(self.context), "namespace": self.namespace,
                                 "labels": {"app.kubernetes.io/managed-by": "slipway",
                                            "slipway.io/context": self.context}},
                    "spec": self._spec(0)}
        else:
            transitions = (lease.get("spec") or {}).get("leaseTransitions", 0) + (previous != self.holder)
            method, path, body = "PUT", self.path, dict(lease, spec=self._spec(int(transitions)))
            if inside:
                body["spec"]["acquireTime"] = lease["spec"].get("acquireTime") or body["spec"]["acquireTime"]
            else:  # a hold this run is not part of (expired, or another holder's) ends here
                body["metadata"] = without_hold(lease.get("metadata") or {})
        if self.job_hold:
            metadata = dict(body["metadata"])
            metadata["annotations"] = dict(metadata.get("annotations") or {}, **{HOLD_ANNOTATION: "true"})
            body = dict(body, metadata=metadata)
        try:
            self._current = self.client.request(method, path, body=body)
        except Conflict:  # someone else created or updated it first
            return False
        if previous and previous != self.holder:
            self.took_over = previous
        self.outer_duration = outer_duration
        self.held = True
        self._renewed = self.monotonic()
        return True

    def take(self, lease):
        """Take the Lease as read, without waiting; renew it in the background once held."""
        if not self.try_acquire(lease):
            return False
        if self.job_hold:
            return True
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name="slipway-lease", daemon=True)
        self._thread.start()
        return True

    def acquire(self, timeout, first=None, on_wait=None):
        """Take the Lease, waiting up to ``timeout`` seconds for its holder; fail naming the holder."""
        start = self.monotonic()
        lease = first if first is not None else self.peek()
        seen = {}
        announced = False
        while True:
            rv = ((lease or {}).get("metadata") or {}).get("resourceVersion")
            seen.setdefault(rv, self.monotonic())
            duration = ((lease or {}).get("spec") or {}).get("leaseDurationSeconds") or 0
            stale = lease is not None and self.monotonic() - seen[rv] > duration
            if lease is None or not self.held_by_other(lease) or stale:
                if self.take(lease):
                    self.waited = self.monotonic() - start
                    return self
            else:
                if not announced and on_wait:
                    on_wait(describe(lease))
                    announced = True
                if self.monotonic() - start >= timeout:
                    raise SlipwayError(f"context {self.context} is locked by {describe(lease)}; gave up after "
                                       f"{timeout:g}s", holder=(lease.get("spec") or {}).get("holderIdentity"),
                                       hint="wait for that delivery to finish, or raise lock_timeout",
                                       cause=LOCK_NOT_OBTAINED)  # what pipelines read (docs/ci.md)
                self.sleep(min(1.0, max(0.05, timeout - (self.monotonic() - start))))
            lease = self.peek()

    @property
    def renew_interval(self):
        return max(0.5, self.duration / 3.0)

    def _renew_loop(self):
        pause = self.renew_interval
        while not self._stop.wait(pause):
            pause = self.keep_renewing()
            if pause is None:
                return

    def keep_renewing(self):
        """Renew once; return the seconds until the next renewal, or ``None`` once the lock is lost (``lost``).

        A failure to reach the API is retried soon, until the Lease has gone unrenewed for its whole duration:
        from then on another delivery may take it over, so this one must stop (``check`` raises).
        """
        try:
            self.renew()
        except SlipwayError as exc:
            if not self.held:  # another holder has it
                self.lost = exc.msg
                return None
            silent = self.monotonic() - self._renewed
            if silent >= self.duration:
                self.lost = (f"lost the lock of context {self.context}: it could not be renewed for {silent:.0f}s "
                             f"(the lease duration is {self.duration}s): {exc.msg}")
                return None
            return min(RENEW_RETRY, self.renew_interval)
        return self.renew_interval

    def renew(self):
        with self._write_lock:
            if not self.held:
                return
            try:
                self._current = self._put_renewed(self._current)
            except Conflict:  # any other failure (the API did not answer) goes to the caller, which retries
                # A conflict: someone else wrote the Lease, or our own last renewal was applied and its answer
                # lost. In the second case the Lease is still ours: carry on from what the server has.
                found = self.peek()
                if ((found or {}).get("spec") or {}).get("holderIdentity") != self.holder:
                    self.held = False
                    raise SlipwayError(f"lost the lock of context {self.context}: another delivery took it over "
                                       "(was this delivery paused longer than the lease duration?)") from None
                self._current = self._put_renewed(found)
            self._renewed = self.monotonic()

    def _put_renewed(self, lease):
        body = dict(lease)
        body["spec"] = dict(body["spec"], renewTime=micro_time(self.clock()))
        return self.client.request("PUT", self.path, body=body)

    def check(self):
        if self.lost:
            raise SlipwayError(self.lost)

    def release(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        with self._write_lock:
            if not self.held:
                return
            body = dict(self._current)
            if self.outer_duration:  # back to the job that held the context before this run
                body["spec"] = dict(body["spec"], leaseDurationSeconds=self.outer_duration,
                                    renewTime=micro_time(self.clock()))
            else:
                body["spec"] = dict(body["spec"], holderIdentity=None, renewTime=micro_time(self.clock()))
            with contextlib.suppress(SlipwayError):  # if this fails, the Lease expires by itself
                self.client.request("PUT", self.path, body=body)
            self.held = False


def hold(client, context, holder, duration, timeout, namespace=NAMESPACE, check_mode=False, on_wait=None,
         clock=time.time, monotonic=time.monotonic, sleep=time.sleep):
    """Hold the context's Lease for a job of several steps, ``duration`` seconds from now (taken, or renewed).

    Nothing renews it in the background: the job renews it by holding again, and ends it with ``release_hold``;
    a job that is killed loses it ``duration`` seconds after its last hold. Deliveries, rollbacks and canary steps
    whose ``holder`` is the job's run inside the hold; any other waits for it like for a delivery.
    Returns ``{changed, holder, was, expires_in}``; ``changed`` is false when the job held it already.
    """
    lease = Lease(client, context, holder, duration, namespace, clock=clock, monotonic=monotonic, sleep=sleep,
                  job_hold=True)
    current = lease.peek()
    now = lease.clock()
    mine = own_hold(current, holder, now)
    was = None if expired(current, now) else current["spec"].get("holderIdentity")
    if check_mode:
        if was and not mine:
            raise SlipwayError(f"context {context} is locked by {describe(current)}; a real run would wait up to "
                               f"{timeout:g}s for it", holder=was)
    else:
        lease.acquire(timeout, first=current, on_wait=on_wait)
    return {"changed": not mine, "holder": holder, "was": was, "expires_in": int(duration)}


def release_hold(client, context, holder, namespace=NAMESPACE, check_mode=False, clock=time.time):
    """End a job's hold (``hold``); a Lease that is free or expired already is nothing to do."""
    lease = Lease(client, context, holder, namespace=namespace, clock=clock)
    current = lease.peek()
    if current is None or expired(current, lease.clock()):
        return {"changed": False, "holder": holder, "was": None}
    was = current["spec"].get("holderIdentity")
    if was != holder:
        raise SlipwayError(f"context {context} is held by {describe(current)}, not by {holder}; nothing was changed",
                           holder=was, hint="release it with the holder that took it, or let it expire",
                           cause=HELD_BY_ANOTHER)
    if not check_mode:
        spec = dict(current["spec"], holderIdentity=None, renewTime=micro_time(lease.clock()))
        client.request("PUT", lease.path, body=dict(current, metadata=without_hold(current["metadata"]), spec=spec))
    return {"changed": True, "holder": holder, "was": was}


def own_hold(lease, holder, now):
    """Whether ``lease`` is a live job hold (``hold``) of ``holder``: runs of that holder then run inside it."""
    return ((lease or {}).get("spec") or {}).get("holderIdentity") == holder and is_hold(lease) \
        and not expired(lease, now)


def is_hold(lease):
    return bool((((lease or {}).get("metadata") or {}).get("annotations") or {}).get(HOLD_ANNOTATION))


def without_hold(metadata):
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if k != HOLD_ANNOTATION}
    return dict(metadata, annotations=annotations)


def describe(lease):
    spec = (lease or {}).get("spec") or {}
    return (f"{spec.get('holderIdentity')} (since {spec.get('acquireTime')}, last renewed {spec.get('renewTime')}, "
            f"expires {spec.get('leaseDurationSeconds')}s after that)")
