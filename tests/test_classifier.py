"""The text classifier: corpus readers, model files, inference, the measured targets, the CLI."""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from gateway.cli import train as train_cli
from gateway.detect.classifier import (
    ClassifierDetector,
    ModelError,
    TextClassifier,
    analyze,
    confusion,
    cross_validate,
    load_model,
    normalise,
    train,
)
from gateway.detect.corpus import (
    CorpusError,
    CorpusReport,
    load_corpus,
    read_corpus,
    read_csv,
    read_uci,
)
from gateway.domain import SmsEvent

ROOT = Path(__file__).resolve().parent.parent
UCI = ROOT.parent / "shared" / "datasets" / "uci-sms-spam" / "SMSSpamCollection.tsv"
HELDOUT = ROOT / "tests" / "data" / "english_heldout.tsv"


@pytest.fixture(scope="module")
def uci() -> tuple[list[str], list[bool]]:
    # Data, not part of the project: read in place. Missing is a failure, never a skip.
    assert UCI.is_file(), f"the UCI SMS Spam Collection must be at {UCI}"
    return load_corpus(UCI, "uci")


@pytest.fixture(scope="module")
def uci_model(uci: tuple[list[str], list[bool]]) -> TextClassifier:
    texts, labels = uci
    return train(texts, labels, name="uci")


@pytest.fixture(scope="module")
def small_model() -> TextClassifier:
    texts = [
        "Привет, как дела? Увидимся вечером",
        "Купи хлеба по дороге домой",
        "Сәлем, кешке хабарлас",
        "Running late, see you at 7",
        "Your code is 4821. Do not share it",
        "Ваша карта заблокирована, перейдите https://bank-unblock.top/card",
        "Назовите код из SMS сотруднику банка +7 701 123 45 67",
        "Сіздің картаңыз бұғатталды, кодты айтыңыз",
        "WINNER! Claim your prize at http://prize-now.win",
        "Переведите деньги на безопасный счёт",
    ]
    return train(texts, [False] * 5 + [True] * 5, name="small")


# --------------------------------------------------------------------------------------------
# Corpus readers


def _uci(text: str, **kw: object) -> list[tuple[str, bool, int]]:
    lines = io.StringIO(text).readlines()
    return [(e.text, e.fraud, e.line) for e in read_uci(lines, **kw)]  # type: ignore[arg-type]


def _csv(text: str, **kw: object) -> list[tuple[str, bool, int]]:
    lines = io.StringIO(text, newline="").readlines()
    return [(e.text, e.fraud, e.line) for e in read_csv(lines, **kw)]  # type: ignore[arg-type]


def test_uci_header_is_detected_and_skipped() -> None:
    assert _uci("Label\tSMS\nham\thello\nspam\tWIN now\n") == [
        ("hello", False, 2),
        ("WIN now", True, 3),
    ]


def test_uci_without_header_keeps_the_first_line() -> None:
    rows = _uci("ham\thello\r\nSMISHING\tpay here\r\n")
    assert rows == [("hello", False, 1), ("pay here", True, 2)]


def test_uci_text_keeps_later_tabs_and_blank_lines_are_ignored() -> None:
    assert _uci("\nHam\ta\tb\n\n") == [("a\tb", False, 2)]


@pytest.mark.parametrize(
    ("line", "reason"),
    [("no tab here", "no tab"), ("\tsome text", "empty label"), ("spam\t   ", "empty text")],
)
def test_uci_malformed_line_is_an_error_naming_the_line(line: str, reason: str) -> None:
    with pytest.raises(CorpusError, match=rf"^corpus\.tsv:3: {reason}") as err:
        _uci(f"ham\tok\nspam\talso ok\n{line}\n", origin="corpus.tsv")
    assert err.value.line == 3


def test_uci_malformed_lines_can_be_skipped_and_are_counted() -> None:
    report = CorpusReport()
    rows = _uci("ham\tok\nbroken\nspam\tfine\n\tx\n", strict=False, report=report)
    assert [r[2] for r in rows] == [1, 3]
    assert report.read == 2
    assert report.skipped == [(2, "no tab between label and text"), (4, "empty label")]
    assert "2 malformed rows skipped (lines 2, 4" in report.summary("c.tsv")


