"""`fraudgate train --from-db`: the texts analysts' decisions labelled (feedback, decided
complaints, messages of decided cases), on real SQLite and PostgreSQL; revoked feedback,
undecided or reopened cases and erased texts teach nothing; no text is printed."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest

from gateway.cases import Actor, Cases, Evidence, Source
from gateway.cli import train as train_cli
from gateway.detect.classifier import load_model
from gateway.domain import Complaint, Decision, Inspected, Reason, SmsEvent, Verdict
from gateway.feedback import Judgement, Scope
from gateway.feedback.labels import DecisionLabels
from gateway.feedback.repository import FeedbackRepository
from gateway.feedback.service import FeedbackService
from gateway.registry import Registry
from gateway.store import Store
from gateway.switch.port import NoSwitch
from gateway.workdays import KzCalendar

T0 = 1_764_000_000.0
DAY = 86400.0
ANALYST = Actor("u-aigerim", "analyst")
CODE = Reason("content", "content.ru.code_request", 0.6, "asks for a code")
TEXTS = {
    "notice": "Kaspi: покупка 12 500 ₸ в Magnum. Код подтверждения 4821",  # flagged, wrong
    "missed": "Мама, это я, новый номер. Скинь 20 000 на карту",  # allowed, wrong: fraud
    "revoked": "Ваш заказ готов к выдаче в пункте 12",
    "erased": "Ваша посылка задержана, оплатите пошлину",
    "smishing": "Ваша карта заблокирована, назовите код из SMS",  # confirmed detection case
    "lottery": "Поздравляем, вы выиграли приз в лотерее Halyk",  # rejected detection case
    "appealed": "Сіздің картаңыз бұғатталды, кодты айтыңыз",  # rejected, then reopened
    "forwarded_fraud": "Мне пришло: «Служба безопасности банка, переведите на безопасный счёт»",
    "forwarded_ok": "Мне пришло: «Ваш тариф изменён с 1 декабря»",
    "forwarded_open": "Мне пришло: «Вы выиграли айфон»",
}


def sms(key: str, *, dest: str = "77019998877", at: float = T0) -> SmsEvent:
    return SmsEvent(source="77015550001", dest=dest, text=TEXTS[key], smsc="smsc-p2p",
                    received_at=at)  # fmt: skip


async def seed(store: Store) -> None:
    """Every origin of labels, and every kind of row that must not teach."""
    m = {k: sms(k) for k in ("notice", "missed", "revoked", "smishing", "lottery", "appealed")}
    m["erased"] = sms("erased", at=T0 - 100 * DAY)
    decisions = {"notice": Decision.FLAG, "revoked": Decision.FLAG, "erased": Decision.BLOCK}
    await store.record([
        Inspected(item, Verdict(0.6, decisions[k], [CODE]) if k in decisions
                  else Verdict(0.0, Decision.ALLOW, []))
        for k, item in m.items()
    ])  # fmt: skip
    await store.purge_text(T0 - 50 * DAY)
    service = FeedbackService(FeedbackRepository(store), clock=lambda: T0)
    who = {"hours": None, "actor": ANALYST.id, "role": ANALYST.role}
    await service.give(m["notice"].id, Judgement.WRONG, Scope.SENDER, "bank notice", **who)
    await service.give(m["missed"].id, Judgement.WRONG, Scope.MESSAGE, "missed scam", **who)
    gone = await service.give(m["revoked"].id, Judgement.RIGHT, Scope.MESSAGE, "oops", **who)
    await service.revoke(gone.id, by=ANALYST.id, reason="clicked the wrong message")
    await service.give(m["erased"].id, Judgement.RIGHT, Scope.MESSAGE, "scam", **who)

    cases = Cases(store, KzCalendar(), switch=NoSwitch(), registry=Registry(store), reports=None)
    for key, steps in [
        ("smishing", ["confirm"]),
        ("lottery", ["reject"]),
        ("appealed", ["reject", "close", "reopen"]),
        ("notice", ["reject"]),  # the analyst's feedback on this very message comes first
    ]:
        await decide(cases, Source.DETECTION_SMS, f"number:{key}", Evidence("message", m[key].id),
                     steps)  # fmt: skip
    for key, steps in [("forwarded_fraud", ["confirm"]), ("forwarded_ok", ["reject"]),
                       ("forwarded_open", [])]:  # fmt: skip
        forwarding = SmsEvent(source="77071112233", dest="1490", text=TEXTS[key], received_at=T0)
        complaint = Complaint("77071112233", TEXTS[key], T0, forwarding.id, "77015550001")
        verdict = Verdict(0.0, Decision.ALLOW, [])
        await store.record([Inspected(forwarding, verdict, complaint=complaint)])
        await decide(cases, Source.COMPLAINT, complaint.id, Evidence("complaint", complaint.id),
                     steps)  # fmt: skip


async def decide(
    cases: Cases, source: Source, external: str, evidence: Evidence, steps: list[str]
) -> None:
    case = await cases.open(source=source, numbers=["+77015550001"], received_at=T0,
                            evidence=[evidence], external_id=external)  # fmt: skip
    if steps:
        await cases.start_verification(case.id, ANALYST, "checking")
    for step in steps:
        if step == "close":
            await cases.close(case.id, ANALYST, "done")
        else:
            await getattr(cases, step)(case.id, ANALYST, f"{step}ed")


async def test_labels_come_from_decisions_only(store: Store) -> None:
    await seed(store)
    found = await DecisionLabels(store).read()
    got = {(t.origin, t.text, t.fraud) for t in found.texts}
    assert got == {
        ("feedback", TEXTS["notice"], False),
        ("feedback", TEXTS["missed"], True),
        ("cases", TEXTS["smishing"], True),
        ("cases", TEXTS["lottery"], False),
        ("complaints", TEXTS["forwarded_fraud"], True),
        ("complaints", TEXTS["forwarded_ok"], False),
    }
    assert {o: t.as_dict() for o, t in found.tally.items()} == {
        "feedback": {"fraud": 1, "legitimate": 1, "erased": 1},
        "complaints": {"fraud": 1, "legitimate": 1, "erased": 0},
        "cases": {"fraud": 1, "legitimate": 1, "erased": 0},
    }


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    train_cli.configure_train(parser)
    return parser.parse_args(argv)


def test_train_from_db_counts_each_origin_and_prints_no_text(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def prepare() -> None:
        async with await Store.open(db_url) as store:
            await store.migrate()
            await seed(store)

    asyncio.run(prepare())
    out = tmp_path / "decisions.npz"
    args = _cli(["--from-db", "--store", db_url, "--out", str(out), "--json"])
    assert train_cli.run_train(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "decisions" and (summary["ham"], summary["fraud"]) == (3, 3)
    assert summary["from_db"]["feedback"] == {"fraud": 1, "legitimate": 1, "erased": 1}
    assert summary["from_db"]["cases"] == {"fraud": 1, "legitimate": 1, "erased": 0}
    assert summary["from_db"]["store"].endswith(db_url.rsplit("/", 1)[-1])  # password hidden
    model = load_model(out)
    assert model.metadata["trained_on"][-1]["source"] == "database"

    config = tmp_path / "gw.toml"
    config.write_text(f'[store]\nurl = "{db_url}"\n', encoding="utf-8")
    args = _cli(["--builtin", "--from-db", "-c", str(config), "--out", str(out), "--name", "both"])
    assert train_cli.run_train(args) == 0
    printed = capsys.readouterr()
    line = printed.out.splitlines()[0]
    assert line.startswith("from the database ")
    assert line.endswith(
        "feedback 2 (1 fraud, 1 legitimate), complaints 2 (1 fraud, 1 legitimate), "
        "case messages 2 (1 fraud, 1 legitimate); 1 erased, not used"
    )
    for text in TEXTS.values():
        assert text not in printed.out and text not in printed.err
    assert load_model(out).name == "both"


def test_train_from_db_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "m.npz")
    args = _cli(["--store", "sqlite:///x.db", "--out", out])
    assert train_cli.run_train(args) == 2
    assert "give --from-db" in capsys.readouterr().err
    empty = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    args = _cli(["--from-db", "--store", empty, "--out", out])  # no schema: a typed store error
    assert train_cli.run_train(args) == 2
    assert "fraudgate train: store feedback.labels failed" in capsys.readouterr().err
