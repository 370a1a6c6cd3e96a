# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One delivery: lock -> validate (dry-run all) -> order -> apply (SSA) -> prune -> wait -> record.

Plain Python, no Ansible: ``deliver()`` takes a connected client and the rendered systems and returns the
result dict the ``slipway.platform.deliver`` module hands back.
"""

from __future__ import annotations

import base64
import getpass
import os
import secrets
import socket
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from ansible_collections.slipway.platform.plugins.module_utils._ci.detect import detect
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.apply import (
    DEFAULT_RECLAIM,
    Applier,
    assess,
    live_key,
    live_label,
    owned_by,
    prepare,
)
from ansible_collections.slipway.platform.plugins.module_utils._kube.discovery import Discovery, Resource
from ansible_collections.slipway.platform.plugins.module_utils._kube.normalize import keyed_digest, secret_values
from ansible_collections.slipway.platform.plugins.module_utils._kube.objects import (
    apply_groups,
    build_systems,
    crd_resources,
    dependency_order,
    place_objects,
)
from ansible_collections.slipway.platform.plugins.module_utils._kube.wait import WAITED_KINDS, Target, WaitHub
from ansible_collections.slipway.platform.plugins.module_utils._release.health import HealthCheck
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import (
    FAILED,
    NAMESPACE,
    SUCCEEDED,
    Journal,
    release_content,
)
from ansible_collections.slipway.platform.plugins.module_utils._release.lease import Lease
from ansible_collections.slipway.platform.plugins.module_utils._release.snapshot import annotate_config, snapshot_writer

KEY_SECRET = "slipway-digest-key"  # noqa: S105 - a Secret's name, not a password
FOUNDATION_KINDS = ("Namespace", "CustomResourceDefinition")
HEALTHY_RESULTS = ("ok", "changed", "carried")  # a system's recorded results that need no new health check


class DetailLine(str):
    """A progress line worth showing only when asked for more (``-v``): one per object written."""


@dataclass
class Options:
    context: str
    check_mode: bool = False
    diff: bool = False
    wait: bool = True
    wait_timeout: float = 300.0
    concurrency: int = 8
    prune: bool = True
    force_conflicts: bool = False
    reclaim_managers: tuple = DEFAULT_RECLAIM
    lock_timeout: float = 120.0
    lock_duration: int = 30
    holder: str | None = None
    journal_namespace: str = NAMESPACE
    confirmed: bool = False
    retire: tuple = ()  # systems to take out of the context: their objects pruned, gone from the release
    retire_absent: bool = False  # retire every recorded system this delivery does not deliver


@dataclass
class SystemRun:
    system: object
    plans: list = field(default_factory=list)
    prune: list = field(default_factory=list)  # [(resource, live)]
    result: str = "pending"
    reason: str = ""
    details: list = field(default_factory=list)
    seconds: float = 0.0
    pruned: list = field(default_factory=list)
    health: dict | None = None  # {state, reason, gates}; None while its gates (if any) have not been considered

    @property
    def changed(self):
        return any(p.changed for p in self.plans) or bool(self.prune)


def default_holder():
    job = detect(os.environ)
    who = f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"
    return f"{who} ci {job.label()}" if job else who


def actor(holder):
    """Who delivered, for the journal: the holder, user and host, and the CI job (its URL and build number)."""
    job = detect(os.environ)
    return {"holder": holder, "user": getpass.getuser(), "host": socket.gethostname(),
            "ci_job": job.label() if job else None, "ci": job.as_dict() if job else None}


def hmac_key(client, namespace, create):
    """The cluster's digest key (a Secret in ``slipway-system``): digests and redaction hashes are keyed with it."""
    path = f"/api/v1/namespaces/{namespace}/secrets/{KEY_SECRET}"
    found = client.get(path, ok_missing=True)
    if found and (found.get("data") or {}).get("key"):
        return base64.b64decode(found["data"]["key"])
    key = secrets.token_bytes(32)
    if create:
        body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": KEY_SECRET, "namespace": namespace,
                             "labels": {"app.kubernetes.io/managed-by": "slipway"}},
                "data": {"key": base64.b64encode(key).decode("ascii")}}
        try:
            client.request("POST", f"/api/v1/namespaces/{namespace}/secrets", body=body)
        except SlipwayError as exc:
            if exc.details.get("status") != 409:
                raise
            return hmac_key(client, namespace, create=False)
    return key


