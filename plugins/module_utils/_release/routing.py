# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTTPRoute writes of a routed canary, used by canary steps and rollbacks: one :class:`RouteStep` per route
(assessed with the plan, dry-run with the prediction, written under the Lease) and :class:`RouteWrites`, which
puts them beside a release step's systems. The route bodies themselves are ``canary_route.py``'s (pure).
"""

from __future__ import annotations

import functools

from ansible_collections.slipway.platform.plugins.module_utils._errors import Conflict, SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import MERGE_PATCH, object_path
from ansible_collections.slipway.platform.plugins.module_utils._kube.discovery import Discovery
from ansible_collections.slipway.platform.plugins.module_utils._kube.normalize import minimal_diff
from ansible_collections.slipway.platform.plugins.module_utils._release import canary_route as rt
from ansible_collections.slipway.platform.plugins.module_utils._release.canary_plan import SUFFIX


def missing_route(route, context):
    return SlipwayError(f"{rt.label(route)} does not exist in context {context}; nothing was written",
                        hint="create the route (its rules sending traffic to the system's stable Service), or give "
                             "the right route name and namespace")


class RouteStep:
    """The HTTPRoute write of one canary step: assessed with the plan, dry-run with the prediction, then written.

    ``desired(live)`` gives the route body to write (``None``: nothing to write). ``restore`` steps also hand the
    restored fields back (``canary_route.without_manager``) once written.
    """

    def __init__(self, client, options, resource, route, desired, restore=False, canary_services=()):
        self.client = client
        self.context = options.context
        self.resource = resource
        self.route = route
        self.desired = desired
        self.restore = restore
        self.canary_services = set(canary_services)
        self.path = object_path(resource, route["namespace"], route["name"])
        self.live = self.body = self.diff = None
        self.fields = []
        self.written = False

    def assess(self):
        self.live = self.client.get(self.path, ok_missing=True)
        if self.live is None:
            if self.restore:  # the route is gone, so nothing sends traffic to the canary any more
                self.body, self.fields = None, []
                return self
            raise missing_route(self.route, self.context)
        self.body = self.desired(self.live)
        if self.body is None and self.restore:
            still = set(rt.routed_services((self.live.get("spec") or {}).get("rules") or [],
                                           self.route)) & self.canary_services
            if still:
                raise SlipwayError(f"{rt.label(self.route)} still sends traffic to {', '.join(sorted(still))} but "
                                   f"carries no saved rules (annotation {rt.ROUTE_ANNOTATION} removed?); nothing was "
                                   "written", hint="take the canary Service(s) out of the route by hand, then run "
                                                   "the step again")
        self.fields = rt.route_fields(self.live, self.body) if self.body is not None else []
        return self

    @property
    def changed(self):
        return bool(self.fields)

    def _put(self, body, dry_run):
        query = {"fieldManager": rt.ROUTE_MANAGER, "fieldValidation": "Strict", "dryRun": "All" if dry_run else None}
        return self.client.request("PUT", self.path, body=body, query=query)

    def predict(self):
        """Server-side dry-run of the write (the same predicate decides in check mode and in a real run)."""
        if not self.changed:
            return self
        try:
            predicted = self._put(self.body, dry_run=True)
        except SlipwayError as exc:
            said = exc.details.get("api_message") or exc.msg
            raise SlipwayError(f"{rt.label(self.route)}: the API server refused the canary's change to it in a "
                               f"server-side dry-run; nothing was written: {said}",
                               **{k: v for k, v in exc.details.items() if k in ("status", "reason", "causes", "hint")}
                               ) from None
        self.fields = rt.route_fields(self.live, predicted)
        self.diff = minimal_diff(rt.route_part(self.live), rt.route_part(predicted))
        return self

    def write(self):
        """Write against the route as it is now (resourceVersion-checked; a concurrent edit is read again)."""
        for attempt in range(3):
            self.assess()
            if not self.changed:
                return False
            try:
                written = self._put(self.body, dry_run=False)
                break
            except Conflict:
                if attempt == 2:
                    raise
        self.written = True
        if self.restore:
            self._hand_back(written)
        return True

    def _hand_back(self, written):
        for _attempt in range(3):
            trimmed = rt.without_manager((written.get("metadata") or {}).get("managedFields"))
            if trimmed is None:
                return
            # An empty list would leave managedFields as they are; [{}] is the API's way to clear them.
            body = {"metadata": {"resourceVersion": written["metadata"]["resourceVersion"],
                                 "managedFields": trimmed or [{}]}}
            try:
                self.client.request("PATCH", self.path, body=body, content_type=MERGE_PATCH)
                return
            except Conflict:
                written = self.client.get(self.path)

    def report(self, system):
        return {"system": system, "kind": rt.ROUTE_KIND, "name": self.route["name"],
                "namespace": self.route["namespace"], "action": "update", "fields": self.fields[:20]}


class RouteWrites:
    """The HTTPRoute writes of routed canaries beside a release step's systems: a companion of ``engine.Delivery``.

    ``steps``: ``{canary system: RouteStep}``. ``start`` writes the route once the canary system is applied and
    ready, so it never names a Service without pods; a restore (``promote``, ``abort``, a rollback that removes the
    canary) writes it before the canary's objects are pruned, so it never names a Service that is gone. A route's
    write counts as a change, so a re-weight that keeps the replicas is still a step. ``entries``: what the
    journal records on a started canary system (``{canary system: route entry}``).
    """

    def __init__(self, steps, entries=None):
        self.steps = dict(steps or {})
        self.entries = dict(entries or {})

    def plan(self):
        for step in self.steps.values():
            step.assess()

    def predict(self):
        for step in self.steps.values():
            step.predict()

    @property
    def changed(self):
        return any(step.changed for step in self.steps.values())

    def deliver_system(self, name, deliver, run):
        """``deliver`` (one system's rollout) with the write of its route before (a restore) or after it."""
        step = self.steps.get(name)
        if step is None:
            return deliver

        def write_route():
            run.lease.check()
            if step.write():
                run.say(f"{name}: updated {rt.label(step.route)}")

        def routed():
            if step.restore:
                write_route()
                deliver()
            else:
                deliver()
                write_route()
        return routed

    def add_to_record(self, record):
        for name, entry in self.entries.items():
            if name in record["systems"]:
                record["systems"][name]["route"] = dict(entry)

    def add_to_result(self, out, diff):
        for name, step in self.steps.items():
            if not step.changed:
                continue
            out["objects"].append(step.report(name))
            if diff and step.diff:
                where = rt.label(step.route)
                out["diff"].append({"before_header": f"{where} (live)", "after_header": f"{where} (desired)",
                                    "before": step.diff[0], "after": step.diff[1]})


def restore_steps(client, options, record, names):
    """``{canary system: RouteStep}`` that put back the routes of the routed canaries among ``names`` of ``record``.

    Each is assessed here, so a route that lost its saved rules is refused before anything is written.
    """
    steps = {}
    for name in names:
        entry = (record.get("systems") or {}).get(name) or {}
        running = entry.get("route")
        if not running or not name.endswith(SUFFIX):
            continue
        where = dict(running, services_namespace=entry.get("namespace"))
        steps[name] = RouteStep(client, options, route_resource(client, options), where,
                                desired=functools.partial(rt.restored_route, system=name[:-len(SUFFIX)]),
                                restore=True, canary_services=(running.get("services") or {}).values()).assess()
    return steps


def route_resource(client, options):
    found = Discovery(client).known(rt.ROUTE_API_VERSION, rt.ROUTE_KIND)
    if found is None:
        raise SlipwayError(f"context {options.context} does not serve {rt.ROUTE_API_VERSION} {rt.ROUTE_KIND} (no "
                           "Gateway API CRDs); nothing was written",
                           hint="install the Gateway API standard CRDs and a gateway that implements HTTPRoute, or "
                                "start the canary without route (a replica split behind the stable Service)")
    return found
