"""A SIM-box operator and a test-call partner, for the demo and the tests.

The partner announces test calls (and A2P test SMS) from foreign A-numbers to the operator's
probes, then places them. Each goes over a route; the routes are what the partner buys from
carriers, and some carriers cheat:

    clean       the call reaches the probe over the international interconnect, CLI intact
    simbox      a grey carrier terminates it through a SIM box on the operator's network: the
                probe sees the CLI of one of the box's local SIMs
    stripped    the CLI is lost on the way (withheld / not available)
    lost        the call never arrives (a failed or blackholed route)

SMS tests: an A2P message from a bank sender id, delivered cleanly, or through a SIM farm (a
local mobile number as the originator).

The probes are anything with `incoming_call(number, *, ton, validity, rings, interval)` and
`receive_sms(originator, text)`: the modem simulators of `simulators/modem.py` in the demo.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway.probes.simbox import Expected

# Foreign A-numbers the partner calls from (Germany, Turkey, UAE, UK, China).
PARTNER_NUMBERS = ("+4915112345678", "+905321234567", "+971501234567", "+447700900123",
                   "+8613812345678")  # fmt: skip
# The SIM box's SIMs: local mobile numbers of the three Kazakh operators.
SIMBOX_SIMS = ("+77011234501", "+77051234502", "+77071234503", "+77471234504")
A2P_SENDER = "KaspiBank"
SIMFARM_NUMBERS = ("+77761234505", "+77781234506")
TEST_TEXTS = ("Тест: сіздің кодыңыз 4821", "Тест: ваш код подтверждения 7305")


class Probe(Protocol):
    def incoming_call(
        self, number: str, *, ton: int = 145, validity: int = 0, rings: int = 3,
        interval: float = 1.0,
    ) -> None: ...  # fmt: skip

    def receive_sms(self, originator: str, text: str) -> object: ...


@dataclass(frozen=True, slots=True)
class PlannedTest:
    expected: Expected
    route: str  # clean | simbox | stripped | lost (calls); clean | simfarm (SMS)
    at: float  # when the partner places it
    cli: str  # what the probe will see ("" for none)


@dataclass
class Partner:
    """Plans and places test calls; `share` is how the routes are mixed."""

    probes: Sequence[str]
    share: Mapping[str, float] = field(
        default_factory=lambda: {"clean": 0.4, "simbox": 0.4, "stripped": 0.1, "lost": 0.1}
    )
    sms_share: float = 0.25  # of tests that are A2P test SMS (half of them via a SIM farm)
    window: float = 20.0  # seconds each announced window lasts (keep it under the spacing of
    # two tests on one probe: a probe takes one test call at a time)
    seed: int = 7
    planned: list[PlannedTest] = field(default_factory=list)

    def plan(self, count: int, start: float, spacing: float) -> list[PlannedTest]:
        """`count` tests from `start`, one every `spacing` seconds, round robin over probes.
        The routes come in the proportions of `share` (and `sms_share`), in a seeded order."""
        rng = random.Random(self.seed)
        kinds = self._mix(count, rng)
        out: list[PlannedTest] = []
        lead = min(1.0, self.window / 4)  # the window opens a little before the call
        for i, route in enumerate(kinds):
            probe = self.probes[i % len(self.probes)]
            at = start + i * spacing
            if route.startswith("sms-"):
                route = route[4:]
                cli = A2P_SENDER if route == "clean" else rng.choice(SIMFARM_NUMBERS)
                exp = Expected(probe, A2P_SENDER, at - lead, at + self.window, kind="sms",
                               route=f"a2p-{route}")  # fmt: skip
            else:
                a_number = rng.choice(PARTNER_NUMBERS)
                cli = {"clean": a_number, "simbox": rng.choice(SIMBOX_SIMS)}.get(route, "")
                exp = Expected(probe, a_number, at - lead, at + self.window,
                               route=f"carrier-{route}")  # fmt: skip
            out.append(PlannedTest(exp, route, at, cli))
        self.planned.extend(out)
        return out

    def _mix(self, count: int, rng: random.Random) -> list[str]:
        """Route names in the configured proportions (largest remainders), shuffled."""
        sms = self.sms_share / 2
        share = {**{k: v * (1 - self.sms_share) for k, v in self.share.items()},
                 "sms-clean": sms, "sms-simfarm": sms}  # fmt: skip
        total = sum(share.values()) or 1.0
        exact = {k: count * v / total for k, v in share.items()}
        counts = {k: int(v) for k, v in exact.items()}
        by_remainder = sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)
        for k in by_remainder[: count - sum(counts.values())]:
            counts[k] += 1
        kinds = [k for k, n in counts.items() for _ in range(n)]
        rng.shuffle(kinds)
        return kinds

    async def place(
        self,
        tests: Sequence[PlannedTest],
        probes: Mapping[str, Probe],
        *,
        clock: Callable[[], float],
        ring_interval: float = 0.5,
        on_placed: Callable[[PlannedTest], None] | None = None,
    ) -> None:
        """Place each test at its time on its probe (as the network would deliver it)."""
        for test in sorted(tests, key=lambda t: t.at):
            delay = test.at - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            probe = probes[test.expected.probe]
            if test.expected.kind == "sms":
                text = TEST_TEXTS[int(test.expected.id[-4:], 16) % len(TEST_TEXTS)]
                probe.receive_sms(test.cli, text)
            elif test.route == "lost":
                pass  # the call dies on the way
            elif test.route == "stripped":
                probe.incoming_call("", ton=129, validity=2, rings=2, interval=ring_interval)
            else:
                probe.incoming_call(test.cli, ton=145, rings=2, interval=ring_interval)
            if on_placed is not None:
                on_placed(test)

    def plan_file(self) -> str:
        """The planned tests as a JSON plan file (the format `gateway.probes.simbox.load_plan`
        reads)."""
        rows = [
            {
                "id": t.expected.id,
                "probe": t.expected.probe,
                "a_number": t.expected.a_number,
                "start": t.expected.start,
                "end": t.expected.end,
                "kind": t.expected.kind,
                "route": t.expected.route,
            }
            for t in self.planned
        ]
        return json.dumps(rows, indent=1)

    def expected_outcomes(self) -> Counter[str]:
        """What a correct gateway concludes, per outcome (for the demo's summary and tests)."""
        names = {"clean": "clean", "simbox": "simbox", "stripped": "cli_missing",
                 "lost": "no_arrival", "simfarm": "simfarm"}  # fmt: skip
        return Counter(names[t.route] for t in self.planned)
