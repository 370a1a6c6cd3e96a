# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release report: collect (every journal the connection can read, the releases' stored objects, the digest
key, the pipelines' result files) -> model (``report_model``) -> render (``report_render``) -> write.

Every context with a journal in the namespace is shown - showrooms are contexts too - plus the contexts asked for
by name, even when they have recorded nothing yet. Reading only: the digest key is read, never created.
"""

from __future__ import annotations

import glob
import json
import os

from ansible_collections.slipway.platform.plugins.module_utils._errors import Forbidden, NotFound, SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.client import api_path
from ansible_collections.slipway.platform.plugins.module_utils._reports import write_atomic
from ansible_collections.slipway.platform.plugins.module_utils._release.digest_key import hmac_key
from ansible_collections.slipway.platform.plugins.module_utils._release.journal import (
    CONTEXT_LABEL,
    MANAGED_BY,
    NAMESPACE,
    parse_record,
)
from ansible_collections.slipway.platform.plugins.module_utils._release.report_model import (
    context_model,
    report_model,
)
from ansible_collections.slipway.platform.plugins.module_utils._release.report_render import render
from ansible_collections.slipway.platform.plugins.module_utils._release.snapshot import SnapshotReader

RESULT_FILES = "result-*.json"
SHOWROOM_NAMESPACE = "slipway-showrooms"  # where slipway.platform.showroom keeps the showrooms' journals


def journals(client, namespace):
    """``{context: [records, oldest first]}`` for every context that recorded a release in ``namespace``."""
    body = client.get(api_path("v1", "configmaps", namespace),
                      query={"labelSelector": f"{MANAGED_BY}=slipway,{CONTEXT_LABEL}"})
    found = {}
    for item in body.get("items") or []:
        context = ((item.get("metadata") or {}).get("labels") or {}).get(CONTEXT_LABEL)
        found.setdefault(context, []).append(parse_record(item))
    return {context: sorted(records, key=lambda r: r["revision"]) for context, records in found.items()}


def stored_objects(client, context, namespace, records):
    """``{revision: {system: [object bodies]}}``, or the reason a release's objects could not be read."""
    reader = SnapshotReader(client, context, namespace)
    found = {}
    for record in records:
        try:
            systems = reader.release_objects(record)
        except SlipwayError as exc:  # recorded before snapshots, pruned, or not readable by this identity
            found[record["revision"]] = exc.msg
        else:
            found[record["revision"]] = {name: entry.get("objects") or [] for name, entry in systems.items()}
    return found


def pipeline_results(folder):
    """``{context: [result]}`` from the result files a folder holds (``reports/result-<context>.json``)."""
    found = {}
    for path in sorted(glob.glob(os.path.join(folder, RESULT_FILES))):
        try:
            with open(path, encoding="utf-8") as handle:
                result = json.load(handle)
        except (OSError, ValueError):
            continue  # a file being written, or not a result: the journal is the record, this is a supplement
        if isinstance(result, dict) and result.get("context"):
            found.setdefault(result["context"], []).append(dict(result, file=os.path.basename(path)))
    return found


def digest_key(client, namespace):
    """The cluster's digest key, so that a Secret value shows as the same hash as in a delivery's diff; an identity
    that may not read it gets a key of this run (values stay hidden, and a change still shows as one)."""
    try:
        return hmac_key(client, namespace, create=False)
    except SlipwayError:
        return os.urandom(32)


def collect(client, namespaces=(NAMESPACE, SHOWROOM_NAMESPACE), contexts=(), all_contexts=True, history=20,
            manifests=True, results_dir=None, title="Slipway releases"):
    """The report's model, read through ``client`` from the journals in ``namespaces``; one the identity cannot
    read (or that does not exist) is named on the page with the reason, not a failure."""
    if history < 0:
        raise SlipwayError(f"history must be 0 (every release) or a positive number of releases, not {history}")
    by_context, unread = {}, []
    for namespace in namespaces:
        try:
            found = journals(client, namespace)
        except (Forbidden, NotFound) as exc:
            unread.append({"namespace": namespace, "reason": exc.msg})
            continue
        by_context.update({context: (namespace, records) for context, records in found.items()})
    results = pipeline_results(results_dir) if results_dir else {}
    shown = set(contexts) | (set(by_context) | set(results) if all_contexts else set())
    keys = {}
    models = []
    for context in sorted(shown):
        namespace, records = by_context.get(context) or (None, [])
        kept = records[-history:] if history else records
        objects, key = None, b""
        if manifests and kept:
            if namespace not in keys:
                keys[namespace] = digest_key(client, namespace)
            key = keys[namespace]
            objects = stored_objects(client, context, namespace, kept)
        models.append(context_model(context, kept, objects, key, results.get(context) or (),
                                    older_not_shown=len(records) - len(kept), journal=namespace))
    return report_model(models, title=title, unread=unread)


def write(dest, html, check_mode=False):
    """``(changed, before)``: whether ``dest`` gets (or, in check mode, would get) new content, and its old text."""
    try:
        with open(dest, encoding="utf-8") as handle:
            before = handle.read()
    except FileNotFoundError:
        before = None
    except OSError as exc:
        raise SlipwayError(f"cannot read the existing report {dest}: {exc.strerror}") from None
    changed = before != html
    if changed and not check_mode:
        try:
            write_atomic(dest, html)
        except OSError as exc:
            raise SlipwayError(f"cannot write the report to {dest}: {exc.strerror}; choose a writable path "
                               "(the module's dest, the playbook's slipway_report_path)") from None
    return changed, before


def summary(model):
    """What the module returns about the page: per context and showroom, its latest release and failures."""
    return [{"name": c["name"], "showroom": c["showroom"],
             "revision": c["latest"]["revision"] if c["latest"] else None,
             "outcome": c["latest"]["outcome"] if c["latest"] else None,
             "releases": len(c["history"]), "failures": len(c["failures"])}
            for c in model["contexts"] + model["showrooms"]]


def report(client, dest, check_mode=False, **options):
    """Collect, render and write (or, in check mode, only render) the page: the module's result."""
    model = collect(client, **options)
    html = render(model)
    changed, before = write(dest, html, check_mode)
    return {"changed": changed, "dest": dest, "size": len(html.encode("utf-8")), "contexts": summary(model),
            "failures": len(model["failures"]),
            "diff": {"before": before or "", "after": html, "before_header": dest, "after_header": dest}}
