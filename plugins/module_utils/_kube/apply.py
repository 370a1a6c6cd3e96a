# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan, server-side dry-run, server-side apply and prune of desired objects.

The same predicate decides in check mode and in a real run: an object is left alone when the desired
object (normalised) is contained in the live one, carries the same keyed digest and holds no field added by hand
that the manifests do not declare; otherwise a server-side dry-run apply says exactly what would change, and only
then is the object written.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from ansible_collections.slipway.platform.plugins.module_utils._errors import Conflict, NotFound, SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import APPLY_PATCH, object_path
from ansible_collections.slipway.platform.plugins.module_utils._kube.fields import (
    hand_added,
    render,
    topmost,
    transferred,
)
from ansible_collections.slipway.platform.plugins.module_utils._kube.normalize import (
    changed_paths,
    keyed_digest,
    minimal_diff,
    redact_secret,
    remove_field,
    secret_to_data,
    server_fields_hidden,
    strip_server_fields,
    subset_mismatches,
)
from ansible_collections.slipway.platform.plugins.module_utils._kube.plain_copy import plain_copy
from ansible_collections.slipway.platform.plugins.module_utils._kube.objects import (
    CONTEXT_LABEL,
    DIGEST_ANNOTATION,
    FIELD_MANAGER,
    MANAGED_BY,
    MANAGER,
    SYSTEM_LABEL,
    object_key,
    object_label,
)

_CONFLICT = re.compile(r'conflict with "([^"]+)"')
JSON_PATCH = "application/json-patch+json"
# Field manager name prefixes whose conflicting edits are hand edits (drift) that the next delivery corrects.
DEFAULT_RECLAIM = ("kubectl", "k9s", "Mozilla", "OpenLens")
# Who is a person editing by hand, by field manager name (kubectl names its manager after the command; a tool that
# names none gets the first word of its user agent), and whether the fields such a manager ADDED that the manifests
# do not declare are removed by the next delivery. A declared field that a manager matching reclaim_managers changed
# is taken back either way; this table decides the undeclared ones, for the managers reclaim_managers also matches
# (reclaim_managers: [] turns both off). A name missing here (controllers, operators, unknown tools) keeps its fields.
HAND_EDITS = {
    "kubectl": True,  # kubectl apply --server-side (and kubectl releases that named no manager)
    "kubectl-client-side-apply": True,  # kubectl apply
    "kubectl-edit": True,
    "kubectl-patch": True,
    "kubectl-set": True,  # kubectl set env | image | resources | ...
    "kubectl-label": True,
    "kubectl-annotate": True,
    "kubectl-replace": True,
    "k9s": True,
    "Mozilla": True,  # a web console in a browser
    "OpenLens": True,
    # a person too, but what they leave is kept:
    "kubectl-scale": False,  # replicas the manifests leave out belong to an autoscaler; removed, they reset to 1
    "kubectl-rollout": False,  # `rollout restart` stamps the pod template; removing the stamp restarts the pods again
    "kubectl-create": False,  # an object made by hand, then delivered: its creator owns every default the server set
}


def removes_undeclared(reclaim_managers):
    """The predicate: does a delivery remove the undeclared fields this field manager added (see HAND_EDITS)?"""
    prefixes = tuple(reclaim_managers or ())
    return lambda manager: bool(HAND_EDITS.get(manager)) and manager.startswith(prefixes)


