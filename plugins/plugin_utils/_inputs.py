# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a system's templates can see, as one SHA-256: the engine reuses its last release's objects when it has not
changed (``module_utils/_release/deferred.py``), so that one change among 1,000 systems renders one system.

The digest covers the system's manifest files (names and texts), its ``slipway.yml``, images, values, context,
every system's namespace, its generated network policies, the versions of ansible-core and of the rendering, and the
resolved value of every task variable its templates name (``jinja2.meta``). A template whose output may change with
nothing of that changing is never reused: ``lookup``/``query``/``now``, ``vars``/``hostvars`` (variables named at
run time), ``{% include %}``/``{% import %}``/``{% extends %}``, ``#jinja2:`` overrides and random filters. A
variable whose value changes every run (``omit``) simply makes its systems render every time.
"""

from __future__ import annotations

import hashlib
import json
import os

from ansible.release import __version__ as ANSIBLE_VERSION
from jinja2 import meta, nodes
from jinja2.exceptions import TemplateError

from ansible_collections.slipway.platform.plugins.plugin_utils._render import TEMPLATE_SUFFIXES, manifest_files

RENDERING_FORMAT = 1  # raise when rendering changes what the same inputs give (a release reused stale objects)
PER_SYSTEM = frozenset({"system", "images", "context", "values", "namespaces"})  # hashed from the run, not task_vars
RUN_TIME_NAMES = frozenset({"lookup", "query", "q", "now", "vars", "hostvars", "undef"})
RANDOM_FILTERS = frozenset({"random", "shuffle", "random_mac", "password_hash", "to_uuid4"})
TEXT_INCLUDING = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


def _sha256(value):
    if not isinstance(value, bytes):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")
    return hashlib.sha256(value).hexdigest()


class InputDigests:
    """One per delivery run. ``renderer`` (``_render.ManifestRenderer``) parses the templates and resolves the task
    variables they name; ``run_inputs`` is what every system of the run shares (hashed once)."""

    def __init__(self, renderer, task_vars, run_inputs):
        self._renderer = renderer
        self._task_vars = task_vars
        self._names = {}  # sha256 of a template text -> the variables it names, or None: never reused
        self._variables = {}  # variable name -> sha256 of its resolved value, or None: cannot be resolved
        self._run = _sha256([RENDERING_FORMAT, ANSIBLE_VERSION, run_inputs])

    def system(self, folder, per_system):
        """The digest of one system's inputs (``per_system``: its description, images, values...), or None when one of
        its templates may render differently from the same inputs."""
        files, names = [], set()
        for filename in manifest_files(folder):
            with open(os.path.join(folder, filename), "rb") as handle:
                data = handle.read()
            text_digest = hashlib.sha256(data).hexdigest()
            files.append((filename, text_digest))
            if filename.endswith(TEMPLATE_SUFFIXES):
                named = self._named(text_digest, data)
                if named is None:
                    return None
                names |= named
        variables = {}
        for name in sorted(names - PER_SYSTEM):
            variables[name] = self._variable(name)
            if variables[name] is None:
                return None
        return _sha256([self._run, files, per_system, variables])

    def _named(self, text_digest, data):
        if text_digest not in self._names:
            self._names[text_digest] = self._parse(data.decode("utf-8", errors="replace"))
        return self._names[text_digest]

    def _parse(self, text):
        if text.lstrip().startswith("#jinja2:"):
            return None
        try:
            tree = self._renderer.parse(text)
        except TemplateError:
            return None  # rendering reports the error with the system and file
        if next(tree.find_all(TEXT_INCLUDING), None) is not None:
            return None
        if any(f.name.rsplit(".", 1)[-1] in RANDOM_FILTERS for f in tree.find_all(nodes.Filter)):
            return None
        if any(n.name in RUN_TIME_NAMES for n in tree.find_all(nodes.Name)):  # Ansible's globals are not "undeclared"
            return None
        return frozenset(meta.find_undeclared_variables(tree))

    def _variable(self, name):
        if name not in self._variables:
            if name not in self._task_vars:
                self._variables[name] = "absent"  # a Jinja global (range, dict...) or undefined: rendering says which
            else:
                try:
                    self._variables[name] = _sha256(self._renderer.variable(name, self._task_vars))
                except Exception:  # noqa: BLE001 - any failure: no reuse; rendering reports it with the system and file
                    self._variables[name] = None
        return self._variables[name]
