# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning a delivery: read the live state (one LIST per collection) and decide each object with the fast
predicate (desired ⊆ live, digest); what the fast predicate cannot clear goes to the dry-run (``dry_run.py``)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.slipway.platform.plugins.module_utils._kube.apply import assess, live_key, owned_by, prepare
from ansible_collections.slipway.platform.plugins.module_utils._kube.objects import SYSTEM_LABEL
from ansible_collections.slipway.platform.plugins.module_utils._release.options import SystemRun


def plan_systems(systems, last_systems, leaving, key, discovery, applier, options):
    """``{system name: SystemRun}`` with each object's plan and the owned live objects no system declares (pruned
    when ``options.prune``, or when the system leaves the release)."""
    runs = {s.name: SystemRun(system=s) for s in systems}
    collections = {}
    for system in systems:
        run = runs[system.name]
        run.plans = [prepare(d, key) for d in system.objects]
        for plan in run.plans:
            collections.setdefault(_collection(plan.desired.resource, plan.desired.namespace), [])
        for entry in last_systems.get(system.name, {}).get("objects") or []:
            resource = discovery.known(entry.get("apiVersion"), entry.get("kind"))
            if resource is not None:
                collections.setdefault(_collection(resource, entry.get("namespace")), [])
    lists = _read_collections(applier, list(collections), options.concurrency)
    declared = {d.key for s in systems for d in s.objects}  # an object moving between systems stays
    by_system = {}  # live objects by their system label: each system looks at its own, not at every object
    for (resource, _namespace), items in lists.items():
        for live in items.values():
            labels = (live.get("metadata") or {}).get("labels") or {}
            by_system.setdefault(labels.get(SYSTEM_LABEL), []).append((resource, live))
    for system in systems:
        run = runs[system.name]
        for plan in run.plans:
            desired = plan.desired
            plan.live = lists[_collection(desired.resource, desired.namespace)].get(desired.name)
            assess(plan, options.reclaim_managers)
        if options.prune or system.name in leaving:
            for resource, live in by_system.get(system.name, ()):
                if owned_by(live, system.name, options.context) and live_key(resource, live) not in declared:
                    run.prune.append((resource, live))
    return runs


def _collection(resource, namespace):
    return resource, (namespace if resource.namespaced else None)


def _read_collections(applier, keys, concurrency):
    def read(key):
        resource, namespace = key
        return key, applier.list_live(resource, namespace)
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(keys) or 1))) as pool:
        return dict(pool.map(read, keys))
