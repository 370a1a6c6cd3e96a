# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Binaries from the artifact source onto a host: every download verified by its sha256 before anything is
installed, then installed as links to the verified files.

One call does what used to be six tasks per role (check the source, make the folders, look for staged files,
download and verify, link): on an idempotent re-run that is one round trip to the host instead of six, for every
role that installs a binary. The order is the same as ever: all downloads first, so a checksum that does not match
stops the call before any link changed.

A staged file is named ``<name>-<sha256>`` and only ever renamed into place after its hash matched, so one that
exists needs neither a download nor a second hash of a 100 MB file. A link is replaced by a rename (atomic): a
running service never sees a missing binary.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile

from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError

SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20
NOT_A_LINK = "(a file, not a link)"  # what the diff shows for a binary copied in place by hand


def check_source(artifacts, names):
    """Refuse, before any change, a name the source does not list or lists without a usable URL and sha256."""
    if not isinstance(artifacts, dict):
        raise SlipwayError("artifacts must be a mapping {name: {url: ..., sha256: ...}} (the inventory's "
                           "slipway_artifacts)")
    unusable = []
    for name in names:
        entry = artifacts.get(name)
        if not isinstance(entry, dict) or not entry.get("url") or not SHA256.match(str(entry.get("sha256", ""))):
            unusable.append(name)
    if unusable:
        raise SlipwayError(
            f"slipway_artifacts has no usable entry for {', '.join(unusable)}: each needs {{url: ..., sha256: <64 "
            "lowercase hex digits>}}; add it to the inventory's group_vars (see "
            "inventories/cluster-example/group_vars/all/artifacts.yml)", unusable=unusable)


def staged_path(staging_dir, name, sha256):
    return os.path.join(staging_dir, f"{name}-{sha256}")


def plan(artifacts, names, staging_dir, install_dir):
    """What each name needs: ``[{name, staged, link, download, current, relink}]``; reads the host, writes nothing."""
    steps = []
    for name in names:
        staged = staged_path(staging_dir, name, artifacts[name]["sha256"])
        link = os.path.join(install_dir, name)
        current = os.readlink(link) if os.path.islink(link) else NOT_A_LINK if os.path.lexists(link) else None
        steps.append({"name": name, "staged": staged, "link": link, "download": not os.path.isfile(staged),
                      "current": current, "relink": current != staged})
    return steps


def download(url, staged, sha256, fetch, timeout):
    """``fetch(url, timeout)`` gives a readable response; its bytes go to a temporary file beside ``staged``, which
    becomes ``staged`` only when its sha256 is ``sha256``. Nothing is left behind when it is not."""
    folder = os.path.dirname(staged)
    fd, temporary = tempfile.mkstemp(prefix=".download-", dir=folder)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            response = fetch(url, timeout)
            try:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
            finally:
                response.close()
        if digest.hexdigest() != sha256:
            raise SlipwayError(
                f"{url}: checksum mismatch, sha256 {digest.hexdigest()} where the inventory names {sha256} (the "
                "file at the URL is not the one slipway_artifacts names: fix the artifact source or the inventory)",
                url=url, expected_sha256=sha256, actual_sha256=digest.hexdigest())
        os.chmod(temporary, 0o755)  # noqa: S103 - a binary every service user runs (etcd has its own)
        os.replace(temporary, staged)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def link(target, path):
    """``path`` becomes a link to ``target`` in one rename, whatever was there (a file, another link)."""
    folder = os.path.dirname(path)
    temporary = os.path.join(folder, f".{os.path.basename(path)}.slipway-link")
    if os.path.lexists(temporary):
        os.unlink(temporary)
    os.symlink(target, temporary)
    os.replace(temporary, path)


def folder_differs(path, mode):
    return not os.path.isdir(path) or os.stat(path).st_mode & 0o7777 != mode


def ensure_folder(path, mode):
    """``path`` a folder with ``mode`` (created with its parents, owned by the current user); True when it changed."""
    if not folder_differs(path, mode):
        return False
    if not os.path.isdir(path):
        os.makedirs(path, mode=mode)
    os.chmod(path, mode)
    return True


def install(artifacts, names, staging_dir, install_dir, fetch, timeout=60, check_mode=False):
    """Every name's binary staged (downloaded and verified where missing) and then linked into ``install_dir``.

    Returns ``{changed, downloaded, installed, diff}``: the names downloaded and the names whose link changed
    (callers restart a service on the latter); in check mode what would be, with nothing written. A download that
    fails or does not match stops the call before any link changed; downloads that succeeded stay staged.
    """
    check_source(artifacts, names)
    steps = plan(artifacts, names, staging_dir, install_dir)
    downloads = [step for step in steps if step["download"]]
    relinks = [step for step in steps if step["relink"]]
    # Readable and searchable by all: etcd runs as its own user, through the link, from the staging folder.
    folders = [folder for folder in (os.path.dirname(staging_dir), staging_dir) if folder_differs(folder, 0o755)]
    if not check_mode:
        for folder in folders:
            ensure_folder(folder, 0o755)
        failed = []
        for step in downloads:
            try:
                download(artifacts[step["name"]]["url"], step["staged"], artifacts[step["name"]]["sha256"], fetch,
                         timeout)
            except SlipwayError as exc:
                failed.append((step["name"], exc.msg))
            except OSError as exc:  # a refused connection, a full disk: named with the artifact
                failed.append((step["name"], f"{artifacts[step['name']]['url']}: {exc}"))
        if failed:
            raise SlipwayError(
                "artifact download failed before anything was installed: "
                + "; ".join(f"{name}: {why}" for name, why in failed) + "; nothing was installed",
                failed=[name for name, _why in failed])
        if relinks:
            ensure_folder(install_dir, 0o755)
        for step in relinks:
            link(step["staged"], step["link"])
    return {
        "changed": bool(folders or downloads or relinks),
        "downloaded": [step["name"] for step in downloads],
        "installed": [step["name"] for step in relinks],
        "diff": {"before": {step["link"]: step["current"] for step in relinks},
                 "after": {step["link"]: step["staged"] for step in relinks}},
    }