def test_csv_columns_in_any_case_and_order_other_columns_ignored() -> None:
    data = (
        'id,TEXT,Label,extra\n1,"Hi, how are you?",ham,x\n2,"Pay ""now"" at\nhttp://x.top",Spam,y\n'
    )
    assert _csv(data) == [
        ("Hi, how are you?", False, 2),
        ('Pay "now" at\nhttp://x.top', True, 3),
    ]


def test_csv_line_numbers_count_multiline_records() -> None:
    data = 'label,text\nham,"one\ntwo\nthree"\nspam,\n'
    with pytest.raises(CorpusError, match=r":5: empty text"):
        _csv(data)


def test_csv_header_without_text_column_is_an_error_naming_the_columns() -> None:
    expected = r"header has no 'text' column \(columns: 'label', 'sms'\)"
    with pytest.raises(CorpusError, match=expected):
        _csv("label,sms\nham,hi\n")


def test_csv_short_row_is_malformed_and_can_be_skipped() -> None:
    data = "text,label\nhello,ham\nonly one field\nWIN,spam\n"
    with pytest.raises(CorpusError, match=r":3: 1 fields, the header has 2"):
        _csv(data)
    report = CorpusReport()
    assert [r[0] for r in _csv(data, strict=False, report=report)] == ["hello", "WIN"]
    assert report.skipped == [(3, "1 fields, the header has 2")]


def test_corpus_file_not_utf8_is_an_error_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_bytes(b"ham\tok\nspam\t\xff\xfe broken\n")
    with pytest.raises(CorpusError, match=r"bad\.tsv:2: not UTF-8"):
        load_corpus(path)


def test_corpus_is_streamed_rows_before_a_bad_one_are_yielded_first(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("\ufefflabel,text\nham,first\nham,second\nspam\n", encoding="utf-8")
    rows = read_corpus(path)  # csv guessed from the name; BOM ignored
    assert next(rows).text == "first"
    assert next(rows).text == "second"
    with pytest.raises(CorpusError, match=":4:"):
        next(rows)


def test_missing_corpus_file_is_a_corpus_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="cannot open"):
        read_corpus(tmp_path / "nope.tsv")


# --------------------------------------------------------------------------------------------
# Features and inference


def test_normalise_links_phones_and_digits() -> None:
    text = (
        "Перейдите https://Kaspi-Bank.kz-secure.com/unblock?id=7 или звоните "
        "+7 (701) 123-45-67, код 4821"
    )
    assert normalise(text) == (
        "перейдите  zzurl kaspi-bank.kz-secure.com  или звоните  zztel , код 0"
    )
    assert normalise("Ёлка 2 500 тг") == "елка 0 0 тг"


def test_analyze_gives_char_wb_ngrams_and_word_ngrams() -> None:
    chars, words = analyze("Hi, Bob!")
    assert " hi," in chars and "bob! " in chars and " " in chars
    assert words == ["hi", "bob", "hi bob"]


def test_inference_equals_scikit_learn_on_the_same_features(uci_model: TextClassifier) -> None:
    texts = [
        "WINNER!! Call 09061701461 to claim your £1000 prize",
        "Ваша карта заблокирована: https://kaspi.kz-secure.com",
        "Сәлем! Кешке кездесеміз бе?",
        "",
        "ok",
    ]
    reference = train_cli._sklearn_reference(uci_model)
    assert np.allclose(uci_model.decision_batch(texts), reference(texts), rtol=0, atol=1e-9)


def test_single_batched_and_memoised_scores_agree(small_model: TextClassifier) -> None:
    texts = ["Ваша карта заблокирована", "Купи хлеба", "Ваша карта заблокирована", "", "🙂"]
    batch = small_model.predict_batch(texts)
    one = [small_model.predict(t) for t in texts]
    small_model.forget()
    small_model.memo_size = 0
    try:
        cold = [small_model.predict(t) for t in texts]
    finally:
        small_model.memo_size = 1 << 14
    assert batch == pytest.approx(one, abs=1e-12)
    assert batch == pytest.approx(cold, abs=1e-12)
    assert all(0.0 <= p <= 1.0 for p in batch)
    assert batch[0] > 0.5 > batch[1]


