"""Unit tests import the collection as ``ansible_collections.slipway.platform``: put the stack's collection
folder on ``sys.path`` (creating the link to this checkout when it is missing)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".stack" / "collections"
LINK = COLLECTIONS / "ansible_collections" / "slipway" / "platform"

if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    LINK.symlink_to(ROOT)
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
