"""The release tests share the in-memory API stand-in of the _kube tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_kube"))