class Delivery:
    def __init__(self, client, raw_systems, options, progress=None):
        self.client = client
        self.opts = options
        self.raw = raw_systems
        self.progress = progress or (lambda line: None)
        self.lines = []
        self.lines_lock = threading.Lock()
        self.discovery = Discovery(client)
        self.systems = []
        self.runs = {}
        self.key = None
        self.applier = None
        self.records = []
        self.last = None
        self.lease = None
        self.started = time.time()
        self.masked = set()
        self.leaving = set()  # systems this run takes out of the release (retired, or absent from a rollback target)
        self.not_delivered = []  # systems recorded in the context that this run neither delivers nor retires
        self.health_check = HealthCheck(client, options.context, masked=self.masked)  # sees masked as it fills

    @property
    def last_systems(self):
        """The systems recorded by the release this run follows (none before the first)."""
        return (self.last or {}).get("systems") or {}

    def say(self, line):
        with self.lines_lock:
            self.lines.append(line)
        self.progress(line)

    # ----------------------------------------------------------------- phases

    def validate_locally(self):
        if self.opts.context == "production" and not self.opts.confirmed:
            raise SlipwayError("refusing to deliver to production without confirmation",
                               hint="pass -e slipway_production_confirmed=true (module option confirmed: true)")
        self.systems = build_systems(self.raw)
        both = sorted(set(self.opts.retire) & {system.name for system in self.systems})
        if both:
            raise SlipwayError(f"system(s) {', '.join(both)} are both delivered and retired",
                               hint="take them out of the systems to deliver, or out of retire")
        for system in self.systems:
            for desired in system.objects:
                self.masked |= secret_values(desired.body)

    def connect(self):
        pending = crd_resources(self.systems, Resource)
        errors = place_objects(self.systems, self.discovery, self.opts.context, pending)
        if errors:
            raise SlipwayError(f"{len(errors)} problem(s) in the rendered manifests; nothing was written:\n- "
                               + "\n- ".join(errors), problems=errors)
        self.key = hmac_key(self.client, self.opts.journal_namespace, create=not self.opts.check_mode)
        self.applier = Applier(self.client, self.key, self.opts.force_conflicts, self.opts.reclaim_managers)
        annotate_config(self.systems, self.key)  # config versioning: pod templates carry their config's digest

    def read_journal(self):
        self.records = Journal(self.client, self.opts.context, self.opts.journal_namespace).records()
        self.last = self.records[-1] if self.records else None
        self.add_retired_systems()
        self.waves = dependency_order(self.systems, known_elsewhere=set(self.last_systems))

    def add_retired_systems(self):
        """Systems to retire become empty systems (so their objects are pruned) that run after all the others.

        Read under the Lease with the journal, so the systems recorded are those of the release this run follows.
        Retiring a system that is not recorded (any more) is nothing to do: retiring twice is idempotent.
        """
        recorded = self.last_systems
        delivered = [system.name for system in self.systems if system.name not in self.leaving]
        absent = sorted(set(recorded) - set(delivered) - self.leaving)
        retiring = absent if self.opts.retire_absent else sorted(set(self.opts.retire) & set(absent))
        self.not_delivered = [name for name in absent if name not in retiring]
        needed = {f"{system.name} depends on {dep}" for system in self.systems for dep in system.depends_on
                  if dep in retiring}
        if needed:
            raise SlipwayError(f"cannot retire what delivered systems depend on: {'; '.join(sorted(needed))}",
                               hint="retire the dependent systems too, or remove the dependency from their slipway.yml")
        routed = sorted(name for name in retiring if (recorded[name] or {}).get("route"))
        if routed:
            raise SlipwayError(f"cannot retire {', '.join(routed)}: a canary routed through an HTTPRoute, which would "
                               "keep sending its share of the traffic to a Service that is gone",
                               hint="promote or abort the canary first (playbooks/canary.yml), then deliver again")
        if not retiring:
            return
        empty = build_systems([{"name": name, "namespace": recorded[name].get("namespace"), "documents": []}
                               for name in retiring])
        for system in empty:
            system.depends_on = list(delivered)  # the new versions are ready before the old systems go
        self.systems.extend(empty)
        self.leaving |= set(retiring)

    def plan(self):
        """Read the live state (one LIST per collection) and decide each object with the fast predicate."""
        self.runs = {s.name: SystemRun(system=s) for s in self.systems}
        collections = {}
        for system in self.systems:
            run = self.runs[system.name]
            run.plans = [prepare(d, self.key) for d in system.objects]
            for plan in run.plans:
                collections.setdefault(self._collection(plan.desired.resource, plan.desired.namespace), [])
            for entry in self.last_systems.get(system.name, {}).get("objects") or []:
                resource = self.discovery.known(entry.get("apiVersion"), entry.get("kind"))
                if resource is not None:
                    collections.setdefault(self._collection(resource, entry.get("namespace")), [])
        lists = self._read_collections(list(collections))
        declared = {d.key for s in self.systems for d in s.objects}  # an object moving between systems stays
        for system in self.systems:
            run = self.runs[system.name]
            for plan in run.plans:
                desired = plan.desired
                plan.live = lists[self._collection(desired.resource, desired.namespace)].get(desired.name)
                assess(plan, self.opts.reclaim_managers)
            if self.opts.prune or system.name in self.leaving:
                for (resource, _namespace), items in lists.items():
                    for live in items.values():
                        if owned_by(live, system.name, self.opts.context) and live_key(resource, live) not in declared:
                            run.prune.append((resource, live))

    @staticmethod
    def _collection(resource, namespace):
        return resource, (namespace if resource.namespaced else None)

    def _read_collections(self, keys):
        def read(key):
            resource, namespace = key
            return key, self.applier.list_live(resource, namespace)
        with ThreadPoolExecutor(max_workers=max(1, min(self.opts.concurrency, len(keys) or 1))) as pool:
            return dict(pool.map(read, keys))

    def predict(self):
        """Server-side dry-run of every object the fast predicate could not clear; all errors at once."""
        plans = [p for run in self.runs.values() for p in run.plans]
        new_namespaces = {p.desired.name for p in plans if p.desired.kind == "Namespace" and p.action == "create"}
        for plan in plans:
            # objects in a namespace or of a kind this delivery creates are dry-run once those exist
            plan.deferred = plan.desired.pending_crd or plan.desired.namespace in new_namespaces
        pending = [p for p in plans if p.action != "unchanged" and not p.deferred]
        errors = []

        def one(plan):
            try:
                self.applier.predict(plan)
            except SlipwayError as exc:
                plan.action = "failed"
                errors.append(exc)
        with ThreadPoolExecutor(max_workers=max(1, self.opts.concurrency)) as pool:
            list(pool.map(one, pending))
        if errors:
            problems = sorted(e.msg for e in errors)
            raise SlipwayError(f"{len(problems)} object(s) failed the server-side dry-run; nothing was written:\n- "
                               + "\n- ".join(problems), problems=problems,
                               hint=next((e.details.get("hint") for e in errors if e.details.get("hint")), None))

    def content(self):
        return {s.name: {"images": s.images, "manifest_digest": self.manifest_digest(s.name)} for s in self.systems}

    def manifest_digest(self, name):
        return keyed_digest(self.key, sorted(p.digest for p in self.runs[name].plans))

    def finish_unchanged(self):
        for system_run in self.runs.values():
            system_run.result = "ok"
        return self.result(changed=False)

    def nothing_to_do(self):
        if any(run.changed for run in self.runs.values()):
            return False
        wanted = release_content(self.new_record(SUCCEEDED, "", dry=True))
        return (self.last is not None and self.last.get("outcome") == SUCCEEDED
                and release_content(self.last) == wanted)

    # ----------------------------------------------------------------- execution

    def execute(self):
        hub = WaitHub(self.client, notify=self.say)
        failed = {}
        try:
            try:
                self.foundations(hub)
            except SlipwayError as exc:
                for run in self.runs.values():
                    run.result, run.reason = "skipped", "namespaces/CRDs failed"
                return {"namespaces and CRDs": exc.msg}
            with ThreadPoolExecutor(max_workers=max(1, self.opts.concurrency)) as requests, \
                    ThreadPoolExecutor(max_workers=max(1, len(self.systems))) as systems:
                # one thread per system: a system waiting for readiness never holds back a system that could start
                # (API requests are bounded by the request pool, not by this one)
                done, running = set(), {}
                order = [name for wave in self.waves for name in wave]
                while len(done) + len(failed) < len(order):
                    for name in order:
                        if name in done or name in failed or name in running.values():
                            continue
                        deps = set(self.runs[name].system.depends_on) & set(order)
                        if deps & set(failed):
                            failed[name] = "skipped"
                            self.runs[name].result = "skipped"
                            self.runs[name].reason = "a dependency failed: " + ", ".join(sorted(deps & set(failed)))
                            continue
                        if deps <= done:
                            running[systems.submit(self.deliver_system, self.runs[name], requests, hub)] = name
                    if not running:
                        continue
                    finished = wait(list(running), return_when=FIRST_COMPLETED).done
                    for future in finished:
                        name = running.pop(future)
                        try:
                            future.result()
                            done.add(name)
                        except SlipwayError as exc:
                            failed[name] = exc.msg
                            self.runs[name].result = "failed"
                            self.runs[name].reason = exc.msg
                    if failed:
                        # fail fast: let running systems finish, start nothing new that is not already running
                        for name in order:
                            if name not in done and name not in failed and name not in running.values():
                                failed[name] = "skipped"
                                self.runs[name].result = "skipped"
                                self.runs[name].reason = "not started: another system failed"
        finally:
            hub.close()
        return failed

    def foundations(self, hub):
        """Namespaces and CRDs of every system first; CRDs must be established before their objects."""
        plans = [p for run in self.runs.values() for p in run.plans if p.desired.kind in FOUNDATION_KINDS]
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

    def deliver_system(self, run, requests, hub):
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
                targets = [Target(key=p.desired.key, label=p.desired.label, resource=p.desired.resource,
                                  namespace=p.desired.namespace, name=p.desired.name)
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

    def health_due(self, run):
        """Whether this delivery must check the system's gates (it declares some and its workloads were waited for).

        A system this delivery changes is checked; so is one whose last recorded result was not a success (a
        redelivery that repairs a failed release must prove it healthy). An unchanged, healthy system is not: a
        redelivery that changes nothing stays fast (and makes no request at all).
        """
        if run.changed:
            return True
        previous = self.last_systems.get(run.system.name) or {}
        return previous.get("result") not in HEALTHY_RESULTS

    def check_health(self, run):
        """Run the system's health gates after its rollout; a failing gate fails the system like a failed rollout."""
        if not run.system.health:
            return
        if not self.opts.wait:
            run.health = {"state": "not run", "reason": "wait is off", "gates": []}
            self.say(f"{run.system.name}: health gates not run (wait is off)")
            return
        if not self.health_due(run):
            run.health = {"state": "skipped", "reason": "unchanged and healthy in the last release", "gates": []}
            return
        self.lease.check()
        try:
            gates = self.health_check.check(run.system, say=self.say)
        except SlipwayError as exc:
            run.health = {"state": "failed", "reason": exc.msg, "gates": exc.details.get("health") or []}
            run.details = list(exc.details.get("details") or [])
            raise
        run.health = {"state": "passed", "reason": "", "gates": gates}
        self.lease.check()

    # ----------------------------------------------------------------- records and results

    def new_record(self, outcome, message, dry=False):
        systems = dict(self.last_systems)
        for name, previous in list(systems.items()):
            systems[name] = dict(previous, result="carried")
        gone = []
        for system in self.systems:
            run = self.runs.get(system.name)
            if system.name in self.leaving:
                if dry or run.result == "retired":  # a retirement that did not run keeps its entry
                    systems.pop(system.name, None)
                    gone.append(system.name)
                continue
            previous = self.last_systems.get(system.name) or {}
            entry = {"namespace": system.namespace, "images": system.images, "git_sha": system.git_sha,
                     "manifest_digest": self.manifest_digest(system.name),
                     "files": system.files,
                     "objects": [{"apiVersion": p.desired.api_version, "kind": p.desired.kind,
                                  "namespace": p.desired.namespace, "name": p.desired.name, "digest": p.digest}
                                 for p in run.plans],
                     "result": run.result if not dry else "planned",
                     "changed_in": previous.get("changed_in") if not run.changed and previous else None}
            if system.health:  # kept for a rollback to this release, which checks the same gates
                entry["health"] = [gate.spec() for gate in system.health]
            corrected = [c for c in (p.corrected() for p in run.plans if p.result is not None) if c]
            if corrected:  # hand edits this delivery undid: what someone had changed outside the manifests
                entry["drift_corrected"] = corrected
            systems[system.name] = entry
        record = {"context": self.opts.context, "outcome": outcome, "message": message,
                  "started_at": _iso(self.started), "finished_at": _iso(time.time()), "actor": actor(self.opts.holder),
                  "systems": systems, "summary": self.counts()}
        if gone:
            record["retired"] = sorted(gone)
        return record

    def counts(self):
        counts = {"created": 0, "updated": 0, "unchanged": 0, "pruned": 0}
        for run in self.runs.values():
            for plan in run.plans:
                if plan.action in ("create", "update", "unchanged"):
                    counts[{"create": "created", "update": "updated"}.get(plan.action, plan.action)] += 1
            counts["pruned"] += len(run.pruned) if not self.opts.check_mode else len(run.prune)
        return counts

    def record(self, outcome, message):
        record = self.new_record(outcome, message)
        revision = (self.last or {}).get("revision", 0) + 1
        for entry in record["systems"].values():
            if entry.get("result") != "carried" and not entry.get("changed_in"):
                entry["changed_in"] = revision
        journal = Journal(self.client, self.opts.context, self.opts.journal_namespace)
        return journal.write(record, after_revision=(self.last or {}).get("revision", 0),
                             attach=snapshot_writer(self))  # the release's objects, for rollback

    def result(self, changed, record=None):
        plans = [p for run in self.runs.values() for p in run.plans]
        out = {
            "changed": changed,
            "context": self.opts.context,
            "revision": (record or self.last or {}).get("revision"),
            "recorded": record is not None,
            "summary": self.counts(),
            "systems": [self.system_row(run, record) for run in self.runs.values()],
            "objects": [p.report() for p in plans if p.action != "unchanged" or p.drift],
            "drift": [dict(p.report(), drift=p.drift) for p in plans if p.drift],
            "conflicts_respected": [p.report() for p in plans if p.respected],
            "pruned": [live_label(r, live) for run in self.runs.values() for r, live in run.prune],
            "retired": sorted(self.leaving & set(self.runs)),
            "not_delivered": list(self.not_delivered),
            "writes": self.client.writes,
            "requests": self.client.requests,
            "progress": list(self.lines),
        }
        if self.lease is not None and self.lease.took_over:
            out["lock_taken_over_from"] = self.lease.took_over
        if self.opts.diff:
            out["diff"] = [{"before_header": f"{p.desired.label} (live)",
                            "after_header": f"{p.desired.label} (desired)",
                            "before": p.diff[0], "after": p.diff[1]} for p in plans if p.diff]
            out["diff"] += [{"before_header": live_label(r, live), "after_header": f"{live_label(r, live)} (pruned)",
                             "before": {"kind": r.kind, "metadata": {"name": live["metadata"]["name"]}}, "after": {}}
                            for run in self.runs.values() for r, live in run.prune]
        return out

    def system_row(self, run, record):
        entry = ((record or self.last or {}).get("systems") or {}).get(run.system.name) or {}
        return {"system": run.system.name, "images": run.system.images,
                "revision": entry.get("changed_in"), "result": run.result, "reason": run.reason,
                "seconds": run.seconds, "details": run.details, "health": self.health_row(run)}

    def health_row(self, run):
        """The system's gate outcome for its result row (``None`` when it declares no gate)."""
        if not run.system.health:
            return None
        if run.health is not None:
            return run.health
        reason = "check mode" if self.opts.check_mode else \
            "nothing to deliver" if run.result == "ok" else f"the system ended {run.result}"
        return {"state": "not run", "reason": reason, "gates": []}


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class ReleaseRun(Delivery):
    """A delivery that says in its record what it was (``action``) and removes ``drop`` systems from the release."""

    def __init__(self, client, raw_systems, options, progress=None, action=None, drop=()):
        super().__init__(client, raw_systems, options, progress)
        self.action = dict(action or {})
        self.leaving |= set(drop)

    def new_record(self, outcome, message, dry=False):
        record = super().new_record(outcome, message, dry=dry)
        if self.action:
            record["action"] = dict(self.action, **{"from": (self.last or {}).get("revision")})
            story = self.action.get("summary") or self.action.get("kind", "")
            record["message"] = f"{story}; failed: {message}" if message else story
        return record


def deliver(client, raw_systems, options, progress=None, runner=None, lease=None, recover=None):
    """Deliver the rendered systems to one context; returns the module result (raises SlipwayError).

    Nothing is written before every object passed validation and a server-side dry-run. A delivery that
    would change nothing makes no write at all (not even the lock) and records no revision.

    ``lease``: a Lease this process already holds; the delivery runs under it and leaves it held (an automatic
    rollback runs under the hold of the delivery that failed). ``recover(error, lease)``: called when the delivery
    failed after writing, once the failure is recorded and while the Lease is still held, so that no other
    delivery can come in between; it raises the error to report (the automatic rollback tells both stories).
    """
    run = (runner or Delivery)(client, raw_systems, options, progress)  # runner: a subclass (rollback, canary)
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
