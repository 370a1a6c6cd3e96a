# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rolling out planned systems: namespaces and CRDs first, then each system's objects in kind order (SSA), its
workloads waited for, its health gates, and the objects it no longer declares pruned."""

from __future__ import annotations

import time

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.apply import live_label
from ansible_collections.slipway.platform.plugins.module_utils._kube.objects import apply_groups
from ansible_collections.slipway.platform.plugins.module_utils._kube.wait import WAITED_KINDS, Target
from ansible_collections.slipway.platform.plugins.module_utils._release.options import DetailLine

FOUNDATION_KINDS = ("Namespace", "CustomResourceDefinition")


class Rollout:
    """The writes of one delivery. ``check_health(run)`` runs a system's gates; ``lease.check()`` stops the
    rollout once the lock is lost; ``leaving``: systems this run takes out of the release (result ``retired``)."""

    def __init__(self, applier, options, lease, say, check_health, leaving):
        self.applier, self.opts, self.lease = applier, options, lease
        self.say, self.check_health, self.leaving = say, check_health, leaving

    def foundations(self, runs, hub):
        """Namespaces and CRDs of every system first; CRDs must be established before their objects."""
        plans = [p for run in runs.values() for p in run.plans if p.desired.kind in FOUNDATION_KINDS]
        for plan in plans:
            if plan.changed:
                self.applier.apply(plan)
                self.say(DetailLine(f"{plan.desired.system}: {plan.action} {plan.desired.label}"))
        crds = [Target(key=p.desired.key, label=p.desired.label, resource=p.desired.resource, namespace=None,
                       name=p.desired.name) for p in plans if p.desired.kind == "CustomResourceDefinition"]
        if crds:
            failure = hub.wait_all(hub.add(crds), self.opts.wait_timeout)
            late = [t for t in crds if t.state != "ready"]
            if failure is not None or late:
                target = failure or late[0]
                raise SlipwayError(f"{target.label} is not established: {target.reason}")

    def _apply(self, plan):
        if plan.deferred:
            self.applier.predict(plan)
            if not plan.changed:
                return plan
        return self.applier.apply(plan)

    def system(self, run, requests, hub):
        """Apply, wait for, check and prune one system; raises SlipwayError when it fails (``run`` says why)."""
        start = time.monotonic()
        try:
            self.lease.check()
            for group in apply_groups([p.desired for p in run.plans if p.desired.kind not in FOUNDATION_KINDS]):
                keys = {d.key for d in group}
                plans = [p for p in run.plans if p.desired.key in keys and p.changed]
                for plan in requests.map(self._apply, plans):
                    if plan.action != "unchanged":
                        self.say(DetailLine(f"{run.system.name}: {plan.action} {plan.desired.label}"))
                self.lease.check()
            if self.opts.wait:
                self._wait(run, hub)
            self.check_health(run)
            for resource, live in run.prune:
                if self.applier.delete(resource, live, dry_run=False):
                    run.pruned.append(live_label(resource, live))
                    self.say(f"{run.system.name}: pruned {live_label(resource, live)}")
            if run.system.name in self.leaving:
                run.result = "retired"
                self.say(f"{run.system.name}: retired ({len(run.pruned)} object(s) deleted)")
            else:
                run.result = "changed" if run.changed else "ok"
                self.say(f"{run.system.name}: ready ({run.result}, {time.monotonic() - start:.1f}s)")
        finally:
            run.seconds = round(time.monotonic() - start, 2)

    def _wait(self, run, hub):
        targets = [Target(key=p.desired.key, label=p.desired.label, resource=p.desired.resource,
                          namespace=p.desired.namespace, name=p.desired.name,
                          min_generation=((p.result or p.live or {}).get("metadata") or {}).get("generation", 0))
                   for p in run.plans if p.desired.kind in WAITED_KINDS]
        failure = hub.wait_all(hub.add(targets), self.opts.wait_timeout) if targets else None
        if failure is not None:
            run.details = failure.details
            raise SlipwayError(f"system {run.system.name}: {failure.label} failed: {failure.reason}",
                               details=failure.details)
        late = [t for t in targets if not t.done.is_set() or t.state != "ready"]
        if late:
            # the first pod's state says why a rollout stalls without failing (unschedulable, not Ready)
            reasons = "; ".join(f"{t.label}: {t.reason}" + (f" ({t.details[0]})" if t.details else "")
                                for t in late)
            run.details = [d for t in late for d in t.details + hub.events(t.namespace, t.name)]
            raise SlipwayError(f"system {run.system.name}: not ready after {self.opts.wait_timeout:g}s: "
                               f"{reasons}", details=run.details)
