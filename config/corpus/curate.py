"""Curate /work/corpus-raw/*.jsonl into the project's corpus: config/corpus/real-train.csv and
config/corpus/real-heldout.csv (split by publisher groups), with per-row provenance.

Rules (documented in config/corpus/README.md):
* verbatim texts only (helpers' rules); a fragment under 3 words or 15 characters is dropped
  (not a message);
* exact duplicates (case, spaces, punctuation, digits folded) are kept once per text; publishers
  sharing a text (or a near-duplicate: word 3-gram Jaccard >= 0.6) are one group, so the same
  scam quoted by two outlets never sits on both sides;
* caps per repository (a repository is one publisher): at most CAP rows, seeded sample;
* the two bank-SMS repositories are placed by hand: zenmoney/sms-formats (Kazakh banks) trains,
  sergei4/banksmsparser is held out; every other group goes where the running (label, lang)
  counts are thinner, in a fixed order (sha256 of the group's first publisher).
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import random
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

RAW = Path("/work/corpus-raw")
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/work/main/config/corpus")
CAP = 450
TRAIN_FIXED = {"github:zenmoney/sms-formats"}
HELDOUT_FIXED = {"github:sergei4/banksmsparser"}
A2P_THEMES_LEGIT = {"personal_chat", "chain_message", "comment", "review"}
SKIP_SOURCES = {
    "github:umputun/tg-spam",  # the shared tg-spam-ru set is used as its own source
    "github:jd1378/otphelper",  # AGPL-3.0: not mixed into the project's files
    "github:sarim2000/pennywiseai-tracker",  # AGPL-3.0
}


def key(text: str) -> str:
    t = text.lower().replace("ё", "е")
    t = re.sub(r"\d+", "0", t)
    t = re.sub(r"[^\w]+", " ", t)
    return " ".join(t.split())


def shingles(k: str) -> set[str]:
    w = k.split()
    if len(w) < 3:
        return {k}
    return {" ".join(w[i : i + 3]) for i in range(len(w) - 2)}


def _note(r: dict) -> str:
    licence = f" licence {r['licence']}" if r.get("licence") else ""
    return (r.get("note", "") + licence).strip()


def main() -> None:
    rows = []
    for f in sorted(glob.glob(str(RAW / "*.jsonl"))):
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    r = json.loads(line)
                    r["_file"] = Path(f).name
                    rows.append(r)
    kept = []
    dropped = Counter()
    for r in rows:
        text = r["text"].strip()
        if r["source"] in SKIP_SOURCES:
            dropped["tg-spam (shared set)"] += 1
            continue
        if len(text) < 15 or len(text.split()) < 3:
            dropped["fragment"] += 1
            continue
        r["text"] = text
        kept.append(r)
    # one row per text
    by_key: dict[str, dict] = {}
    for r in kept:
        k = key(r["text"])
        if k in by_key:
            by_key[k].setdefault("_also", set()).add(r["source"])
            if by_key[k]["label"] != r["label"]:
                print("label conflict:", r["text"][:80], file=sys.stderr)
            dropped["duplicate text"] += 1
            continue
        r["_key"] = k
        by_key[k] = r
    uniq = list(by_key.values())
    # caps per repository
    per_src: dict[str, list[dict]] = defaultdict(list)
    for r in uniq:
        per_src[r["source"]].append(r)
    rnd = random.Random(20261207)
    final = []
    for src, rs in sorted(per_src.items()):
        if len(rs) > CAP:
            dropped[f"cap {src}"] += len(rs) - CAP
            rs = rnd.sample(rs, CAP)
        final.extend(rs)
    # groups: union-find over publishers sharing (near-)duplicate texts
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    side_of = {x: "train" for x in TRAIN_FIXED} | {x: "heldout" for x in HELDOUT_FIXED}
    fixed_side: dict[str, str] = {x: side_of[x] for x in side_of}

    def union(a: str, b: str, *rows: dict) -> None:
        ra, rb = find(a), find(b)
        sa_, sb_ = fixed_side.get(ra), fixed_side.get(rb)
        if sa_ and sb_ and sa_ != sb_:  # would join the two bank repositories: the shared
            for r in rows:  # texts are dropped from the held-out side instead
                r["_near_train"] = True
            return
        parent[ra] = rb
        if sa_ and not sb_:
            fixed_side[rb] = sa_

    for r in final:
        find(r["source"])
        for other in sorted(r.get("_also", ())):
            union(r["source"], other, r)
    sh = [(r, shingles(r["_key"])) for r in final]
    for i in range(len(sh)):
        ri, si = sh[i]
        for j in range(i + 1, len(sh)):
            rj, sj = sh[j]
            if ri["source"] == rj["source"] or find(ri["source"]) == find(rj["source"]):
                continue
            inter = len(si & sj)
            if inter and inter / len(si | sj) >= 0.6:
                union(ri["source"], rj["source"], ri, rj)
    by_root: dict[str, list[dict]] = defaultdict(list)
    for r in final:
        by_root[find(r["source"])].append(r)
    # a group is named by its first publisher, whatever the union order made its root
    groups = {min(r["source"] for r in rs): rs for rs in by_root.values()}
    fixed_side = {min(r["source"] for r in by_root[root]): s for root, s in fixed_side.items()
                  if root in by_root}  # fmt: skip
    # split
    split: dict[str, str] = {}
    for g in groups:
        if g in fixed_side:
            split[g] = fixed_side[g]
    counts: dict[str, Counter] = {"train": Counter(), "heldout": Counter()}
    for g, s in split.items():
        for r in groups[g]:
            counts[s][(r["label"], r["lang"])] += 1
    order = sorted(
        (g for g in groups if g not in split), key=lambda g: hashlib.sha256(g.encode()).hexdigest()
    )
    for g in order:
        cells = Counter((r["label"], r["lang"]) for r in groups[g])
        # the side where this group's cells are thinner
        need = {s: sum(n * (counts[s][c] + 1) for c, n in cells.items()) for s in counts}
        side = "train" if need["train"] <= need["heldout"] else "heldout"
        split[g] = side
        counts[side].update(cells)
    OUT.mkdir(parents=True, exist_ok=True)
    fields = [
        "label",
        "text",
        "source",
        "route",
        "lang",
        "theme",
        "channel",
        "publisher",
        "url",
        "note",
    ]
    for side in ("train", "heldout"):
        out = [r for g in sorted(groups) if split[g] == side for r in groups[g]]
        if side == "heldout":
            near = [r for r in out if r.get("_near_train")]
            dropped["held-out near-duplicate of a training bank template"] += len(near)
            out = [r for r in out if not r.get("_near_train")]
        out.sort(key=lambda r: (r["label"], r["lang"], r["source"], r["text"]))
        path = OUT / f"real-{side}.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
            w.writeheader()
            for r in out:
                legit = r["label"] == "legit"
                a2p = legit and r.get("theme") not in A2P_THEMES_LEGIT
                w.writerow(
                    {
                        "label": "ham" if legit else "fraud",
                        "text": r["text"],
                        "source": r.get("sender", "") if a2p else "",
                        "route": "a2p" if a2p else "",
                        "lang": r["lang"],
                        "theme": r["theme"],
                        "channel": r["channel"],
                        "publisher": r["source"],
                        "url": r["url"],
                        "note": _note(r),
                    }
                )
        c = Counter((r["label"], r["lang"]) for r in out)
        print(side, len(out), "publishers", len({r["source"] for r in out}), sorted(c.items()))
    print("dropped", dict(dropped))


if __name__ == "__main__":
    main()