@dataclass
class Plan:
    desired: object  # objects.Desired
    body: dict  # what is applied: stringData folded, digest annotated
    digest: str
    live: dict | None = None
    action: str = "pending"  # create | update | unchanged | failed
    mismatches: list = field(default_factory=list)
    drift: list = field(default_factory=list)
    respected: list = field(default_factory=list)  # [{"field", "manager"}] left to their owner
    reclaimed: list = field(default_factory=list)  # [{"field", "manager"}] taken back from hand edits
    hand_added: dict = field(default_factory=dict)  # {fieldsV1 path: manager}: undeclared hand edits to remove
    force: bool = False
    predicted: dict | None = None  # dry-run result
    result: dict | None = None  # real apply result
    fields: list = field(default_factory=list)  # changed paths (before -> after)
    diff: tuple | None = None
    deferred: bool = False  # dry-run waits for a namespace/CRD this delivery creates

    @property
    def changed(self):
        return self.action in ("create", "update")

    def report(self):
        out = {"system": self.desired.system, "kind": self.desired.kind, "name": self.desired.name,
               "namespace": self.desired.namespace, "action": self.action}
        if self.fields:
            out["fields"] = self.fields[:20]
        if self.drift:
            out["drift"] = self.drift[:20]
        if self.respected:
            out["conflicts_respected"] = self.respected
        return dict(out, **self._hand_edits())

    def _hand_edits(self):
        out = {}
        if self.reclaimed:
            out["conflicts_reclaimed"] = self.reclaimed
        if self.hand_added:
            out["hand_edits_removed"] = self.hand_edits_removed
        return out

    @property
    def hand_edits_removed(self):
        """``[{"field", "manager"}]``: the undeclared fields added by hand that this plan removes (items, not parts)."""
        return [{"field": render(path), "manager": self.hand_added[path]} for path in topmost(self.hand_added)]

    def corrected(self):
        """What the write of this plan corrected of hand edits, for the journal (``None`` when nothing)."""
        if not (self.drift or self.reclaimed or self.hand_added):
            return None
        return dict({"object": self.desired.label, "drift": self.drift[:20]}, **self._hand_edits())


def prepare(desired, key):
    """The body to apply and its keyed digest (secret values only ever enter the HMAC)."""
    body = secret_to_data(plain_copy(desired.body))
    metadata = body["metadata"]
    annotations = dict(metadata.get("annotations") or {})
    annotations.pop(DIGEST_ANNOTATION, None)
    metadata["annotations"] = annotations
    digest = keyed_digest(key, body)
    annotations[DIGEST_ANNOTATION] = digest
    return Plan(desired=desired, body=body, digest=digest)


def comparable(obj):
    """A live object or dry-run result reduced to what a user can change."""
    return strip_server_fields(obj) if obj else obj


def assess(plan, reclaim_managers=DEFAULT_RECLAIM):
    """The fast predicate: ``unchanged`` when desired ⊆ live, the digest matches and no undeclared field was added
    by hand (as far as the live object's own field ownership tells), else ``update``/``create``."""
    if plan.live is None:
        plan.action = "create"
        return plan
    plan.mismatches = subset_mismatches(plan.body, server_fields_hidden(plan.live))
    plan.hand_added = hand_added((plan.live.get("metadata") or {}).get("managedFields"),
                                 removes_undeclared(reclaim_managers), FIELD_MANAGER)
    digest_path = ".metadata.annotations." + DIGEST_ANNOTATION
    live_digest = ((plan.live.get("metadata") or {}).get("annotations") or {}).get(DIGEST_ANNOTATION)
    if not plan.mismatches and not plan.hand_added:
        plan.action = "unchanged"
    else:
        plan.action = "update"
        if live_digest == plan.digest:
            # Slipway applied exactly this manifest before, yet the object differs: someone edited it.
            plan.drift = [p for p in plan.mismatches if p != digest_path]
    return plan


