# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run of the delivery engine: the state its phases share, and the phases in the order ``deliver()`` calls
them (``delivery.py``). Each phase is the job of its own module; this class only composes them:

validate (``validation.py``) -> connect (digest key, placement) -> read the journal (``retire.py``, dependency
order) -> plan (``plan.py``) -> dry-run (``dry_run.py``) -> execute (``schedule.py`` runs ``rollout.py`` per
system; ``gating.py`` decides the health gates) -> record (``record.py``) -> result (``result.py``).

A release step that is more than a delivery says so through what it passes in, not by overriding: ``action``
(the record's story: a rollback, a canary step), ``drop`` (systems leaving the release) and ``companions``,
writes beside the systems' objects. A companion (``routing.RouteWrites``, a routed canary's HTTPRoute) has
``plan()``, ``predict()``, ``changed``, ``deliver_system(name, deliver, run)`` (around one system's rollout),
``add_to_record(record)`` and ``add_to_result(result, diff)``.
"""

from __future__ import annotations

import threading
import time

from ansible_collections.slipway.platform.plugins.module_utils._kube.apply import Applier
from ansible_collections.slipway.platform.plugins.module_utils._kube.discovery import Discovery
from ansible_collections.slipway.platform.plugins.module_utils._kube.normalize import secret_values
from ansible_collections.slipway.platform.plugins.module_utils._kube.objects import dependency_order
from ansible_collections.slipway.platform.plugins.module_utils._kube.wait import WaitHub
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release import gating
from ansible_collections.slipway.platform.plugins.module_utils._release.digest_key import hmac_key
from ansible_collections.slipway.platform.plugins.module_utils._release.deferred import is_deferred
from ansible_collections.slipway.platform.plugins.module_utils._release.dry_run import dry_run
from ansible_collections.slipway.platform.plugins.module_utils._release.health import HealthCheck
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import (
    SUCCEEDED,
    Journal,
    release_content,
)
from ansible_collections.slipway.platform.plugins.module_utils._release.plan import plan_systems
from ansible_collections.slipway.platform.plugins.module_utils._release.record import (
    release_record,
    with_action,
    write_record,
)
from ansible_collections.slipway.platform.plugins.module_utils._release.result import release_result
from ansible_collections.slipway.platform.plugins.module_utils._release.retire import retirement
from ansible_collections.slipway.platform.plugins.module_utils._release.rollout import Rollout
from ansible_collections.slipway.platform.plugins.module_utils._release.schedule import run_in_order
from ansible_collections.slipway.platform.plugins.module_utils._release.snapshot import SnapshotReader, annotate_config
from ansible_collections.slipway.platform.plugins.module_utils._release.validation import place, validated_systems


class Delivery:
    def __init__(self, client, raw_systems, options, progress=None, action=None, drop=(), companions=(),
                 deferred=None):
        self.client = client
        self.deferred = deferred  # DeferredRendering: systems rendered once the journal says whether they changed
        self.opts = options
        self.raw = raw_systems
        self.progress = progress or (lambda line: None)
        self.action = dict(action or {})  # what the record says this run was (a rollback, a canary step)
        self.companions = list(companions)
        self.lines = []
        self.lines_lock = threading.Lock()
        self.discovery = Discovery(client)
        self.systems = []
        self.runs = {}
        self.waves = []
        self.key = None
        self.applier = None
        self.records = []
        self.last = None
        self.lease = None
        self.started = time.time()
        self.masked = set()
        self.leaving = set(drop)  # systems this run takes out of the release (retired, or absent from a target)
        self.not_delivered = []  # systems recorded in the context that this run neither delivers nor retires
        self.health_check = HealthCheck(client, options.context, masked=self.masked,  # sees masked as it fills
                                        prometheus_url=options.prometheus_url)

    @property
    def last_systems(self):
        """The systems recorded by the release this run follows (none before the first)."""
        return (self.last or {}).get("systems") or {}

    def say(self, line):
        with self.lines_lock:
            self.lines.append(line)
        self.progress(line)

    # ----------------------------------------------------------------- before any write

    def pending(self):
        """Whether some systems wait for the journal to say if they must be rendered (``_release/deferred.py``)."""
        return self.deferred is not None and any(is_deferred(raw) for raw in self.raw)

    def validate_locally(self):
        if self.pending():
            return  # validated in read_journal, once every system has its documents
        self.systems = validated_systems(self.raw, self.opts)
        for system in self.systems:
            for desired in system.objects:
                self.masked |= secret_values(desired.body)

    def connect(self):
        ready = not self.pending()
        if ready:  # kinds the API does not serve fail here, before the digest key is made on a new cluster
            place(self.systems, self.discovery, self.opts.context)
        self.key = hmac_key(self.client, self.opts.journal_namespace, create=not self.opts.check_mode)
        self.applier = Applier(self.client, self.key, self.opts.force_conflicts, self.opts.reclaim_managers)
        if ready:
            annotate_config(self.systems, self.key)  # config versioning: pod templates carry their config's digest

    def place(self):
        """Place the systems resolved in ``read_journal`` (``connect`` placed the others)."""
        place(self.systems, self.discovery, self.opts.context)
        annotate_config(self.systems, self.key)

    def read_journal(self):
        """Read under the Lease, so the systems recorded (and retired) are those of the release this run follows."""
        # the latest record alone (the journal's index, then one record): a long history costs nothing here
        self.last = Journal(self.client, self.opts.context, self.opts.journal_namespace).latest()
        self.records = [self.last] if self.last else []
        if self.pending():
            reader = SnapshotReader(self.client, self.opts.context, self.opts.journal_namespace)
            self.raw = self.deferred.resolve(self.raw, self.last, self.key, reader)
            self.validate_locally()
            self.place()
            if self.deferred.reused:
                self.say(f"{len(self.deferred.reused)} system(s) with unchanged inputs reuse the objects their last "
                         f"release applied; {len(self.deferred.rendered)} rendered")
        retiring, self.not_delivered = retirement(self.systems, self.last_systems, self.leaving, self.opts.retire,
                                                  self.opts.retire_absent)
        self.systems.extend(retiring)
        self.leaving |= {system.name for system in retiring}
        self.waves = dependency_order(self.systems, known_elsewhere=set(self.last_systems))

    def plan(self):
        self.runs = plan_systems(self.systems, self.last_systems, self.leaving, self.key, self.discovery,
                                 self.applier, self.opts)
        for companion in self.companions:
            companion.plan()

    def predict(self):
        dry_run(self.runs, self.applier, self.opts.concurrency)
        for companion in self.companions:
            companion.predict()

    def nothing_to_do(self):
        if any(run.changed for run in self.runs.values()) or any(c.changed for c in self.companions):
            return False
        wanted = release_content(self.new_record(SUCCEEDED, "", dry=True))
        return (self.last is not None and self.last.get("outcome") == SUCCEEDED
                and release_content(self.last) == wanted)

    def finish_unchanged(self):
        for system_run in self.runs.values():
            system_run.result = "ok"
        return self.result(changed=False)

    # ----------------------------------------------------------------- writes

    def execute(self):
        """Roll every system out in dependency order; ``{system: reason}`` of those that failed or were skipped."""
        hub = WaitHub(self.client, notify=self.say)
        try:
            try:
                self.rollout().foundations(self.runs, hub)
            except SlipwayError as exc:
                for run in self.runs.values():
                    run.result, run.reason = "skipped", "namespaces/CRDs failed"
                return {"namespaces and CRDs": exc.msg}
            return run_in_order(self.waves, self.runs, lambda run, requests: self.deliver_system(run, requests, hub),
                                self.opts.concurrency)
        finally:
            hub.close()

    def rollout(self):
        return Rollout(self.applier, self.opts, self.lease, self.say, self.check_health, self.leaving)

    def deliver_system(self, run, requests, hub):
        def deliver():
            self.rollout().system(run, requests, hub)
        for companion in self.companions:
            deliver = companion.deliver_system(run.system.name, deliver, self)
        deliver()

    def check_health(self, run):
        gating.check_health(run, self.opts, self.last_systems, self.health_check, self.lease, self.say)

    def health_row(self, run):
        return gating.health_row(run, self.opts.check_mode)

    # ----------------------------------------------------------------- records and results

    def new_record(self, outcome, message, dry=False):
        found = with_action(release_record(self, outcome, message, dry=dry), self.action, self.last, message)
        for companion in self.companions:
            companion.add_to_record(found)
        return found

    def record(self, outcome, message):
        return write_record(self, self.new_record(outcome, message))

    def result(self, changed, record=None):
        out = release_result(self, changed, record)
        for companion in self.companions:
            companion.add_to_result(out, self.opts.diff)
        return out
