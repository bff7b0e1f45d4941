"""smsc/bindguard.py on a simulated clock: the order of the checks, lockouts per address and per
system_id with doubling, what a legitimate client still gets, log rate, forgetting, bounds."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from smsc.bindguard import BindGuard, BindGuardConfig, address_key
from smsc.constants import Status
from smsc.session import BindType

TRX, RX = BindType.TRANSCEIVER, BindType.RECEIVER
ATTACKER, CLIENT = "203.0.113.9", "198.51.100.7"


@dataclasses.dataclass
class Acc:
    password: str = "secret"
    bind_types: frozenset[BindType] = frozenset({TRX})
    allow: tuple[str, ...] = ()

    def admits(self, address: str | None) -> bool:
        return not self.allow or any(
            ipaddress.ip_address(address or "0.0.0.0") in ipaddress.ip_network(n)
            for n in self.allow
        )


def try_bind(
    guard: BindGuard, now: float, address: str, password: str, acc: Acc | None = None, **kw: object
) -> int:
    account = acc if acc is not None else Acc()
    system_id = str(kw.get("system_id", "gw"))
    bind_type = kw.get("bind_type", TRX)
    assert isinstance(bind_type, BindType)
    return guard.authenticate(now, address, system_id, password, bind_type, account).status


def test_the_order_of_the_checks() -> None:
    g = BindGuard()
    assert try_bind(g, 0, CLIENT, "secret") == Status.ESME_ROK
    assert g.authenticate(0, CLIENT, "nobody", "x", TRX, None).status == Status.ESME_RINVSYSID
    assert try_bind(g, 0, CLIENT, "wrong") == Status.ESME_RINVPASWD
    assert try_bind(g, 0, CLIENT, "secret", bind_type=RX) == Status.ESME_RBINDFAIL


def test_outside_the_allow_list_every_password_gets_the_same_answer() -> None:
    g = BindGuard()
    far = Acc(allow=("10.0.0.0/8",))
    answers = {try_bind(g, 0, CLIENT, pw, far) for pw in ("secret", "wrong", "")}
    assert answers == {Status.ESME_RBINDFAIL}
    assert try_bind(g, 0, "10.1.2.3", "secret", far) == Status.ESME_ROK


def guesses_per_minute(guard: BindGuard, seconds: float, every: float) -> list[int]:
    """An attacker guessing from one address every `every` seconds: how many of its binds had
    their password checked (ESME_RINVPASWD), minute by minute."""
    per_minute = [0] * int(seconds // 60)
    for i in range(int(seconds / every)):
        now = i * every
        if try_bind(guard, now, ATTACKER, f"guess{i}") == Status.ESME_RINVPASWD:
            per_minute[int(now // 60)] += 1
    return per_minute


def test_brute_force_gets_a_handful_of_guesses_then_one_per_doubling_lockout() -> None:
    """10 guesses a second for an hour: 5 in the first minute, then one each time a lockout
    (60, 120, 240, ... s) ends: 10 in the hour instead of 36,000."""
    per_minute = guesses_per_minute(BindGuard(), 3600, 0.1)
    assert per_minute[0] == 5
    assert max(per_minute[1:]) == 1
    assert sum(per_minute) == 10


def test_a_locked_out_address_is_refused_even_with_the_right_password() -> None:
    g = BindGuard()
    for i in range(5):
        assert try_bind(g, i, ATTACKER, f"guess{i}") == Status.ESME_RINVPASWD
    decision = g.authenticate(10, ATTACKER, "gw", "secret", TRX, Acc())
    assert (decision.status, decision.locked_out) == (Status.ESME_RBINDFAIL, True)
    assert decision.locked_for == pytest.approx(54)
    assert try_bind(g, 10, ATTACKER, "wrong") == Status.ESME_RBINDFAIL  # same answer
    # a lockout refusal is not a guess: it does not lengthen the lockout
    assert g.locked_for(10, ATTACKER) == pytest.approx(54)
    assert try_bind(g, 64.5, ATTACKER, "secret") == Status.ESME_ROK


def test_a_legitimate_client_binds_while_an_attacker_elsewhere_is_locked_out() -> None:
    g = BindGuard()
    for i in range(50):
        try_bind(g, i * 0.1, ATTACKER, f"guess{i}")
    assert g.locked_for(5, ATTACKER) > 0
    assert try_bind(g, 5, CLIENT, "secret") == Status.ESME_ROK


def test_guessing_spread_over_addresses_locks_the_system_id_but_not_its_own_client() -> None:
    g = BindGuard(BindGuardConfig(system_id_failures=10))
    assert try_bind(g, 0, CLIENT, "secret") == Status.ESME_ROK  # the real client, earlier
    for i in range(10):  # one guess from each of ten addresses: no address reaches its limit
        assert try_bind(g, 1, f"203.0.113.{i}", f"guess{i}") == Status.ESME_RINVPASWD
    assert try_bind(g, 2, "203.0.113.99", "secret") == Status.ESME_RBINDFAIL  # unknown address
    assert try_bind(g, 2, CLIENT, "secret") == Status.ESME_ROK  # has bound before
    assert try_bind(g, 62, "203.0.113.99", "secret") == Status.ESME_ROK  # lockout over


def test_refusals_are_logged_once_per_address_per_interval() -> None:
    g = BindGuard()
    decisions = [g.authenticate(i * 0.5, ATTACKER, "gw", "hunter2", TRX, Acc()) for i in range(100)]
    assert [i for i, d in enumerate(decisions) if d.log] == [0]
    later = g.authenticate(60, ATTACKER, "gw", "x", TRX, Acc())
    assert later.log and later.unlogged == 99
    other = g.authenticate(60, CLIENT, "gw", "x", TRX, Acc())
    assert other.log and other.unlogged == 0  # per address
    assert not [d for d in decisions if "hunter2" in repr(d)]  # never the password


def test_failures_are_forgotten_after_a_quiet_time() -> None:
    g = BindGuard(BindGuardConfig(forget_after=600))
    for i in range(4):
        try_bind(g, i, ATTACKER, "wrong")
    for i in range(4):  # 4 more, 10 minutes later: counted from zero, no lockout
        assert try_bind(g, 700 + i, ATTACKER, "wrong") == Status.ESME_RINVPASWD
    assert g.locked_for(704, ATTACKER) == 0


def test_the_forget_time_runs_from_the_end_of_the_lockout() -> None:
    """Otherwise a capped lockout as long as forget_after would start the count afresh."""
    g = BindGuard(BindGuardConfig(lockout=600, max_lockout=600, forget_after=600))
    for i in range(5):
        try_bind(g, i, ATTACKER, "wrong")
    assert try_bind(g, 700, ATTACKER, "wrong") == Status.ESME_RINVPASWD
    assert g.locked_for(700, ATTACKER) == 600  # the sixth failure locks again at once


def test_ipv6_addresses_count_by_64() -> None:
    g = BindGuard()
    for i in range(5):
        try_bind(g, i, f"2001:db8:1:2::{i + 1:x}", "wrong")
    assert try_bind(g, 6, "2001:db8:1:2:ffff::1", "secret") == Status.ESME_RBINDFAIL
    assert try_bind(g, 6, "2001:db8:1:3::1", "secret") == Status.ESME_ROK
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key(None) == "?"


def test_the_tables_stay_bounded() -> None:
    g = BindGuard(BindGuardConfig(max_tracked=10))
    for i in range(1000):
        try_bind(g, i, str(ipaddress.ip_address(0x0A000000 + i)), "wrong", system_id=f"id{i}")
        try_bind(g, i, CLIENT, "secret", system_id=f"id{i}")
    assert len(g._addresses) <= 10 and len(g._system_ids) <= 10 and len(g._known) <= 10