class Applier:
    """Applies plans with one client and one discovery; safe to call from several threads."""

    def __init__(self, client, hmac_key, force_conflicts=False, reclaim_managers=DEFAULT_RECLAIM):
        self.client = client
        self.key = hmac_key
        self.force_conflicts = force_conflicts
        self.reclaim = tuple(reclaim_managers or ())
        self.removable = removes_undeclared(self.reclaim)

    # ---------------------------------------------------------------- reading

    def list_live(self, resource, namespace, selector=None):
        """``{name: object}`` of one collection (a single LIST)."""
        body = self.client.get(object_path(resource, namespace), query={"labelSelector": selector},
                               ok_missing=True) or {}
        return {item["metadata"]["name"]: _with_kind(item, resource) for item in body.get("items") or []}

    def get_live(self, resource, namespace, name):
        found = self.client.get(object_path(resource, namespace, name), ok_missing=True)
        return _with_kind(found, resource) if found else None

    # ---------------------------------------------------------------- writing

    def _patch(self, plan, dry_run):
        desired = plan.desired
        query = {"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict",
                 "force": "true" if (plan.force or self.force_conflicts) else None,
                 "dryRun": "All" if dry_run else None}
        path = object_path(desired.resource, desired.namespace, desired.name)
        return self.client.request("PATCH", path, body=plan.body, query=query, content_type=APPLY_PATCH)

    def server_apply(self, plan, dry_run):
        """One server-side apply; field conflicts are settled (hand edits reclaimed, controllers respected)."""
        for _attempt in range(4):
            try:
                return _with_kind(self._patch(plan, dry_run), plan.desired.resource)
            except SlipwayError as exc:
                conflicts = _conflicts(exc) if isinstance(exc, Conflict) else []
                if not conflicts:
                    raise _explain(exc, plan.desired) from None
                self._settle(plan, conflicts)
        raise SlipwayError(f"{plan.desired.where}: field ownership conflicts did not settle",
                           hint="deliver with force_conflicts: true to take every field")

    def _settle(self, plan, conflicts):
        for conflict in conflicts:
            manager = conflict["manager"]
            if manager.startswith(self.reclaim):
                plan.force = True
                if conflict not in plan.reclaimed:
                    plan.reclaimed.append(conflict)
            else:
                plan.body = copy.deepcopy(plan.body)
                if not remove_field(plan.body, conflict["field"]):
                    raise SlipwayError(f"{plan.desired.where}: field {conflict['field']} is owned by {manager!r} "
                                       "and cannot be left to it", hint="deliver with force_conflicts: true")
                if conflict not in plan.respected:
                    plan.respected.append(conflict)

    def predict(self, plan):
        """Server-side dry-run; settles the action (``unchanged`` when the server would change nothing)."""
        if plan.action == "unchanged":
            return plan
        plan.predicted = self.server_apply(plan, dry_run=True)
        self._find_hand_edits(plan, plan.predicted)
        self._settle_action(plan, self._without_hand_edits(plan, plan.predicted))
        return plan

    def _find_hand_edits(self, plan, predicted):
        """The undeclared hand-added fields, from the field ownership the dry-run predicts (the delivery's Apply
        entry there is what these manifests declare; conflicts reclaimed from hand edits are already its own)."""
        plan.hand_added = {} if plan.live is None else hand_added(
            (predicted.get("metadata") or {}).get("managedFields"), self.removable, FIELD_MANAGER)
        if plan.hand_added and plan.drift:
            # declared fields changed by hand, seen past the added ones (a sidecar makes the containers differ)
            plan.drift = subset_mismatches(plan.body, server_fields_hidden(self._without_hand_edits(plan, plan.live)))
        plan.drift += [edit["field"] for edit in plan.hand_edits_removed if edit["field"] not in plan.drift]

    @staticmethod
    def _without_hand_edits(plan, predicted):
        """The dry-run result as the apply after the ownership transfer leaves it: the hand-added fields gone."""
        if not plan.hand_added:
            return predicted
        after = copy.deepcopy(predicted)
        for edit in plan.hand_edits_removed:
            remove_field(after, edit["field"])
        return after

    def _settle_action(self, plan, outcome):
        before, after = comparable(plan.live), comparable(outcome)
        if plan.live is not None:
            plan.fields = changed_paths(before, after)
            if not plan.fields and not plan.hand_added:
                plan.action, plan.drift = "unchanged", []
                return
            # a removed field that the server sets back to its default changes no value, but it was written
            plan.fields += [e["field"] for e in plan.hand_edits_removed if e["field"] not in plan.fields]
            plan.action = "update"
        else:
            plan.action = "create"
            plan.fields = []
        before_r = redact_secret(before, self.key) if before else {}
        after_r = redact_secret(after, self.key)
        plan.diff = minimal_diff(before_r, after_r) if before else ({}, after_r)

    def apply(self, plan):
        """The real write (only for plans whose prediction is a change)."""
        if plan.hand_added:
            self._take_hand_edits(plan)
        plan.result = self.server_apply(plan, dry_run=False)
        self._settle_action(plan, plan.result)
        return plan

    def _take_hand_edits(self, plan):
        """Move the hand-added fields into the delivery's Apply entry, so that the apply which follows removes them.

        A JSON patch of ``managedFields`` conditional on the ``resourceVersion`` read (the documented ownership
        transfer); an object changed meanwhile is read again and only what is still added by hand is taken.
        """
        desired, live = plan.desired, plan.live
        path = object_path(desired.resource, desired.namespace, desired.name)
        for _attempt in range(3):
            if live is None:
                return  # deleted meanwhile: the apply creates it without them
            managed = live["metadata"].get("managedFields")
            still = set(plan.hand_added) & set(hand_added(managed, self.removable, FIELD_MANAGER))
            if not still:
                return
            ops = [{"op": "replace", "path": "/metadata/managedFields",
                    "value": transferred(managed, still, FIELD_MANAGER, plan.body.get("apiVersion"))},
                   {"op": "replace", "path": "/metadata/resourceVersion", "value": live["metadata"]["resourceVersion"]}]
            try:
                self.client.request("PATCH", path, body=ops, query={"fieldManager": FIELD_MANAGER},
                                    content_type=JSON_PATCH)
                return
            except Conflict:
                pass  # changed since it was read: read it again
            except SlipwayError as exc:
                raise _explain(exc, desired) from None
            live = self.get_live(desired.resource, desired.namespace, desired.name)
        raise SlipwayError(f"{desired.where}: the object kept changing while its hand edits were taken back",
                           hint="deliver again once nobody else is editing it")

    def delete(self, resource, live, dry_run):
        meta = live["metadata"]
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
                "preconditions": {"uid": meta.get("uid")}}
        path = object_path(resource, meta.get("namespace"), meta["name"])
        try:
            self.client.request("DELETE", path, body=body, query={"dryRun": "All" if dry_run else None})
        except (NotFound, Conflict):
            return False  # gone already, or replaced by another object of the same name
        return True


