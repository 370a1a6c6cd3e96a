# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The images a Dockerfile is built from, read the way the builder reads them.

A build reads more than its context: every image a stage starts ``FROM``, and every image a ``COPY --from`` or a
``RUN --mount=...,from=`` names. ``base_images`` lists them, so the content digest can cover what each one is.
What it follows: parser directives (``# escape=``), line continuations, comments, heredocs (their bodies are not
instructions), ``ARG`` before the first ``FROM`` with build arguments overriding defaults, ``$NAME``/``${NAME}``
with ``:-``, ``-``, ``:+``, ``+``, quotes, ``--platform``, stage names (case-insensitive; a name refers only to
an earlier stage, as in the builder), stage indexes in ``--from``, ``scratch``, and the target: the stages up to
and including it, which is what the classic builder runs (BuildKit may run fewer; an unused base then costs a
rebuild, never a stale tag). Pure Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError

DIRECTIVE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9]*)\s*=\s*(.*?)\s*$")
HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
HEREDOC_INSTRUCTIONS = ("RUN", "COPY", "ADD")


@dataclass(frozen=True)
class BaseImage:
    """One image a build reads: the reference after substitution, the platform asked for (``None`` when the
    line names none or names it with a variable), and the Dockerfile line it comes from."""

    reference: str
    platform: str | None
    line: int


@dataclass
class _Stage:
    name: str | None
    bases: list


def _directives(lines):
    """The parser directives at the top (``escape`` is the one that changes parsing)."""
    found = {}
    for line in lines:
        match = DIRECTIVE.match(line.strip())
        if not match or match.group(1).lower() in found:
            break
        found[match.group(1).lower()] = match.group(2)
    return found


def instructions(text):
    """The escape character, and ``(line number, INSTRUCTION, rest)`` for each instruction: continuations
    joined, comments and heredoc bodies left out."""
    lines = text.splitlines()
    escape = _directives(lines).get("escape", "\\")
    if escape not in ("\\", "`"):
        raise SlipwayError(f"Dockerfile: escape directive {escape!r} is neither '\\' nor '`'")
    index, result = 0, []
    while index < len(lines):
        start, parts = index + 1, []
        while index < len(lines):
            line = lines[index]
            index += 1
            if line.strip().startswith("#") or (parts and not line.strip()):
                if parts:  # comments and empty lines inside a continued instruction are dropped
                    continue
                break  # a comment line of its own, even one ending in the escape character
            stripped = line.rstrip()
            if stripped.endswith(escape):
                parts.append(stripped[:-1])
                continue
            parts.append(line)
            break
        logical = " ".join(part.strip() for part in parts).strip()
        if not logical or logical.startswith("#"):
            continue
        word, _space, rest = logical.partition(" ")
        word = word.upper()
        if word in HEREDOC_INSTRUCTIONS:
            for strip_tabs, _quote, end in HEREDOC.findall(rest):
                while index < len(lines) and (lines[index].lstrip("\t") if strip_tabs else lines[index]) != end:
                    index += 1
                index += 1
        result.append((start, word, rest.strip()))
    return escape, result


def expand(word, variables, where, escape="\\"):
    """Shell-like word processing of the builder: quotes removed, ``$NAME``, ``${NAME}``, ``${NAME:-default}``,
    ``${NAME-default}``, ``${NAME:+alternative}``, ``${NAME+alternative}``; an unset name is empty."""
    out, i, quote = [], 0, None
    while i < len(word):
        char = word[i]
        if char in "'\"" and quote in (None, char):
            quote = None if quote else char
        elif char == escape and quote != "'" and i + 1 < len(word):
            i += 1
            out.append(word[i])
        elif char == "$" and quote != "'":
            value, i = _variable(word, i, variables, where, escape)
            out.append(value)
            continue
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _variable(word, i, variables, where, escape):
    """The value of the variable starting at ``word[i] == '$'`` and the index after it."""
    if word[i + 1:i + 2] == "{":
        end = word.find("}", i + 2)
        if end < 0:
            raise SlipwayError(f"{where}: unterminated ${{ in {word!r}")
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])(.*))?", word[i + 2:end], re.S)
        if not match:
            raise SlipwayError(f"{where}: {word[i:end + 1]!r} is a substitution Slipway does not read "
                               "(it reads $NAME, ${NAME}, ${NAME:-default} and ${NAME:+alternative})")
        name, operator, argument = match.groups()
        value = variables.get(name)
        if operator in (":-", "-"):
            use_default = value is None or (operator == ":-" and value == "")
            value = expand(argument, variables, where, escape) if use_default else value
        elif operator in (":+", "+"):
            present = value is not None and (operator == "+" or value != "")
            value = expand(argument, variables, where, escape) if present else ""
        return value or "", end + 1
    match = re.match(r"[A-Za-z_][A-Za-z0-9_]*", word[i + 1:])
    if not match:
        return "$", i + 1
    return variables.get(match.group(0)) or "", i + 1 + match.end()


