"""Fixtures for tests against the real osmo-hlr and osmo-msc (the lab in simulators/osmo)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from simulators.osmo.lab import Lab, LabConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))

from _procs import free_ports

OsmoLab = Callable[..., Awaitable[Lab]]


@pytest.fixture
async def osmo_lab(tmp_path: Path) -> AsyncIterator[OsmoLab]:
    """`lab = await osmo_lab(smpp_first=True, ...)`: osmo-hlr + osmo-msc in tmp_path on free
    SMPP / SGs ports, stopped at teardown (after a failure too). One lab per machine at a time
    (fixed VTY/CTRL/GSUP ports): Lab.start waits for another one to end."""
    labs: list[Lab] = []

    async def start(**overrides: Any) -> Lab:
        smpp, sgs = free_ports(2)
        cfg = LabConfig(
            workdir=tmp_path / f"lab{len(labs)}",
            **{"smpp_port": smpp, "sgs_port": sgs, **overrides},
        )
        lab = Lab(cfg)
        labs.append(lab)
        await lab.start()
        return lab

    try:
        yield start
    finally:
        for lab in reversed(labs):
            if lab.procs:
                print(f"--- osmo-msc log ---\n{lab.output('osmo-msc', 3000)}")
            await lab.stop()