# --------------------------------------------------------------------------------------------
# Model files


def test_model_round_trip_gives_identical_scores(tmp_path: Path, uci_model: TextClassifier) -> None:
    path = tmp_path / "uci.npz"
    uci_model.save(path)
    loaded = load_model(path)
    texts, _ = load_corpus(HELDOUT)
    assert loaded.predict_batch(texts) == uci_model.predict_batch(texts)
    assert (loaded.name, loaded.threshold) == ("uci", 0.5)
    assert loaded.metadata["examples"] == {"ham": 4827, "fraud": 747}
    again = tmp_path / "again.npz"
    loaded.save(again)
    assert again.read_bytes() == path.read_bytes()  # the same model, the same bytes


def _rewrite(src: Path, dst: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    with zipfile.ZipFile(src) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    change(members)
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return dst


def _header(part: str, key: str, value: object) -> Callable[[dict[str, bytes]], None]:
    """Set header.json's `part.key` (or the top-level `key` when part is empty) to value."""

    def apply(members: dict[str, bytes]) -> None:
        header = json.loads(members["header.json"])
        (header[part] if part else header)[key] = value
        members["header.json"] = json.dumps(header).encode()

    return apply


def _npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("coef.npy"), "member coef.npy is missing"),
        (lambda m: m.update({"header.json": b"{not json"}), "header.json: not valid UTF-8 JSON"),
        (_header("", "format", "other"), "format is 'other'"),
        (_header("", "version", 9), "version 9 is not supported"),
        (_header("analyzer", "char_ngrams", [2, 5]), r"analyzer.char_ngrams is \[2, 5\]"),
        (_header("model", "threshold", 1.5), r"model.threshold 1.5"),
        (_header("model", "intercept", "x"), "model.intercept must be a finite"),
        (_header("model", "word_features", 3), "header.json model.word_features says 3"),
        (lambda m: m.update({"idf.npy": _npy(np.ones(3))}), r"idf.npy: expected float64 of shape"),
        (lambda m: m.update({"coef.npy": b"garbage"}), "coef.npy: not a numpy .npy array"),
        (
            lambda m: m.update({"coef.npy": _npy(np.array([object()]), allow_pickle=True)}),
            "coef.npy: not a numpy .npy array without objects",
        ),
    ],
)
def test_broken_model_file_is_a_clear_error(
    tmp_path: Path,
    small_model: TextClassifier,
    change: Callable[[dict[str, bytes]], None],
    message: str,
) -> None:
    good = tmp_path / "good.npz"
    small_model.save(good)
    bad = _rewrite(good, tmp_path / "bad.npz", change)
    with pytest.raises(ModelError, match=message) as err:
        load_model(bad)
    assert str(err.value).startswith(str(bad))


def test_nan_weights_are_refused(tmp_path: Path, small_model: TextClassifier) -> None:
    good = tmp_path / "good.npz"
    small_model.save(good)
    coef = small_model.coef.copy()
    coef[0] = np.nan
    bad = _rewrite(good, tmp_path / "bad.npz", lambda m: m.update({"coef.npy": _npy(coef)}))
    with pytest.raises(ModelError, match="NaN or infinite"):
        load_model(bad)


def test_foreign_and_missing_files_are_clear_errors(tmp_path: Path) -> None:
    text = tmp_path / "model.pkl"
    text.write_bytes(b"\x80\x04\x95 a pickle is not a model")
    with pytest.raises(ModelError, match=r"model\.pkl: not a fraudgate model file .*ZIP archive"):
        load_model(text)
    with pytest.raises(ModelError, match="no such file"):
        load_model(tmp_path / "absent.npz")


# --------------------------------------------------------------------------------------------
# Measured behaviour


