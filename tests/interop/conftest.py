"""Fixtures for interop tests (real peers written by others, started per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _procs import Peers


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[Peers]:
    """Start peer processes with `peers.start(...)`; each is ended by its pid at teardown."""
    group = Peers(tmp_path)
    try:
        yield group
    finally:
        group.stop_all()
