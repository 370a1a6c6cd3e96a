from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from fake_registry import FakeRegistry  # noqa: E402


@pytest.fixture
def fake_registry():
    registry = FakeRegistry()
    yield registry
    registry.close()
