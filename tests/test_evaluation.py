"""`fraudgate eval` measures the whole stack: every row inspected as the pipeline inspects it,
with its traffic context (sender, route), and reported per language, theme, channel, route."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli.evaluation import ROW_SPACING, Row, breakdown, event_for
from gateway.domain import Decision, Route

CSV = """label,text,source,route,lang,theme,channel,publisher
fraud,"Ваша карта заблокирована! Назовите код из SMS: +7 701 555 44 33",,,ru,code,sms,a.kz
fraud,"Картаңыз бұғатталды, kaspi-bank.kz-secure.com сілтемесіне өтіңіз",,,kk,card,sms,b.kz
ham,"Покупка: 6707т MAGNUM AF 19-5 Доступно: 139 296,44т",Kaspi.kz,a2p,ru,card_transaction,sms,c
ham,"Код подтверждения: 4821. Никому не сообщайте этот код",Kaspi.kz,a2p,ru,otp,sms,c
ham,"Сәлем! Кешке кездесеміз бе?",,,kk,personal_chat,sms,d
"""


def test_a_row_becomes_the_event_the_pipeline_would_build() -> None:
    local = event_for(Row("text", True), 3)
    assert (local.route, local.source, local.source_ton, local.smsc) == (
        Route.LOCAL, "77010000003", 1, "local",
    )  # fmt: skip
    a2p = event_for(Row("text", False, source="Kaspi.kz", route="a2p"), 4, lambda s: "kaspi-a2p")
    assert (a2p.route, a2p.source_ton, a2p.smsc) == (Route.A2P, 5, "kaspi-a2p")
    unnamed = event_for(Row("text", False, route="a2p"), 5)
    assert (unnamed.source, unnamed.smsc) == ("INFO", "a2p")
    assert a2p.received_at - local.received_at == ROW_SPACING  # no memory links two rows
    with pytest.raises(ValueError, match="route 'p2p'"):
        event_for(Row("text", True, route="p2p"), 0)


def test_breakdown_counts_flags_and_blocks_per_language() -> None:
    rows = [Row("a", True, lang="kk"), Row("b", False, lang="kk"), Row("c", False, lang="ru")]
    b = breakdown(rows, [Decision.FLAG, Decision.BLOCK, Decision.ALLOW])
    kk = b.by["lang"]["kk"]
    assert (kk.caught, kk.fraud, kk.legit_flagged, kk.legit_blocked) == (1, 1, 1, 1)
    assert b.total.recall == 1.0 and b.total.flag_rate == 0.5 and b.total.block_rate == 0.5


def test_eval_json_has_the_stack_figures_and_breakdowns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "c.csv"
    corpus.write_text(CSV, encoding="utf-8")
    assert main(["eval", "--corpus", str(corpus), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("precision", "recall", "f1", "fpr", "n", "legit_blocked", "block_rate"):
        assert key in out
    assert out["stack"] == "whole" and out["n"] == 5
    assert set(out["by_lang"]) == {"ru", "kk"}
    assert out["by_route"]["a2p"]["legit"] == 2
    assert out["by_lang"]["kk"]["fraud"] == 1
    # the classifier alone is still there for its own measurements
    assert main(["eval", "--corpus", str(corpus), "--json", "--classifier-only"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert alone["stack"] == "classifier" and "by_lang" not in alone
