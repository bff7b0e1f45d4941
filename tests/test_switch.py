"""The switch adapter against the simulated switch, run for real on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.switch.port import HttpSwitch, SwitchRejected, SwitchUnavailable
from simulators.switch import SwitchSimulator

A = "+77011234567"
B = "+77011234568"


@pytest.fixture
async def sim() -> AsyncIterator[SwitchSimulator]:
    async with SwitchSimulator(token="t0k", known={A, B}) as s:
        yield s


@pytest.fixture
async def switch(sim: SwitchSimulator) -> AsyncIterator[HttpSwitch]:
    async with HttpSwitch(sim.url, "t0k", timeout=1.0) as sw:
        yield sw


async def test_block_status_unblock(sim: SwitchSimulator, switch: HttpSwitch) -> None:
    assert await switch.status(A) == "active"
    result = await switch.block(A, reason="case confirmed", case_id="c1")
    assert (result.msisdn, result.status, result.changed) == (A, "blocked", True)
    assert result.request_id
    assert await switch.status(A) == "blocked"
    assert await switch.status(B) == "active"
    back = await switch.unblock(A, reason="appeal", case_id="c1")
    assert (back.status, back.changed) == ("active", True)
    assert await switch.status(A) == "active"
    assert sim.requests[1].key == "c1:block:" + A
    assert sim.requests[1].body == {"reason": "case confirmed", "case_id": "c1"}


async def test_idempotent_replay(sim: SwitchSimulator, switch: HttpSwitch) -> None:
    first = await switch.block(A, reason="r", case_id="c1", idempotency_key="k1")
    await switch.unblock(A, reason="r", case_id="c1", idempotency_key="k2")
    again = await switch.block(A, reason="r", case_id="c1", idempotency_key="k1")
    assert again.request_id == first.request_id and not again.changed
    assert sim.state[A] == "active"  # the replay changed nothing
    with pytest.raises(SwitchRejected, match="idempotency_mismatch"):
        await switch.unblock(A, reason="r", case_id="c1", idempotency_key="k1")


async def test_unknown_number_is_rejected(switch: HttpSwitch) -> None:
    with pytest.raises(SwitchRejected) as info:
        await switch.block("+77019999999", reason="r", case_id="c1")
    assert info.value.code == "unknown_subscriber"
    assert await switch.status("+77019999999") == "unknown"


async def test_server_errors_and_bad_token_are_unavailable(
    sim: SwitchSimulator, switch: HttpSwitch
) -> None:
    sim.faults.fail_next = 1
    with pytest.raises(SwitchUnavailable, match="503"):
        await switch.block(A, reason="r", case_id="c1")
    assert sim.state.get(A, "active") == "active"
    assert (await switch.block(A, reason="r", case_id="c1")).status == "blocked"
    async with HttpSwitch(sim.url, "wrong", timeout=1.0) as bad:
        with pytest.raises(SwitchUnavailable, match="401"):
            await bad.block(B, reason="r", case_id="c1")


async def test_down_and_back(sim: SwitchSimulator, switch: HttpSwitch) -> None:
    await sim.down()
    with pytest.raises(SwitchUnavailable):
        await switch.block(A, reason="r", case_id="c1")
    await sim.start()
    assert (await switch.block(A, reason="r", case_id="c1")).status == "blocked"


async def test_slow_switch_times_out(sim: SwitchSimulator) -> None:
    sim.faults.delay = 0.5
    async with HttpSwitch(sim.url, "t0k", timeout=0.1) as sw:
        with pytest.raises(SwitchUnavailable, match="timeout"):
            await sw.block(A, reason="r", case_id="c1")


async def test_simulator_speaks_plain_http(sim: SwitchSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        headers = {"Authorization": "Bearer t0k"}
        missing = await client.post(
            f"/v1/subscribers/{A}/block", json={"case_id": "c"}, headers=headers
        )
        assert missing.status_code == 400
        assert missing.json()["error"] == "idempotency_key_required"
        nothing = await client.get("/v2/other", headers=headers)
        assert nothing.status_code == 404


async def test_a_switch_that_stops_answering_mid_connection_and_a_request_that_was_held(
    sim: SwitchSimulator,
) -> None:
    """Half-open (simulators/faultproxy.py): the kept-alive connection stays up and nothing
    comes back. The block times out as unavailable (the workflow retries it); the held request
    that reaches the switch late and the retry under the same idempotency key change the
    number once."""
    from urllib.parse import urlsplit

    from simulators.faultproxy import FaultProxy

    async with FaultProxy("127.0.0.1", urlsplit(sim.url).port or 80) as proxy:
        url = f"http://127.0.0.1:{proxy.port}"
        async with HttpSwitch(url, "t0k", timeout=0.3) as sw:
            assert await sw.status(A) == "active"  # the connection is up
            proxy.freeze()
            with pytest.raises(SwitchUnavailable, match="timeout"):
                await sw.block(A, reason="r", case_id="c1", idempotency_key="k1")
            proxy.thaw()
            again = await sw.block(A, reason="r", case_id="c1", idempotency_key="k1")
            assert again.status == "blocked"
    assert sim.state[A] == "blocked"
    # one change: whichever of the two reached the switch first made it, the other replayed it
    assert again.request_id == sim._answers["k1"][3]["request_id"]
    assert again.changed == (len([r for r in sim.requests if r.key == "k1"]) == 1)