def _flags(rest):
    """Split ``--name=value`` flags off the front of an instruction's arguments."""
    words, flags = rest.split(), {}
    while words and words[0].startswith("--"):
        name, _equals, value = words.pop(0)[2:].partition("=")
        flags.setdefault(name.lower(), []).append(value)
    return flags, words


def _stage_reference(value, stages, by_index=True):
    """Whether ``value`` names one of ``stages``: by name (any case), or by index for ``--from``."""
    lowered = value.lower()
    return any(stage.name == lowered for stage in stages) or (by_index and value.isdigit() and int(value) < len(stages))


class _Reader:
    """The global ARGs as a build sees them, and the substitution that uses them."""

    def __init__(self, escape, build_args):
        self.escape = escape
        self.build_args = {key: str(value) for key, value in (build_args or {}).items()}
        self.variables = {}

    def expand(self, word, where):
        return expand(word, self.variables, where, self.escape)

    def declare(self, rest, where):
        """``ARG NAME[=default] ...`` before the first FROM: a build argument beats the default."""
        for word in rest.split():
            name, equals, default = word.partition("=")
            if name in self.build_args:
                self.variables[name] = self.build_args[name]
            elif equals:
                self.variables[name] = self.expand(default, where)
            else:
                self.variables.setdefault(name, None)

    def platform(self, flags, where):
        """A literal ``--platform``; one named by a variable (``$BUILDPLATFORM``...) counts as none given."""
        values = flags.get("platform")
        if not values or "$" in values[-1]:
            return None
        return self.expand(values[-1], where) or None


def base_images(text, build_args=None, target=None, where="Dockerfile"):
    """The external images the build of ``target`` (the last stage when None) reads, in order, each once."""
    escape, found_instructions = instructions(text)
    reader, stages = _Reader(escape, build_args), []
    for line, word, rest in found_instructions:
        at = f"{where} line {line}"
        if word == "ARG" and not stages:
            reader.declare(rest, at)
        elif word == "FROM":
            flags, words = _flags(rest)
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
                raise SlipwayError(f"{at}: FROM takes an image and optionally 'AS name', not {rest!r}")
            image = reader.expand(words[0], at)
            if not image:
                raise SlipwayError(f"{at}: FROM {words[0]} names no image (is a build argument missing?)")
            stage = _Stage(words[2].lower() if len(words) == 3 else None, [])
            if image.lower() != "scratch" and not _stage_reference(image, stages, by_index=False):
                stage.bases.append(BaseImage(image, reader.platform(flags, at), line))
            stages.append(stage)
        elif word in ("COPY", "RUN") and stages:
            for source in _sources(word, rest):
                value = reader.expand(source, at)
                if value and not _stage_reference(value, stages[:-1]):
                    stages[-1].bases.append(BaseImage(value, None, line))
    if not stages:
        raise SlipwayError(f"{where} has no FROM instruction")
    if target is not None:
        names = [stage.name for stage in stages]
        if target.lower() not in names:
            raise SlipwayError(f"{where}: target {target!r} is not a stage (stages: {[n for n in names if n]})")
        stages = stages[:names.index(target.lower()) + 1]
    found = {}
    for stage in stages:
        for base in stage.bases:
            found.setdefault((base.reference, base.platform), base)
    return list(found.values())


def _sources(word, rest):
    """The ``--from`` values of a COPY, the ``from=`` of each ``--mount`` of a RUN."""
    flags, _words = _flags(rest)
    if word == "COPY":
        return flags.get("from", [])
    sources = []
    for mount in flags.get("mount", []):
        options = dict(option.partition("=")[::2] for option in mount.split(","))
        if options.get("from"):
            sources.append(options["from"])
    return sources
