"""The stack's generated secrets: written owner-only, made once, read back on every later run."""

from __future__ import annotations

import secrets
from pathlib import Path

from stacklib.config import SECRETS


def write_private(path: Path, content: str) -> None:
    """Write ``content`` to a file only its owner may read (created so before anything is in it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(content)


def generated_secret(name: str, make=lambda: secrets.token_urlsafe(18)) -> str:
    """``.stack/secrets/<name>``: made by ``make`` the first time, the same value afterwards."""
    path = SECRETS / name
    if not path.exists():
        write_private(path, make())
    return path.read_text().strip()
