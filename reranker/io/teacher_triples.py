"""The published MS MARCO teacher scores (Hofstätter et al., 2020), as training rows.

The file (`bert_cat_ensemble_msmarcopassage_train_scores_ids.tsv`) has one line per training triple:
`pos_score<TAB>neg_score<TAB>qid<TAB>pid_pos<TAB>pid_neg`, about 40 million of them, not grouped by query. They are
joined with the queries (`qid<TAB>query`) and the collection (`pid<TAB>text`) into one Tevatron row per query, each
passage with its teacher `score`. Memory stays bounded: the triples are sorted by query on disk (sorted runs of
`run_lines` lines, then merged), and the passages the triples name are looked up in an SQLite table on disk.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from reranker.io.corpus import iter_corpus
from reranker.io.errors import InputError
from reranker.io.fields import parse_float, split_columns
from reranker.io.queries import read_queries
from reranker.io.summary import write_summary
from reranker.io.textio import atomic_output, iter_lines
from reranker.io.train_rows import format_train_row

logger = logging.getLogger(__name__)
Triple = tuple[str, int, str, str, float, float]  # qid, line, pid_pos, pid_neg, pos_score, neg_score


@dataclass(frozen=True)
class TriplesStats:
    queries: int
    triples: int
    positives: int
    negatives: int
    score_disagreements: int  # a passage scored differently on two lines of its query: the first score is kept


def _read_triples(path: str | os.PathLike) -> Iterator[Triple]:
    for line, text in iter_lines(path):
        pos_score, neg_score, qid, pid_pos, pid_neg = split_columns(text, (5,), path, line, sep="\t")
        for what, value in (("qid", qid), ("pid_pos", pid_pos), ("pid_neg", pid_neg)):
            if not value.strip():
                raise InputError(path, line, f"{what} is empty")
        yield (qid, line, pid_pos, pid_neg, parse_float(pos_score, "pos_score", path, line),
               parse_float(neg_score, "neg_score", path, line))  # fmt: skip


def _sorted_runs(triples: Iterator[Triple], folder: Path, run_lines: int) -> list[Path]:
    """Write the triples in sorted runs of `run_lines` (by qid, then line), one file each."""
    runs = []
    while batch := list(itertools.islice(triples, run_lines)):
        batch.sort()
        path = folder / f"run{len(runs):05d}.tsv"
        with open(path, "w", encoding="utf-8") as out:
            out.writelines("\t".join(map(str, triple)) + "\n" for triple in batch)
        runs.append(path)
    return runs


def _read_run(path: Path) -> Iterator[Triple]:
    with open(path, encoding="utf-8") as handle:
        for text in handle:
            qid, line, pid_pos, pid_neg, pos_score, neg_score = text.rstrip("\n").split("\t")
            yield qid, int(line), pid_pos, pid_neg, float(pos_score), float(neg_score)


def _passage_table(collection: str, wanted: sqlite3.Connection) -> None:
    """Fill table `passages` with the texts of the pids in table `wanted`, streaming the collection."""
    wanted.execute("CREATE TABLE passages (pid TEXT PRIMARY KEY, title TEXT, text TEXT)")
    rows = ((p.docid, p.title, p.text) for _, p in tqdm(iter_corpus(collection), desc="reading collection",
                                                           unit=" passages", mininterval=1))  # fmt: skip
    for batch in iter(lambda: list(itertools.islice(rows, 100_000)), []):
        wanted.executemany("INSERT OR IGNORE INTO passages SELECT ?, ?, ? WHERE ? IN (SELECT pid FROM wanted)",
                           [(pid, title, text, pid) for pid, title, text in batch])  # fmt: skip


def _groups(merged: Iterator[Triple]) -> Iterator[tuple[str, list[Triple]]]:
    for qid, triples in itertools.groupby(merged, key=lambda triple: triple[0]):
        yield qid, list(triples)


def import_teacher_triples(
    triples_path: str,
    queries_path: str,
    collection: str,
    output: str,
    *,
    run_lines: int = 2_000_000,
    arguments: dict | None = None,
) -> TriplesStats:
    """Turn a teacher-scored triples TSV into Tevatron training rows with scores (gzipped if `output` ends in .gz).

    Args:
        triples_path: `pos_score<TAB>neg_score<TAB>qid<TAB>pid_pos<TAB>pid_neg` lines.
        queries_path: the queries, `qid<TAB>query` (or JSONL).
        collection: the passages, `pid<TAB>text` or a Tevatron corpus JSONL.
        output: the training rows to write.
        run_lines: triples sorted in memory at a time.
        arguments: settings to record in the summary.

    Returns:
        What was written. A qid missing from the queries or a pid missing from the collection is an InputError
        naming the triples line; nothing is written then.

    Example:
        >>> stats = import_teacher_triples("bert_cat_ensemble_msmarcopassage_train_scores_ids.tsv",
        ...                                "queries.train.tsv", "collection.tsv", "train.teacher.jsonl.gz")
    """
    started = time.perf_counter()
    queries = read_queries(queries_path)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".triples.", dir=Path(output).parent))
    try:
        # one iterator over the bar: islice-ing the bar itself would start (and lose an item to) a new one each time
        triples = iter(tqdm(_read_triples(triples_path), desc="sorting triples", unit=" triples", mininterval=1))
        runs = _sorted_runs(triples, folder, run_lines)
        store = sqlite3.connect(folder / "passages.sqlite")
        store.execute("CREATE TABLE wanted (pid TEXT PRIMARY KEY)")
        for run in runs:
            store.executemany("INSERT OR IGNORE INTO wanted VALUES (?)",
                              ((pid,) for t in _read_run(run) for pid in (t[2], t[3])))  # fmt: skip
        _passage_table(collection, store)
        stats = _write_rows(_groups(heapq.merge(*map(_read_run, runs))), queries, store, triples_path,
                            collection, output)  # fmt: skip
        store.close()
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    write_summary(output, "teacher triples", arguments or {}, **asdict(stats),
                  seconds=round(time.perf_counter() - started, 3))  # fmt: skip
    return stats


def _write_rows(groups, queries, store, triples_path, collection, output) -> TriplesStats:
    counts = {"queries": 0, "triples": 0, "positives": 0, "negatives": 0, "score_disagreements": 0}
    with atomic_output(output) as out:
        for qid, triples in tqdm(groups, desc="writing rows", unit=" queries", mininterval=1):
            if qid not in queries:
                raise InputError(triples_path, triples[0][1], f"qid {qid!r} is not in the queries")
            kinds: dict[str, dict[str, tuple[float, int]]] = {"positive": {}, "negative": {}}
            for _, line, pid_pos, pid_neg, pos_score, neg_score in triples:
                for kind, pid, score in (("positive", pid_pos, pos_score), ("negative", pid_neg, neg_score)):
                    other = kinds["negative" if kind == "positive" else "positive"]
                    if pid in other:
                        raise InputError(triples_path, line, f"passage {pid!r} is both a positive and a negative "
                                         f"of query {qid!r}")  # fmt: skip
                    first = kinds[kind].setdefault(pid, (score, line))
                    counts["score_disagreements"] += first[0] != score
            row = {"query_id": qid, "query": queries[qid]}
            for kind, scored in kinds.items():
                row[f"{kind}_passages"] = [_passage(store, pid, score, line, triples_path, collection, kind)
                                           for pid, (score, line) in scored.items()]  # fmt: skip
                counts[f"{kind}s"] += len(scored)
            out.write(format_train_row(row))
            counts["queries"] += 1
            counts["triples"] += len(triples)
    if counts["score_disagreements"]:
        logger.warning("%d passages were scored differently on two lines of their query; the first score was kept",
                       counts["score_disagreements"])  # fmt: skip
    return TriplesStats(**counts)


def _passage(store, pid, score, line, triples_path, collection, kind) -> dict:
    found = store.execute("SELECT title, text FROM passages WHERE pid = ?", (pid,)).fetchone()
    if found is None:
        field = "pid_pos" if kind == "positive" else "pid_neg"
        raise InputError(triples_path, line, f"{field} {pid!r} is not in the collection {collection}")
    return {"docid": pid, "title": found[0], "text": found[1], "score": score}
