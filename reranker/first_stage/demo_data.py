"""A small real data slice from the Hub, for `make demo` on a networked machine without `../shared/data/offline`
(the command: `python -m reranker.demo_data`).

From Tevatron/msmarco-passage's train split: the first `n_train` rows become `train.jsonl.gz`; the next `n_eval`
rows become an evaluation set `eval/`: their queries, their positives as qrels, and as candidates each query's
BM25 hard negatives with its positive, in a fixed shuffled order (`eval/run.shuffled.trec`), the passages of both
in `corpus.jsonl.gz`. Tevatron mined those negatives from BM25's top 200, so this is a reranking task on real
BM25 candidates; the candidate order is not BM25's, so the first-stage MRR@10 here is that of a random order.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

from reranker.io.corpus import Passage, format_passage_line
from reranker.io.qrels import format_qrels_line
from reranker.io.queries import format_query_line
from reranker.io.textio import atomic_output
from reranker.io.train_rows import format_train_row


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    with atomic_output(path) as out:
        out.writelines(lines)


def write_demo_slice(rows: Iterable[dict], output: Path, n_train: int, n_eval: int, seed: int = 13) -> None:
    """Split the first n_train + n_eval rows into a training file and an evaluation set (see the module doc)."""
    rows = iter(rows)
    train = [next(rows) for _ in range(n_train)]
    held_out = [next(rows) for _ in range(n_eval)]
    (output / "eval").mkdir(parents=True, exist_ok=True)
    _write_lines(output / "train.jsonl.gz", map(format_train_row, train))
    rng = random.Random(seed)
    corpus: dict[str, Passage] = {}
    with (
        atomic_output(output / "eval" / "queries.tsv") as queries,
        atomic_output(output / "eval" / "qrels.txt") as qrels,
        atomic_output(output / "eval" / "run.shuffled.trec") as run,
    ):
        for row in held_out:
            qid = row["query_id"]
            queries.write(format_query_line(qid, " ".join(row["query"].split())))
            candidates = [*row["positive_passages"][:1], *row["negative_passages"]]
            for passage in row["positive_passages"]:
                qrels.write(format_qrels_line(qid, passage["docid"], 1))
            rng.shuffle(candidates)
            for rank, passage in enumerate(candidates, start=1):
                corpus[passage["docid"]] = Passage(passage["docid"], passage.get("title") or "", passage["text"])
                run.write(f"{qid} Q0 {passage['docid']} {rank} {len(candidates) - rank + 1} shuffled\n")
    _write_lines(output / "corpus.jsonl.gz", map(format_passage_line, corpus.values()))
