# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registry cleanup: delete the tagged manifests no release in any context's journal references.

The journals know which images are live: every release record lists its systems' images (by digest, as the engine
delivers them; a reference by tag keeps whatever that tag points at), and a canary step's record the canary's.
Every record the history keeps counts, not only the newest, so a rollback target is never deleted.

Only what the registry's API can list is considered: tagged manifests (``_catalog``, ``tags/list``). Deleting a
manifest removes its tags and leaves its blobs; ``registry garbage-collect`` frees them (and, with
``--delete-untagged``, untagged manifests), and must run while the registry is read-only or stopped, since a push
racing it can lose layers. A manifest younger than ``keep_younger_than`` (its image config's ``created``) is kept,
so that an image built for a delivery still running is not taken away before its release is recorded.
"""

from __future__ import annotations

import datetime
import json
import re
import urllib.parse

from ansible_collections.slipway.platform.plugins.module_utils._errors import Forbidden, NotFound, SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._release.report import journals

ACCEPT = ("application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, "
          "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
PAGE = 1000


def live_references(client, namespaces):
    """``(references, contexts)``: every image reference a release record of any context in ``namespaces`` lists,
    and the contexts read. A namespace that does not exist has no journal; one the identity may not read is an
    error (deleting on a partial view would delete live images)."""
    references, contexts = set(), set()
    for namespace in namespaces:
        try:
            found = journals(client, namespace)
        except NotFound:
            continue
        except Forbidden as exc:
            raise SlipwayError(f"cannot read the journals in {namespace}: {exc.msg}; the cleanup needs an identity "
                               "that may list ConfigMaps there, or leave the namespace out of journal_namespaces "
                               "if it holds no journal") from exc
        for context, records in found.items():
            contexts.add(context)
            for record in records:
                references.update(record_images(record))
    return references, sorted(contexts)


def record_images(record):
    """The image references one release record lists: its systems' and a canary step's."""
    found = set()
    for entry in (record.get("systems") or {}).values():
        found.update(((entry or {}).get("images") or {}).values())
    action = record.get("action") or {}
    found.update((action.get("images") or {}).values() if isinstance(action.get("images"), dict) else [])
    return {reference for reference in found if isinstance(reference, str)}


def split_reference(reference):
    """``host[:port]/repository@sha256:...`` or ``...:tag`` -> ``(host, repository, digest or None, tag or None)``."""
    name, _at, digest = reference.partition("@")
    host, _slash, path = name.partition("/")
    tag = None
    if ":" in path.rsplit("/", 1)[-1]:
        path, tag = path.rsplit(":", 1)
    return host, path, digest or None, tag


def live_in_registry(references, names):
    """``({repository: digests}, {repository: tags})`` of the references that name this registry (by any of
    ``names``: the way releases spell it may differ from the address the cleanup reaches it at)."""
    digests, tags = {}, {}
    for reference in references:
        host, repository, digest, tag = split_reference(reference)
        if host not in names:
            continue
        if digest:
            digests.setdefault(repository, set()).add(digest)
        elif tag:
            tags.setdefault(repository, set()).add(tag)
    return digests, tags


class RegistryInventory:
    """What the registry lists, through ``_image.registry.Registry`` (its authentication and transport)."""

    def __init__(self, registry):
        self.registry = registry

    def _json(self, path, scope=""):
        response = self.registry.request("GET", path, headers={"Accept": "application/json"}, scope=scope)
        if response.status == 404:
            return None, response
        if response.status != 200:
            raise SlipwayError(f"registry {self.registry.registry} answered HTTP {response.status} to GET {path}",
                               registry=self.registry.registry, status=response.status)
        return json.loads(response.body or b"{}"), response

    def repositories(self):
        found, path = [], f"/v2/_catalog?n={PAGE}"
        while path:
            body, response = self._json(path, scope="registry:catalog:*")
            found.extend((body or {}).get("repositories") or [])
            link = re.match(r"<([^>]+)>", response.headers.get("Link") or "")
            path = link.group(1) if link else None
        return found

    def tags(self, repository):
        body, _response = self._json(f"/v2/{repository}/tags/list", scope=f"repository:{repository}:pull")
        return sorted((body or {}).get("tags") or [])

    def manifest(self, repository, reference):
        """``(digest, manifest body)`` or ``(None, None)`` when the registry has no such manifest."""
        response = self.registry.request("GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT},
                                         scope=f"repository:{repository}:pull")
        if response.status == 404:
            return None, None
        if response.status != 200:
            raise SlipwayError(f"registry {self.registry.registry} answered HTTP {response.status} to the manifest "
                               f"{repository}:{reference}", registry=self.registry.registry, status=response.status)
        return response.headers.get("Docker-Content-Digest"), json.loads(response.body)

    def created(self, repository, manifest):
        """When the image was built (its config's ``created``), or None when the manifest has no image config."""
        config = (manifest.get("config") or {}).get("digest")
        if not config:
            return None
        body, _response = self._json(f"/v2/{repository}/blobs/{config}", scope=f"repository:{repository}:pull")
        stamp = (body or {}).get("created")
        if not stamp:
            return None
        try:
            created = datetime.datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", stamp.replace("Z", "+00:00")))
        except ValueError:
            return None  # not a time this code reads: the image is judged by its references alone
        return created if created.tzinfo else created.replace(tzinfo=datetime.timezone.utc)

    def delete(self, repository, digest):
        response = self.registry.request("DELETE", f"/v2/{repository}/manifests/{digest}",
                                         scope=f"repository:{repository}:delete,pull,push")
        if response.status == 405:
            raise SlipwayError(f"registry {self.registry.registry} does not allow deletes: set storage.delete.enabled "
                               "in its configuration", registry=self.registry.registry)
        if response.status not in (202, 404):
            raise SlipwayError(f"registry {self.registry.registry} answered HTTP {response.status} deleting "
                               f"{repository}@{digest}", registry=self.registry.registry, status=response.status)


def wanted(repository, prefixes):
    return not prefixes or any(repository == p or repository.startswith(p.rstrip("/") + "/") for p in prefixes)


def cleanup_plan(inventory, live_digests, live_tags, prefixes=(), keep_younger_than=0, now=None):
    """``(deletions, kept)``: per tagged manifest of the wanted repositories, whether it goes (``deletions``: its
    repository, digest and tags) or stays (``kept``: and why)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    deletions, kept = [], []
    for repository in sorted(r for r in inventory.repositories() if wanted(r, prefixes)):
        by_digest, bodies = {}, {}
        for tag in inventory.tags(repository):
            digest, body = inventory.manifest(repository, tag)
            if digest:
                by_digest.setdefault(digest, []).append(tag)
                bodies[digest] = body
        for digest, tags in sorted(by_digest.items()):
            entry = {"repository": repository, "digest": digest, "tags": tags}
            if digest in live_digests.get(repository, set()):
                kept.append(dict(entry, reason="a release references it by digest"))
            elif set(tags) & live_tags.get(repository, set()):
                kept.append(dict(entry, reason="a release references one of its tags"))
            elif keep_younger_than and _younger(inventory.created(repository, bodies[digest]), now,
                                                keep_younger_than):
                kept.append(dict(entry, reason=f"built less than {keep_younger_than} minutes ago"))
            else:
                deletions.append(entry)
    return deletions, kept


def _younger(created, now, minutes):
    return created is not None and (now - created).total_seconds() < minutes * 60


def registry_cleanup(client, registry, check_mode, names=(), repositories=(), keep_younger_than=60,
                     journal_namespaces=("slipway-system", "slipway-showrooms")):
    """Delete (or, in check mode, list) the tagged manifests of ``registry`` (an ``_image.registry.Registry``)
    that no release references. Returns the module's result."""
    references, contexts = live_references(client, journal_namespaces)
    live_digests, live_tags = live_in_registry(references, set(names) | {registry.registry})
    inventory = RegistryInventory(registry)
    deletions, kept = cleanup_plan(inventory, live_digests, live_tags, repositories, keep_younger_than)
    if not check_mode:
        for entry in deletions:
            if not DIGEST.match(entry["digest"]):
                raise SlipwayError(f"registry {registry.registry} gave {entry['digest']!r} as the digest of "
                                   f"{entry['repository']}; refusing to delete by it")
            inventory.delete(urllib.parse.quote(entry["repository"], safe="/"), entry["digest"])
    return {"changed": bool(deletions), "deleted": deletions, "kept": kept, "contexts": contexts,
            "live_references": len(references)}
