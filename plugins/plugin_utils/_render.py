# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rendering systems' manifest templates on the controller, for the whole delivery at once.

Ansible's own template engine renders them (its filters, the collection's, undefined-variable errors, vault), but
ONE engine serves the run instead of a new one per system, and each template text is compiled once: a thousand
systems made from the same service template compile it once and render it a thousand times. Compiling cost about
twice what rendering does, and creating a Jinja environment per system as much again (docs/benchmarks.md)."""

from __future__ import annotations

import hashlib
import os

import yaml
from ansible.errors import AnsibleError
from ansible.template import Templar, trust_as_template
from jinja2 import Template

TEMPLATE_SUFFIXES = (".yaml.j2", ".yml.j2")
PLAIN_SUFFIXES = (".yaml", ".yml")
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses rendered manifests ~10x faster


class RenderError(Exception):
    """A template that cannot be rendered or does not render to YAML; the message names the system and file."""


def manifest_files(folder):
    """The manifest files of a folder, in the order they are delivered (templates and plain YAML)."""
    return sorted(f for f in os.listdir(folder) if f.endswith(TEMPLATE_SUFFIXES + PLAIN_SUFFIXES))


class ManifestRenderer:
    """Renders manifest files with Ansible's template engine; one per delivery run (not thread-safe: the action
    plugin renders one system after the other)."""

    def __init__(self, templar=None):
        self._templar = templar.copy_with_new_env(available_variables={}) if templar else Templar()
        self._engine = self._templar._engine  # pylint: disable=protected-access  # no public hook for compiling
        self._environment = self._engine.environment  # created once here, not once per system
        self._searchpath = None
        self.compiled = {}  # (sha256 of the template text, template options) -> compiled template
        self.compilations = 0
        self._cache_compilation()

    def _cache_compilation(self):
        """Let the engine compile each distinct template text once. Only templates bound to the run's environment
        are kept: one with its own ``#jinja2:`` overrides gets an overlay environment, and a failed compilation
        keeps the first system's error; both are compiled again, as Ansible does for every template."""
        compile_template = getattr(self._engine, "_compile_template", None)
        if compile_template is None:  # another ansible-core: correct, only slower
            return

        def compiled_once(template, options):
            key = (hashlib.sha256(str(template).encode()).digest(), options)
            found = self.compiled.get(key)
            if found is None:
                self.compilations += 1
                found = compile_template(template, options)
                if isinstance(found, Template) and found.environment is self._environment:
                    self.compiled[key] = found
            return found

        self._engine._compile_template = compiled_once  # pylint: disable=protected-access

    def use(self, searchpath, variables):
        """Render the next files with these variables, finding ``{% include %}``d files in ``searchpath``."""
        if searchpath != self._searchpath:
            self._environment.loader.searchpath = list(searchpath)
            if self._environment.cache is not None:  # included templates are cached by name, not by folder
                self._environment.cache.clear()
            self._searchpath = list(searchpath)
        self._templar.available_variables = variables

    def parse(self, text):
        """The Jinja syntax tree of a template text (what ``_inputs.py`` reads the variables it names from)."""
        return self._environment.parse(text)

    def variable(self, name, variables):
        """The resolved value of one variable (vault decrypted, nested templates rendered) among ``variables``."""
        self._templar.available_variables = variables
        return self._templar.template(trust_as_template("{{ " + name + " }}"), escape_backslashes=False)

    def render_text(self, text):
        """A trusted template text rendered with the current variables; None when it renders nothing."""
        return self._templar.template(trust_as_template(text), escape_backslashes=False)

    def render_file(self, system, path, root):
        """The YAML documents of one manifest file (templated when it ends in .j2), each with the file's path
        relative to ``root`` and its index; a template that renders nothing (a conditional object) has none."""
        relative = os.path.relpath(path, root)
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        if path.endswith(TEMPLATE_SUFFIXES):
            try:
                text = self.render_text(text)
            except AnsibleError as exc:
                raise RenderError(f"system {system}: cannot render {relative}: {exc.message}") from None
        if text is None:  # not the text "None"
            text = ""
        try:
            parsed = list(yaml.load_all(str(text), Loader=SAFE_LOADER))
        except yaml.YAMLError as exc:
            raise RenderError(f"system {system}: {relative} does not render to valid YAML: {exc}") from None
        return [{"file": relative, "index": index, "content": content} for index, content in enumerate(parsed)]

    def render_folder(self, system, folder, root, variables):
        """Every document of a system's manifests folder, rendered with ``variables``."""
        files = manifest_files(folder)
        if not files:
            raise RenderError(f"system {system}: no *.yaml.j2 / *.yml.j2 templates in {folder}")
        self.use([folder], variables)
        documents = []
        for filename in files:
            documents.extend(self.render_file(system, os.path.join(folder, filename), root))
        return documents