def test_five_fold_cv_on_uci_reaches_the_targets(uci: tuple[list[str], list[bool]]) -> None:
    texts, labels = uci
    result = cross_validate(texts, labels, k=5, seed=0)
    m = result.metrics
    assert m.n == 5574
    assert m.f1 >= 0.97, m
    assert m.fpr <= 0.005, m
    assert len(result.folds) == 5


def test_uci_model_holds_up_on_unseen_english(uci_model: TextClassifier) -> None:
    texts, labels = load_corpus(HELDOUT)
    assert (labels.count(False), labels.count(True)) == (70, 35)
    m = confusion(labels, uci_model.flags(texts))
    assert m.precision >= 0.85, m  # measured 0.969
    assert m.recall >= 0.75, m  # measured 0.886
    assert m.fpr <= 0.05, m  # measured 0.014


# Written for this test: neither in the built-in training texts nor in the demo scenario.
SMISHING = [
    "Halyk: по карте *4417 заблокирован платёж. Чтобы снять блокировку, войдите на "
    "halyk-unlock.help",
    "Ваши накопления хотят похитить. Срочно переведите их на безопасный счёт",
    "С вами свяжется сотрудник Нацбанка. Сообщите ему код из SMS для защиты вкладов",
    "Казпочта: посылка на таможне, оплатите сбор 990 тг до конца дня: kazpost-fee.site/pay",
    "Поздравляем! Ваш номер получил приз 300 000 тг. Заберите выигрыш: prize-kz.win",
    "Картаңыз бұғатталды! Бұғаттан шығару үшін сілтемеге кіріңіз: kaspi-unblock.top",
    "Қаражатыңызды сақтау үшін оны қауіпсіз шотқа аударыңыз, маман қоңырау шалады",
    "Сізге 1414 нөмірінен код келеді, оны қызметкерге айтыңыз",
    "Сәлемдемеңіз қоймада. Жеткізу үшін 500 теңге төлеңіз: post-kz.pay-now.site",
    "Полиция: на вас пытаются оформить кредит, перезвоните следователю +7 705 555 12 34",
]
EVERYDAY = [
    "Мама, я уже дома, всё хорошо",
    "Возьми, пожалуйста, детей из садика, я задерживаюсь",
    "Во сколько завтра встречаемся?",
    "Спасибо за подарок, очень понравился!",
    "Kaspi Магазин: заказ №58211 доставлен. Спасибо за покупку!",
    "Код подтверждения 551902. Никому его не сообщайте",
    "Сәлем, ертең сабақ нешеде басталады?",
    "Үйге жеттім, бәрі жақсы",
    "Тапсырысыңыз жолда, курьер кешке жеткізеді",
    "See you at the cafe at 6, ok?",
]


def test_default_model_flags_smishing_and_passes_everyday_messages() -> None:
    detector = ClassifierDetector.default()
    assert detector.rule_id == "classifier.builtin"
    messages = [SmsEvent(source="+77011234567", dest="+77051234567", text=t) for t in SMISHING]
    findings = detector.inspect_batch(messages)
    missed = [t for t, f in zip(SMISHING, findings, strict=True) if not f]
    assert len(missed) <= 1, missed  # measured: none missed; the weakest scores 0.59
    reason = findings[1][0]
    assert (reason.detector, reason.rule_id) == ("classifier", "classifier.builtin")
    assert 0.5 <= reason.score <= 1.0
    clean = [t for t in EVERYDAY if detector.inspect(SmsEvent("a", "b", t), 0.0)]
    assert clean == []
    assert detector.inspect(SmsEvent("a", "b", "   "), 0.0) == ()


