"""Language identification of SMS texts (gateway/detect/language.py), on real texts of the
corpus and on the hard shapes: Kazakh typed without its letters, bank notices full of Latin
merchant names, transliteration, mixed texts."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from gateway.detect.language import language

CORPUS = Path(__file__).resolve().parent.parent / "config" / "corpus"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Сіздің картаңыз бұғатталды", "kk"),
        ("Ваша карта заблокирована, позвоните в банк", "ru"),
        ("Сәлем! Мама, я задержусь, буду в 8", "mixed"),
        ("Operaciya po karte 5**9835 na summu -300.00KZT. Ostatok 1200", "translit"),
        ("Sizdiń kartańyz buǵattaldy", "translit"),
        ("Jyldamdyğy jaqsy. Raqmet", "translit"),
        ("Your parcel is waiting, please confirm the address", "en"),
        ("Покупка: −1 780.00 KZT YANDEX.GO Карта *9692 Остаток: 51 769.87 KZT", "ru"),
        ("KARTA *4417 26.10.18 OTMENA POKUPKA 38.90 RUB KOMISSIYA 0.00 RUB", "translit"),
        ("Жаксы клиника, даригер керемет", "kk"),
        ("ЖМИ 👉 https://t.me/jeton_games?start=x", "ru"),
        ("12345 :) 👍", "none"),
        ("", "none"),
    ],
)
def test_language_of_typical_shapes(text: str, lang: str) -> None:
    assert language(text) == lang


def test_agrees_with_the_corpus_labels_on_real_texts() -> None:
    """The collectors labelled each row's language by reading it; the identifier agrees on
    at least 95 % of the 1,630 real texts (the rest are mostly kk/mixed borderline cases)."""
    rows: list[dict[str, str]] = []
    for side in ("train", "heldout"):
        with open(CORPUS / f"real-{side}.csv", encoding="utf-8") as fh:
            rows.extend(csv.DictReader(fh))
    agree = Counter(r["lang"] == language(r["text"]) for r in rows)
    assert len(rows) > 1500
    assert agree[True] / len(rows) >= 0.95, agree
