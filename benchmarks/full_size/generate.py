"""Synthetic MS MARCO at its real size (or a fraction of it), for timing and memory measurements of the stages.

    python benchmarks/full_size/generate.py --scale 0.01 --out DIR [--seed 0]

Writes into DIR (only the files it lacks; each is written under a temporary name and renamed when complete):

- `collection.tsv`: `pid<TAB>text`, pids 0..P-1 as in MS MARCO (P = 8,841,823 x scale);
- `queries.train.tsv`, `queries.dev.tsv`: `qid<TAB>query` (400,000 and 6,980 x scale, disjoint qids);
- `run.dev.trec`: TREC run of 1000 candidates per dev query (`qid Q0 pid rank score full_size`);
- `qrels.dev.txt`: one relevant passage per dev query (`qid 0 pid 1`);
- `triples.tsv`: Hofstätter-format teacher triples (`pos_score<TAB>neg_score<TAB>qid<TAB>pid_pos<TAB>pid_neg`,
  40,000,000 x scale lines, in random query order as in the published file);
- `train.jsonl.gz`: Tevatron training rows (one positive and 30 negatives with their texts) for the train queries.

Passage and query lengths (in words) follow the offline sample's (`/work/shared/data/offline`); the words come
from its texts. A passage's text is a function of its pid alone, so every file that quotes it agrees with
`collection.tsv` without holding the collection in memory. Everything is deterministic from `--seed`.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

FULL = {"passages": 8_841_823, "train_queries": 400_000, "dev_queries": 6_980, "triples": 40_000_000}
DEPTH = 1000  # candidates per dev query
NEGATIVES = 30  # per Tevatron training row
OFFLINE = Path(os.environ.get("RERANKER_OFFLINE_DATA", Path(__file__).resolve().parents[3] / "shared/data/offline"))
DEV_QID_BASE = 2_000_000  # train qids lie below it, dev qids at or above it: the two sets are disjoint


def sizes(scale: float) -> dict[str, int]:
    """The number of passages, train queries, dev queries and triples at `scale` (1.0 = MS MARCO's), at least 1.

    Example:
        >>> sizes(0.01)["passages"]
        88418
    """
    if not 0 < scale <= 1:
        raise SystemExit(f"--scale must be in (0, 1], not {scale}")
    return {name: max(1, round(count * scale)) for name, count in FULL.items()}


class Texts:
    """Texts drawn from the offline sample: `passage(pid)` and `query(qid)` depend on the id alone."""

    def __init__(self, offline: Path = OFFLINE) -> None:
        passages, queries = [], []
        with gzip.open(offline / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
            passages = [json.loads(line)["text"].split() for line in handle]
        for name in ("dev600/queries.tsv", "val/queries.tsv"):
            with open(offline / name, encoding="utf-8") as handle:
                queries += [line.rstrip("\n").split("\t", 1)[1].split() for line in handle]
        self.passage_words = [w for words in passages for w in words]
        self.passage_lengths = [len(words) for words in passages if words]
        self.query_words = [w for words in queries for w in words]
        self.query_lengths = [len(words) for words in queries if words]

    @staticmethod
    def _text(words: list[str], lengths: list[int], key: int) -> str:
        # multiplicative hashing spreads consecutive ids over the lengths and the words: no RNG state per id
        length = lengths[(key * 2_654_435_761) % len(lengths)]
        start = (key * 40_503 + 12_345) % (len(words) - length)
        return " ".join(words[start : start + length])

    def passage(self, pid: int) -> str:
        return self._text(self.passage_words, self.passage_lengths, pid)

    def query(self, qid: int) -> str:
        return self._text(self.query_words, self.query_lengths, qid)


def train_qids(count: int, seed: int) -> list[int]:
    """`count` distinct train qids below DEV_QID_BASE, sorted (MS MARCO's train qids are sparse like these)."""
    return sorted(random.Random(seed).sample(range(1, DEV_QID_BASE), count))


def dev_qids(count: int, seed: int) -> list[int]:
    return sorted(random.Random(seed + 1).sample(range(DEV_QID_BASE, DEV_QID_BASE + 10 * count), count))


def positive_of(qid: int, passages: int) -> int:
    """The relevant passage of a query (a function of its qid)."""
    return (qid * 2_654_435_761) % passages


def _write(path: Path, lines: Callable[[], Iterator[str]]) -> None:
    """Write `lines()` to `path` through a temporary file (gzip level 1 for .gz: speed over size)."""
    if path.exists():
        return
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as raw, contextlib.ExitStack() as stack:
        target = raw
        if path.suffix == ".gz":  # no name or time in the header: the same seed gives the same bytes
            target = stack.enter_context(gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=1, mtime=0))
        out = stack.enter_context(io.TextIOWrapper(target, encoding="utf-8", newline="\n"))
        batch: list[str] = []
        for line in lines():
            batch.append(line)
            if len(batch) >= 10_000:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch))
    os.replace(tmp, path)


