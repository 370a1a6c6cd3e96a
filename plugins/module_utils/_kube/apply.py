# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan, server-side dry-run, server-side apply and prune of desired objects.

The same predicate decides in check mode and in a real run: an object is left alone when the desired
object (normalised) is contained in the live one and carries the same keyed digest; otherwise a server-side
dry-run apply says exactly what would change, and only then is the object written.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import APPLY_PATCH, object_path
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
# Field managers whose conflicting edits are hand edits (drift) that the next delivery corrects.
DEFAULT_RECLAIM = ("kubectl", "k9s", "Mozilla", "OpenLens")


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
        if self.reclaimed:
            out["conflicts_reclaimed"] = self.reclaimed
        return out


def prepare(desired, key):
    """The body to apply and its keyed digest (secret values only ever enter the HMAC)."""
    body = secret_to_data(copy.deepcopy(desired.body))
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


def assess(plan):
    """The fast predicate: ``unchanged`` when desired ⊆ live and the digest matches, else ``update``/``create``."""
    if plan.live is None:
        plan.action = "create"
        return plan
    plan.mismatches = subset_mismatches(plan.body, server_fields_hidden(plan.live))
    digest_path = ".metadata.annotations." + DIGEST_ANNOTATION
    live_digest = ((plan.live.get("metadata") or {}).get("annotations") or {}).get(DIGEST_ANNOTATION)
    if not plan.mismatches:
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
                conflicts = _conflicts(exc)
                if exc.details.get("status") != 409 or not conflicts:
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
        self._settle_action(plan, plan.predicted)
        return plan

    def _settle_action(self, plan, outcome):
        before, after = comparable(plan.live), comparable(outcome)
        if plan.live is not None:
            plan.fields = changed_paths(before, after)
            if not plan.fields:
                plan.action, plan.drift = "unchanged", []
                return
            plan.action = "update"
        else:
            plan.action = "create"
            plan.fields = []
        before_r = redact_secret(before, self.key) if before else {}
        after_r = redact_secret(after, self.key)
        plan.diff = minimal_diff(before_r, after_r) if before else ({}, after_r)

    def apply(self, plan):
        """The real write (only for plans whose prediction is a change)."""
        plan.result = self.server_apply(plan, dry_run=False)
        self._settle_action(plan, plan.result)
        return plan

    def delete(self, resource, live, dry_run):
        meta = live["metadata"]
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
                "preconditions": {"uid": meta.get("uid")}}
        path = object_path(resource, meta.get("namespace"), meta["name"])
        try:
            self.client.request("DELETE", path, body=body, query={"dryRun": "All" if dry_run else None})
        except SlipwayError as exc:
            if exc.details.get("status") in (404, 409):
                return False  # gone already, or replaced by another object of the same name
            raise
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
