# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One delivery: lock -> validate (dry-run all) -> order -> apply (SSA) -> prune -> wait -> record.

Plain Python, no Ansible: ``deliver()`` takes a connected client and the rendered systems and returns the
result dict the ``slipway.platform.deliver`` module hands back. This file is the lock protocol around a run
(when the Lease is taken, waited for or not needed at all); the run's phases are ``engine.Delivery`` and the
modules it composes. ``Options`` and ``DetailLine`` are importable from here, as callers have always done.
"""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release.engine import Delivery
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import FAILED, SUCCEEDED
from ansible_collections.slipway.platform.plugins.module_utils._release.lease import Lease
from ansible_collections.slipway.platform.plugins.module_utils._release.options import (
    DetailLine,
    Options,
    SystemRun,
    default_holder,
)

__all__ = ["DetailLine", "Delivery", "Options", "SystemRun", "deliver", "execute_and_record"]


def deliver(client, raw_systems, options, progress=None, runner=None, lease=None, recover=None):
    """Deliver the rendered systems to one context; returns the module result (raises SlipwayError).

    Nothing is written before every object passed validation and a server-side dry-run. A delivery that
    would change nothing makes no write at all (not even the lock) and records no revision.

    ``lease``: a Lease this process already holds; the delivery runs under it and leaves it held (an automatic
    rollback runs under the hold of the delivery that failed). ``recover(error, lease)``: called when the delivery
    failed after writing, once the failure is recorded and while the Lease is still held, so that no other
    delivery can come in between; it raises the error to report (the automatic rollback tells both stories).
    """
    # runner: Delivery with what a release step adds (functools.partial: action, drop, companions), or a test's
    run = (runner or Delivery)(client, raw_systems, options, progress)
    run.validate_locally()
    # An API server that answered and then went away (a restart, an upgrade) is waited for as long as the lock
    # could still be ours; past that, the failure is final and the next run takes the expired lock over.
    client.outage_grace = max(client.outage_grace, options.lock_duration)
    run.connect()
    if lease is not None and not options.check_mode:
        run.lease = lease
        run.read_journal()
        run.plan()
        run.predict()
        return execute_and_record(run, recover)
    lease = Lease(client, options.context, options.holder or default_holder(), options.lock_duration,
                  namespace=options.journal_namespace)
    run.lease = lease
    seen = lease.peek()
    busy = lease.held_by_other(seen)
    if options.check_mode:
        run.read_journal()
        run.plan()
        run.predict()
        for name, system_run in run.runs.items():
            system_run.result = "retired" if name in run.leaving else "changed" if system_run.changed else "ok"
        result = run.result(changed=not run.nothing_to_do())
        if busy:
            result["warnings"] = [f"context {options.context} is being delivered by another run right now"]
        return result

    def waiting(who):
        run.say(f"waiting for the lock held by {who}")

    try:
        if busy:
            lease.acquire(options.lock_timeout, first=seen, on_wait=waiting)
        run.read_journal()
        run.plan()
        if not lease.held:
            if run.nothing_to_do():
                return run.finish_unchanged()
            run.predict()
            if run.nothing_to_do():
                # the dry-run cleared what the fast check could not (a field left to an autoscaler): no lock either
                return run.finish_unchanged()
            if not lease.take(seen):
                # another delivery took the lock between our read and now: wait for it, then plan again
                lease.acquire(options.lock_timeout, on_wait=waiting)
                run.read_journal()
                run.plan()
                run.predict()
        else:
            run.predict()
        return execute_and_record(run, recover)
    finally:
        lease.release()


def execute_and_record(run, recover=None):
    """Apply, wait and record a planned and predicted delivery whose Lease is held (see :func:`deliver`)."""
    if run.nothing_to_do():
        return run.finish_unchanged()
    failed = run.execute()
    if not failed:
        return run.result(changed=True, record=run.record(SUCCEEDED, ""))
    first = next((v for v in failed.values() if v != "skipped"), "failed")
    try:
        record = run.record(FAILED, first)
    except SlipwayError as exc:
        # The API went away with the delivery (killed server, etcd down, revoked token): say both, so that the
        # user knows a delivery was interrupted and not recorded. The Lease expires; the next run takes it over.
        raise SlipwayError(f"delivery to {run.opts.context} failed: {first}; the failure could not be recorded "
                           f"either: {exc.msg}", **dict(exc.details, recorded=False,
                                                        hint="run the delivery again once the API answers: it "
                                                             "takes over the expired lock and completes")) from None
    result = run.result(changed=True, record=record)
    error = SlipwayError(f"delivery to {run.opts.context} failed (recorded as revision {record['revision']}): "
                         f"{first}", **{k: v for k, v in result.items() if k not in ("changed", "msg")})
    if recover is not None:
        recover(error, run.lease)
    raise error