def generate(out: str | os.PathLike, scale: float, seed: int = 0, texts: Texts | None = None) -> dict[str, int]:
    """Write the synthetic files that `out` lacks.

    Args:
        out: the folder to write (created if needed).
        scale: the fraction of MS MARCO's size, in (0, 1].
        seed: what every random choice derives from.
        texts: the word pools (default: read from the offline sample).

    Returns:
        The sizes written (see `sizes`), plus `run_lines` (dev queries x 1000).

    Example:
        >>> generate("/work/fullsize_data/s0.01", 0.01)["run_lines"]
        70000
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    n = sizes(scale)
    texts = texts or Texts()
    train, dev = train_qids(n["train_queries"], seed), dev_qids(n["dev_queries"], seed)
    passages = n["passages"]
    depth = min(DEPTH, passages)

    _write(folder / "collection.tsv", lambda: (f"{pid}\t{texts.passage(pid)}\n" for pid in range(passages)))
    _write(folder / "queries.train.tsv", lambda: (f"{q}\t{texts.query(q)}\n" for q in train))
    _write(folder / "queries.dev.tsv", lambda: (f"{q}\t{texts.query(q)}\n" for q in dev))
    _write(folder / "qrels.dev.txt", lambda: (f"{q} 0 {positive_of(q, passages)} 1\n" for q in dev))

    def run_lines() -> Iterator[str]:
        rng = random.Random(seed + 2)
        for qid in dev:
            pids = rng.sample(range(passages), depth)
            positive = positive_of(qid, passages)
            if positive not in pids and rng.random() < 0.8:  # BM25 top-1000 finds most relevant passages
                pids[rng.randrange(depth)] = positive
            score = 40.0
            for rank, pid in enumerate(pids, start=1):
                score -= rng.random() * 0.02
                yield f"{qid} Q0 {pid} {rank} {score:.4f} full_size\n"

    _write(folder / "run.dev.trec", run_lines)

    def triple_lines() -> Iterator[str]:
        rng = random.Random(seed + 3)
        for _ in range(n["triples"]):
            qid = train[rng.randrange(len(train))]  # the published file is not grouped by query
            positive = positive_of(qid, passages)
            negative = rng.randrange(passages)
            if negative == positive:
                negative = (negative + 1) % passages
            # the teacher scores a (query, positive) pair once: the same score on every line of the query
            pos_score = 2 + (qid * 40_503 % 1000) / 100
            yield f"{pos_score:.6f}\t{rng.uniform(-12, 6):.6f}\t{qid}\t{positive}\t{negative}\n"

    _write(folder / "triples.tsv", triple_lines)

    def train_rows() -> Iterator[str]:
        rng = random.Random(seed + 4)
        for qid in train:
            positive = positive_of(qid, passages)
            negatives = [pid for pid in rng.sample(range(passages), min(NEGATIVES + 1, passages)) if pid != positive]
            row = {"query_id": str(qid), "query": texts.query(qid),
                   "positive_passages": [{"docid": str(positive), "title": "", "text": texts.passage(positive)}],
                   "negative_passages": [{"docid": str(p), "title": "", "text": texts.passage(p)}
                                         for p in negatives[:NEGATIVES]]}  # fmt: skip
            yield json.dumps(row, ensure_ascii=False) + "\n"

    _write(folder / "train.jsonl.gz", train_rows)
    return {**n, "run_lines": len(dev) * depth}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, required=True, help="Fraction of MS MARCO's size, e.g. 0.01.")
    parser.add_argument("--out", required=True, help="Folder to write (files already there are kept).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(generate(args.out, args.scale, args.seed)))


if __name__ == "__main__":
    main()