def owned_by(live, system, context):
    labels = (live.get("metadata") or {}).get("labels") or {}
    return (labels.get(MANAGED_BY) == MANAGER and labels.get(SYSTEM_LABEL) == system
            and labels.get(CONTEXT_LABEL) == context)


def live_key(resource, live):
    meta = live["metadata"]
    return object_key(resource.group, resource.kind, meta.get("namespace"), meta["name"])


def live_label(resource, live):
    return object_label(resource.kind, live["metadata"].get("namespace"), live["metadata"]["name"])


def _with_kind(obj, resource):
    if obj is not None:
        obj.setdefault("apiVersion", resource.group_version)
        obj.setdefault("kind", resource.kind)
    return obj


def _conflicts(exc):
    found = []
    for cause in exc.details.get("causes") or []:
        match = _CONFLICT.search(cause.get("message") or "")
        if cause.get("reason") == "FieldManagerConflict" and match:
            found.append({"field": cause.get("field") or "", "manager": match.group(1)})
    return found


def _explain(exc, desired):
    """An API error re-worded with the system, file and object, and the fields the server named."""
    causes = exc.details.get("causes") or []
    fields = [c.get("field") for c in causes if c.get("field")]
    immutable = [c.get("field") for c in causes if "immutable" in (c.get("message") or "")]
    api_message = exc.details.get("api_message") or exc.msg
    if immutable:
        msg = (f"{desired.where}: cannot change immutable field(s) {', '.join(immutable)}; "
               f"the server said: {api_message}")
        hint = "delete the object (kubectl delete) and deliver again, or give it a new name"
    else:
        msg = f"{desired.where}: the API server rejected it: {api_message}"
        hint = exc.details.get("hint") or "fix the manifest (field names and types follow the API schema)"
    return SlipwayError(msg, status=exc.details.get("status"), reason=exc.details.get("reason"),
                        fields=fields, hint=hint, object=desired.label, system=desired.system)