def test_default_model_is_reproducible_from_the_shipped_texts() -> None:
    """The default model is trained from files in the repository (the real texts' training
    side, real messenger spam and chat, the project's templates): the same weights anywhere,
    and never a held-out row."""
    from gateway.detect.default_corpus import REAL_TRAIN, default_examples

    examples = default_examples()
    texts = [t for t, _, _ in examples]
    labels = [f for _, f, _ in examples]
    groups = {g for _, _, g in examples}
    assert labels.count(False) >= 1500 and labels.count(True) >= 500
    assert "tg-spam" in groups and any(g.startswith("github:") for g in groups)
    assert "real-heldout" not in str(REAL_TRAIN)
    heldout = (REAL_TRAIN.parent / "real-heldout.csv").read_text(encoding="utf-8")
    assert not {t for t in texts if len(t) > 40 and t in heldout}  # no held-out text trains
    again = train(texts, labels, name="builtin")
    first = ClassifierDetector.default().model
    assert again.char_features == first.char_features
    assert again.word_features == first.word_features
    assert np.array_equal(again.coef, first.coef) and again.intercept == first.intercept


def test_detector_threshold_and_pipeline_combination(small_model: TextClassifier) -> None:
    texts = ["Ваша карта заблокирована", "Купи хлеба"]
    flags = small_model.flags(texts)
    assert train_cli.detector_flags([ClassifierDetector(small_model)], texts) == flags
    strict = ClassifierDetector(small_model, threshold=0.999)
    assert strict.inspect(SmsEvent("a", "b", texts[0]), 0.0) == ()


# --------------------------------------------------------------------------------------------
# CLI


def _cli(
    configure: Callable[[argparse.ArgumentParser], None], argv: list[str]
) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(argv)


CSV = "label,text\n" + "\n".join(
    [f"ham,Привет! Встречаемся в {h}:00 у входа" for h in range(10)]
    + [f"ham,See you at {h} near the park" for h in range(10)]
    + [f"smishing,Ваша карта заблокирована {h} перейдите bank-{h}.top" for h in range(10)]
    + [f"spam,WIN a prize {h} now at prize-{h}.win" for h in range(10)]
)


def test_eval_json_prints_one_object_with_the_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], small_model: TextClassifier
) -> None:
    corpus = tmp_path / "c.csv"
    corpus.write_text(CSV, encoding="utf-8")
    model = tmp_path / "m.npz"
    small_model.save(model)
    for extra in (["--cv", "2"], ["--model", str(model)], []):
        args = _cli(train_cli.configure_eval, ["--corpus", str(corpus), "--json", *extra])
        assert train_cli.run_eval(args) == 0
        out = json.loads(capsys.readouterr().out)  # exactly one JSON document
        assert {"precision", "recall", "f1", "fpr", "n"} <= set(out)
        assert out["n"] == 40
        assert 0.0 <= out["fpr"] <= 1.0
        assert set(out["by_label"]) == {"ham", "smishing", "spam"}
    assert out["mode"] == "default"


def test_train_writes_a_model_that_eval_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "c.csv"
    corpus.write_text(CSV, encoding="utf-8")
    model = tmp_path / "m.npz"
    args = _cli(
        train_cli.configure_train,
        ["--corpus", str(corpus), "--out", str(model), "--cv", "2", "--name", "tiny", "--json"],
    )
    assert train_cli.run_train(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "tiny" and summary["ham"] == 20 and summary["fraud"] == 20
    loaded = load_model(model)
    assert loaded.metadata["metrics"]["cv"]["k"] == 2
    assert loaded.metadata["trained_on"][0]["source"] == str(corpus)
    args = _cli(train_cli.configure_eval, ["--corpus", str(corpus), "--model", str(model)])
    assert train_cli.run_eval(args) == 0
    assert "precision 1.0000" in capsys.readouterr().out


def test_cli_errors_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("ham\tok\nno tab\n", encoding="utf-8")
    args = _cli(train_cli.configure_eval, ["--corpus", str(bad), "--cv", "2"])
    assert train_cli.run_eval(args) == 2
    assert f"fraudgate eval: {bad}:2: no tab" in capsys.readouterr().err
    args = _cli(train_cli.configure_eval, ["--corpus", str(bad), "--model", str(bad)])
    assert train_cli.run_eval(args) == 2
    args = _cli(
        train_cli.configure_train,
        ["--corpus", "config/scenarios/demo.toml", "--out", str(tmp_path / "x.npz")],
    )
    assert train_cli.run_train(args) == 2
    assert "leakage" in capsys.readouterr().err
