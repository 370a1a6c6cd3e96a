# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Content addresses of image builds: the digest of everything a build reads.

The digest covers the build context as the Docker CLI sends it (filtered by ``.dockerignore`` with the
engine's own matching rules), the Dockerfile, the build arguments and the target. Two builds with the same
digest read the same bytes, so the tag derived from it names one image: an unchanged context gives the same
tag (nothing to build or push), a one-byte change gives a new one. Pure Python, no Docker.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError

SCHEME = "slipway-context-v1"
TAG_LENGTH = 32  # hex characters of the digest used as the tag (128 bits)


class Pattern:
    """One ``.dockerignore`` line, matched like moby's ``patternmatcher``."""

    def __init__(self, text):
        self.exclusion = text.startswith("!")
        body = text[1:].strip() if self.exclusion else text
        body = os.path.normpath(body).replace(os.sep, "/").lstrip("/") or "."
        self.text = body
        self.regex = re.compile(_translate(body))

    def match(self, path):
        return self.regex.match(path) is not None


def _translate(pattern):
    """moby patternmatcher's glob -> regular expression, with ``/`` as the separator."""
    out, i = "^", 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            if pattern[i + 1:i + 2] == "*":
                i += 1
                if pattern[i + 1:i + 2] == "/":
                    i += 1
                out += ".*" if i + 1 >= len(pattern) else "(.*/)?"
            else:
                out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise SlipwayError(f".dockerignore pattern {pattern!r}: unterminated character class")
            body = pattern[i + 1:end]
            out += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
            i = end
        else:
            out += re.escape(char)
        i += 1
    return out + "$"


def parse_dockerignore(text):
    """The patterns of a ``.dockerignore`` file: comments and blank lines dropped, order kept."""
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line == "!":
            raise SlipwayError(".dockerignore: a lone '!' is not a pattern")
        patterns.append(Pattern(line))
    return patterns


def excluded(path, patterns):
    """Whether ``path`` (relative, ``/``-separated) is left out of the context; the last match wins and a
    pattern matching a parent folder matches its content, as in ``MatchesOrParentMatches``."""
    result = False
    parents = path.split("/")[:-1]
    for pattern in patterns:
        hit = pattern.match(path)
        if not hit:
            hit = any(pattern.match("/".join(parents[:n])) for n in range(1, len(parents) + 1))
        if hit:
            result = not pattern.exclusion
    return result


def context_entries(context, patterns):
    """Yield ``(relative path, kind, mode, payload)`` for every entry the build context sends, sorted."""
    has_exceptions = any(p.exclusion for p in patterns)
    for root, dirs, files in os.walk(context):
        rel_root = os.path.relpath(root, context).replace(os.sep, "/")
        rel_root = "" if rel_root == "." else rel_root + "/"
        kept_dirs = []
        for name in sorted(dirs):
            rel = rel_root + name
            full = os.path.join(root, name)
            if os.path.islink(full):
                files.append(name)  # a link to a folder is sent as a link
                continue
            skip = excluded(rel, patterns)
            if not skip:
                yield rel, "d", stat.S_IMODE(os.lstat(full).st_mode), b""
            if not skip or has_exceptions:  # an exception may bring back something below
                kept_dirs.append(name)
        dirs[:] = kept_dirs
        for name in sorted(files):
            rel = rel_root + name
            if excluded(rel, patterns):
                continue
            full = os.path.join(root, name)
            info = os.lstat(full)
            if stat.S_ISLNK(info.st_mode):
                yield rel, "l", 0, os.readlink(full).encode()
            elif stat.S_ISREG(info.st_mode):
                yield rel, "f", stat.S_IMODE(info.st_mode), _file_digest(full)


def _file_digest(path):
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.digest()


def build_digest(context, dockerfile="Dockerfile", build_args=None, target=None):
    """The sha256 hex digest of one build; ``dockerfile`` is relative to ``context`` unless absolute.

    Raises SlipwayError when the context or the Dockerfile is missing.
    """
    if not os.path.isdir(context):
        raise SlipwayError(f"build context {context} is not a folder")
    dockerfile_path = dockerfile if os.path.isabs(dockerfile) else os.path.join(context, dockerfile)
    if not os.path.isfile(dockerfile_path):
        raise SlipwayError(f"Dockerfile {dockerfile_path} does not exist")
    ignore_path = os.path.join(context, ".dockerignore")
    patterns = []
    if os.path.isfile(ignore_path):
        with open(ignore_path, encoding="utf-8") as handle:
            patterns = parse_dockerignore(handle.read())
    sha = hashlib.sha256()
    header = {"scheme": SCHEME, "build_args": dict(sorted((build_args or {}).items())), "target": target or ""}
    sha.update(json.dumps(header, sort_keys=True).encode() + b"\0")
    sha.update(b"dockerfile\0" + _file_digest(dockerfile_path))
    for rel, kind, mode, payload in context_entries(context, patterns):
        sha.update(f"{kind} {mode:o} {rel}\0".encode() + payload)
    return sha.hexdigest()


def tag_of(digest):
    """The image tag for a build digest."""
    return digest[:TAG_LENGTH]
