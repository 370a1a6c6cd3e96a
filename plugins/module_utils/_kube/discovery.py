# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""API discovery, once per run: each group/version is read at most once (again only after a CRD lands)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError


@dataclass(frozen=True)
class Resource:
    group_version: str
    kind: str
    name: str
    namespaced: bool
    verbs: tuple = ()

    @property
    def group(self):
        return self.group_version.rpartition("/")[0] if "/" in self.group_version else ""


def parse_resource_list(group_version, body):
    """``{kind: Resource}`` from an APIResourceList body (subresources are skipped)."""
    found = {}
    for entry in (body or {}).get("resources") or []:
        if "/" in entry.get("name", ""):
            continue
        found.setdefault(entry["kind"], Resource(group_version, entry["kind"], entry["name"],
                                                 bool(entry.get("namespaced")), tuple(entry.get("verbs") or ())))
    return found


class Discovery:
    """Resolves ``apiVersion``/``kind`` to a :class:`Resource`; thread-safe, cached per group/version."""

    def __init__(self, client):
        self.client = client
        self._lock = threading.Lock()
        self._cache = {}
        self.reads = 0

    def _load(self, group_version, refresh=False):
        with self._lock:
            if group_version in self._cache and not refresh:
                return self._cache[group_version]
        path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        body = self.client.get(path, ok_missing=True)
        kinds = parse_resource_list(group_version, body) if body is not None else None
        with self._lock:
            self.reads += 1
            self._cache[group_version] = kinds
        return kinds

    def known(self, api_version, kind, refresh=False):
        """The :class:`Resource`, or ``None`` when the server does not serve that kind."""
        kinds = self._load(api_version, refresh=refresh)
        return (kinds or {}).get(kind)

    def resource(self, api_version, kind, where=""):
        found = self.known(api_version, kind)
        if found is None:
            kinds = self._load(api_version)
            if kinds is None:
                msg = f"the API server does not serve {api_version!r}"
            else:
                msg = f"{api_version} has no kind {kind!r} (it has: {', '.join(sorted(kinds)) or 'none'})"
            raise SlipwayError(f"{where}: unknown kind {kind!r}: {msg}",
                               hint="check apiVersion/kind, or install the CRD first")
        return found
