# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Systems rendered only when their inputs changed (issue 18: one change among 1,000 systems).

The action plugin can hand the engine a system without documents and with ``inputs``: a SHA-256 of everything its
templates can see (the files, its ``slipway.yml``, images, values, the task variables they name, its generated
network policies). The journal keeps that digest keyed by the cluster's digest key, as it keeps object digests: a
plain hash of inputs that include vault values would let whoever reads the journal test guesses against it.

When the latest release recorded the same keyed inputs for a system and its stored objects can be read, those
objects are its documents: what rendering the same inputs gave, as that release applied them (rollbacks replay the
same snapshots). Otherwise the plugin's ``render(name)`` renders it now. Either way the engine then plans against
the live objects as always, so a hand edit is still found and undone.
"""

from __future__ import annotations

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._kube.normalize import keyed_digest
from ansible_collections.slipway.platform.plugins.module_utils._release.snapshot import stored_index

INPUTS_FIELD = "inputs"
STORED_SOURCE = "stored objects of release {revision}"


def is_deferred(raw):
    return raw.get("documents") is None and isinstance(raw.get(INPUTS_FIELD), str)


def recorded_inputs(key, inputs):
    """What a record keeps of a system's inputs digest (None when the system came without one)."""
    return keyed_digest(key, inputs) if isinstance(inputs, str) and inputs else None


class DeferredRendering:
    """``render(name)`` -> the documents of a system rendered now (raises SlipwayError); ``resolved(raw_systems)``
    is told of every system once it has documents (the plugin masks their Secret values in its output)."""

    def __init__(self, render, resolved=None):
        self.render = render
        self.resolved = resolved or (lambda raw_systems: None)
        self.reused = []
        self.rendered = []

    def resolve(self, raw_systems, last, key, reader):
        """``raw_systems`` with every deferred system's documents filled, reused or rendered."""
        recorded = (last or {}).get("systems") or {}
        stored = stored_index(last)
        out, filled = [], []
        for raw in raw_systems:
            if not is_deferred(raw):
                out.append(raw)
                continue
            name = raw["name"]
            kept = (recorded.get(name) or {}).get(INPUTS_FIELD)
            reused = None
            if name in stored and kept and kept == recorded_inputs(key, raw[INPUTS_FIELD]):
                reused = self._stored(reader, stored[name], name)
            if reused is not None:
                self.reused.append(name)
                system = dict(raw, **reused)
            else:
                self.rendered.append(name)
                system = dict(raw, documents=self.render(name))
            out.append(system)
            filled.append(system)
        self.resolved(filled)
        return out

    @staticmethod
    def _stored(reader, revision, name):
        """``{documents, files}`` of ``name`` as release ``revision`` stored them; None when they cannot be read (the
        system is rendered instead: a pruned or damaged snapshot costs time, never correctness)."""
        try:
            entry = reader.revision_objects(revision).get(name)
        except SlipwayError:
            return None
        if not entry or not isinstance(entry.get("objects"), list):
            return None
        source = STORED_SOURCE.format(revision=revision)
        # parsed for this run alone: validation may take the bodies as they are instead of copying 3,000 of them
        return {"documents": [{"file": source, "index": index, "content": body}
                              for index, body in enumerate(entry["objects"])],
                "files": list(entry.get("files") or []), "documents_owned": True}
