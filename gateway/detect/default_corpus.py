"""What the default text classifier learns from (`ClassifierDetector.default()`,
`fraudgate train --builtin`), all shipped in the repository:

* `config/corpus/real-train.csv`: real Russian / Kazakh fraud and legitimate texts, the
  training side of the publisher split (`config/corpus/README.md`); the held-out side is never
  read here;
* `config/corpus/tg-spam-ru/`: real Russian messenger spam and group chat (umputun/tg-spam's
  samples, MIT, its licence beside the files);
* the project's own templates (`gateway/detect/seed_texts.py`): a supplement, never the
  evidence.

Each example keeps a group (the publisher, "tg-spam", or the template's id), so cross-validation
can keep a publisher's or a template's texts in one fold.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

from gateway.detect.corpus import read_corpus
from gateway.detect.seed_texts import builtin_examples
from gateway.detect.seed_texts import describe as describe_seeds

CORPUS_DIR: Final = Path(__file__).resolve().parent.parent.parent / "config" / "corpus"
REAL_TRAIN: Final = CORPUS_DIR / "real-train.csv"
TG_SPAM: Final = CORPUS_DIR / "tg-spam-ru"

Example = tuple[str, bool, str]  # text, fraud?, group


def real_examples(path: Path = REAL_TRAIN) -> list[Example]:
    return [(ex.text, ex.fraud, ex.meta.get("publisher", path.name)) for ex in read_corpus(path)]


def tg_spam_examples(folder: Path = TG_SPAM) -> list[Example]:
    out: list[Example] = []
    for name, fraud in (("spam-samples.txt", True), ("ham-samples.txt", False)):
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append((line.strip(), fraud, "tg-spam"))
    return out


def default_examples() -> list[Example]:
    """Every example of the default model, in a fixed order."""
    return [*real_examples(), *tg_spam_examples(), *builtin_examples()]


def describe() -> list[dict[str, object]]:
    """What the default corpus is, for a model's metadata."""
    out: list[dict[str, object]] = []
    for path, examples in ((REAL_TRAIN, real_examples()), (TG_SPAM, tg_spam_examples())):
        files = [path] if path.is_file() else sorted(path.glob("*-samples.txt"))
        digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
        labels = [fraud for _, fraud, _ in examples]
        out.append({"source": str(path.relative_to(CORPUS_DIR.parent.parent)), "sha256": digest,
                    "ham": labels.count(False), "fraud": labels.count(True)})  # fmt: skip
    out.append(describe_seeds())
    return out
