# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Content addresses of image builds: the digest of everything a build reads.

The digest covers the build context filtered by ``.dockerignore`` (moby's matching rules: ``*``, ``?``,
``**``, ``[...]``, ``\\`` escapes, ``!`` exceptions, the last match wins, a match on a folder covers its
content), the Dockerfile, the build arguments, the target, and what each image the build starts from is (its
image ID, or the digest it is pinned to: see ``dockerfile.base_images``; the caller resolves them). Version
control metadata (``VCS_METADATA``, at any depth) is left out whatever the ``.dockerignore`` says, so a fetch, a
commit elsewhere or another checkout of the same sources gives the same tag; only an exception that names it
(``!.git``) brings it back, for the builds that really read it (``context_patterns``). The build itself is sent
exactly the context that was hashed (``write_context_tar``), so digest and image never disagree about what was read.
Two builds with the same digest read the same bytes, so the tag derived from it names one image: an
unchanged context gives the same tag (nothing to build or push), a one-byte change or a rebuilt base a new one.
Pure Python, no Docker.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tarfile

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._image.dockerfile import base_images

SCHEME = "slipway-context-v2"  # v2: version control metadata out, base images in
TAG_LENGTH = 32  # hex characters of the digest used as the tag (128 bits)
# The folder (or file: a git worktree's or submodule's ``.git``) each version control system keeps in a work
# tree. Versioned files such as .gitignore or .gitattributes are content and stay in.
VCS_METADATA = (".git", ".hg", ".svn", ".bzr", ".jj", ".pijul", "_darcs", "CVS", ".fslckout", "_FOSSIL_")


class Pattern:
    """One ``.dockerignore`` line, matched like moby's ``patternmatcher``."""

    def __init__(self, text):
        self.exclusion = text.startswith("!")
        body = text[1:].strip() if self.exclusion else text
        body = os.path.normpath(body).replace(os.sep, "/").lstrip("/") or "."
        self.text = body
        self.regex = re.compile(_translate(body))
        self.literal_prefix = re.split(r"[*?\[\\]", body, maxsplit=1)[0]

    def match(self, path):
        return self.regex.match(path) is not None

    def may_match_below(self, folder):
        """Whether this pattern could match something inside ``folder`` (judged by its literal start)."""
        return self.literal_prefix.startswith(folder + "/") or (folder + "/").startswith(self.literal_prefix)


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
    exceptions = [p for p in patterns if p.exclusion]
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
            if not skip or any(p.may_match_below(rel) for p in exceptions):  # it may bring back something below
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


def context_patterns(context):
    """What leaves a context out: its ``.dockerignore``, and version control metadata at any depth.

    The metadata patterns come after the file's, so they win over a broad exception (``*`` then ``!src`` does
    not bring back ``src/.git``), except for a name an exception of the file spells out as a path component
    (``!.git``, ``!vendor/.git/HEAD``): that name's pattern comes first and the file decides, last match wins.
    """
    patterns = []
    ignore_path = os.path.join(context, ".dockerignore")
    if os.path.isfile(ignore_path):
        with open(ignore_path, encoding="utf-8") as handle:
            patterns = parse_dockerignore(handle.read())
    named = {part for p in patterns if p.exclusion for part in p.text.split("/")}
    first = [Pattern("**/" + name) for name in VCS_METADATA if name in named]
    last = [Pattern("**/" + name) for name in VCS_METADATA if name not in named]
    return first + patterns + last


def _dockerfile_path(context, dockerfile):
    path = dockerfile if os.path.isabs(dockerfile) else os.path.join(context, dockerfile)
    if not os.path.isfile(path):
        raise SlipwayError(f"Dockerfile {path} does not exist")
    return path


def write_context_tar(context, dockerfile, fileobj):
    """Write the filtered context (what ``build_digest`` covers) as a tar to ``fileobj``; returns the
    Dockerfile's name inside it (a Dockerfile outside the context is added as ``.slipway.Dockerfile``)."""
    dockerfile_path = _dockerfile_path(context, dockerfile)
    inside = os.path.relpath(dockerfile_path, context).replace(os.sep, "/")
    with tarfile.open(fileobj=fileobj, mode="w", format=tarfile.PAX_FORMAT) as tar:
        names = set()
        for rel, _kind, _mode, _payload in context_entries(context, context_patterns(context)):
            info = tar.gettarinfo(os.path.join(context, rel), arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            names.add(rel)
            if info.isfile():
                with open(os.path.join(context, rel), "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
        if inside.startswith("../") or inside not in names:  # outside the context, or ignored: send it anyway
            inside = ".slipway.Dockerfile"
            info = tar.gettarinfo(dockerfile_path, arcname=inside)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(dockerfile_path, "rb") as handle:
                tar.addfile(info, handle)
    return inside


def _file_digest(path):
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.digest()


def build_digest(context, dockerfile="Dockerfile", build_args=None, target=None, resolve_base=None):
    """The sha256 hex digest of one build; ``dockerfile`` is relative to ``context`` unless absolute.

    ``resolve_base(base)`` gives what each image the build reads is (``dockerfile.BaseImage`` -> an image ID or
    ``sha256:`` digest) and raises SlipwayError when it cannot say; a Dockerfile that reads images needs it.
    Raises SlipwayError when the context or the Dockerfile is missing.
    """
    if not os.path.isdir(context):
        raise SlipwayError(f"build context {context} is not a folder")
    dockerfile_path = _dockerfile_path(context, dockerfile)
    with open(dockerfile_path, encoding="utf-8", errors="replace") as handle:
        bases = base_images(handle.read(), build_args, target, where=dockerfile_path)
    if bases and resolve_base is None:
        raise SlipwayError(f"{dockerfile_path} builds on {[b.reference for b in bases]}: the digest needs what "
                           "each of them is, and no way to resolve them was given")
    patterns = context_patterns(context)
    sha = hashlib.sha256()
    header = {"scheme": SCHEME, "build_args": dict(sorted((build_args or {}).items())), "target": target or "",
              "bases": [[base.reference, base.platform or "", resolve_base(base)] for base in bases]}
    sha.update(json.dumps(header, sort_keys=True).encode() + b"\0")
    sha.update(b"dockerfile\0" + _file_digest(dockerfile_path))
    for rel, kind, mode, payload in context_entries(context, patterns):
        sha.update(f"{kind} {mode:o} {rel}\0".encode() + payload)
    return sha.hexdigest()


def tag_of(digest):
    """The image tag for a build digest."""
    return digest[:TAG_LENGTH]
