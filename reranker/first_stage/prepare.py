"""Building the rerank input file: a first-stage run joined with query and passage texts."""

from __future__ import annotations

import functools
import logging
import sqlite3
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from reranker.io.corpus import iter_corpus
from reranker.io.errors import InputError
from reranker.io.passage_store import add_wanted, copy_wanted_passages, open_passage_store
from reranker.io.queries import read_queries
from reranker.io.rerank_input import RerankCandidate, format_candidate
from reranker.io.runs import Run, RunBlocks, iter_run, run_blocks
from reranker.io.summary import write_summary
from reranker.io.textio import atomic_output

logger = logging.getLogger(__name__)
PASSAGE_BATCH = 100_000  # corpus passages per statement


@dataclass(frozen=True)
class PrepareStats:
    queries: int
    candidates: int
    skipped_missing: int


def prepare_rerank_file(
    query_source: str | Mapping[str, str],
    corpus: str,
    retrieval: str,
    output_path: str,
    *,
    depth: int | None = 1000,
    run_format: str = "auto",
    query_split: str = "dev",
    query_revision: str | None = None,
    corpus_revision: str | None = None,
    skip_missing: bool = False,
    arguments: dict | None = None,
    fingerprint: str | None = None,
) -> PrepareStats:
    """The prepare stage: read a first-stage run (its top `depth` per query) and the queries, join them with the
    passage texts (`join_run_with_texts`) into `output_path`, and write its summary.

    Args:
        query_source: queries: a TSV `qid<TAB>query`, a JSONL with `query_id`/`query` (or BEIR's `_id`/`text`),
            a Hub dataset, or the queries themselves (qid -> text).
        corpus: passages: a JSONL `{docid, title, text}` (or BEIR's `{_id, title, text}`), a TSV `pid<TAB>text`,
            or a Hub corpus.
        retrieval: the run: TREC, MS MARCO `qid pid rank` or `qid pid score` (`run_format` to force one).
        output_path: the rerank input JSONL to write.
        depth: candidates kept per query (None: all).
        query_split, query_revision, corpus_revision: for Hub datasets.
        skip_missing: leave out candidates whose passage is not in the corpus instead of stopping.
        arguments: settings to record in the summary.
        fingerprint: the job's fingerprint, recorded in the summary for `finished_summary`.

    Returns:
        Counts of queries, candidates written and candidates skipped.

    Example:
        >>> stats = prepare_rerank_file("dev600/queries.tsv", "corpus.jsonl.gz", "dev600/run.bm25.trec", "r.jsonl")
    """
    started = time.perf_counter()
    run = iter_run(retrieval, run_format, depth)
    queries = query_source
    if not isinstance(query_source, Mapping):
        queries = functools.partial(read_queries, query_source, query_split, query_revision)
    stats = join_run_with_texts(queries, run, retrieval, corpus, output_path, skip_missing, corpus_revision)
    write_summary(output_path, "prepare", arguments or {}, queries=stats.queries, candidates=stats.candidates,
                  skipped_missing=stats.skipped_missing, seconds=round(time.perf_counter() - started, 3),
                  fingerprint=fingerprint)  # fmt: skip
    return stats


def join_run_with_texts(
    queries: Mapping[str, str] | Callable[[], Mapping[str, str]],
    run: Run | RunBlocks,
    run_path: str,
    corpus: str,
    output_path: str,
    skip_missing: bool = False,
    corpus_revision: str | None = None,
) -> PrepareStats:
    """Write `{query_id, query, docid, title, text, score}` lines in run order.

    Memory stays bounded whatever the run's and the corpus's sizes: the candidates and the passages they name go
    into a throw-away SQLite store (`reranker.io.passage_store`) in a folder beside the output, the corpus is read
    once, and the lines come out of a join in run order. A run query without text, or (unless `skip_missing`) a
    run docid missing from the corpus, is an InputError naming the run line.

    Args:
        queries: qid -> query text, or what reads them (called once the run has been read and checked, so that
            a bad run is reported before a slow or bad query source).
        run: the run, in memory (`read_run`) or streamed (`iter_run`).
        run_path: the run's file, for error messages.
        corpus: the passages (see `prepare_rerank_file`).
        output_path: the rerank input JSONL to write.
        skip_missing: leave out candidates whose passage is not in the corpus instead of stopping.
        corpus_revision: for a Hub corpus.

    Returns:
        Counts of queries, candidates written and candidates skipped.
    """
    out_path = Path(output_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_path.name}.prepare.", dir=out_path.parent) as work:
        db = open_passage_store(Path(work) / "store.sqlite", durable=False)
        try:
            firsts = _store_candidates(db, run)
            queries = queries if isinstance(queries, Mapping) else queries()
            _check_queries(firsts, queries, run_path)
            passages = tqdm(iter_corpus(corpus, corpus_revision), desc="reading corpus", unit=" passages",
                            mininterval=1)  # fmt: skip
            copy_wanted_passages(db, passages, corpus, PASSAGE_BATCH)
            written, skipped = _write_joined(db, queries, run_path, output_path, skip_missing)
        finally:
            db.close()
    if skipped:
        logger.warning("skipped %d candidates whose passage is not in the corpus", skipped)
    return PrepareStats(len(firsts), written, skipped)


def _store_candidates(db: sqlite3.Connection, run: Run | RunBlocks) -> list[tuple[str, int]]:
    """Put the run's candidates, in run order, into table `candidates` and their docids into `wanted`; return
    each query's id and the run line of its best candidate (a pair per query, as small as the queries)."""
    # score untyped: a REAL column stores -0.0 as 0.0, and the output would not be the run's
    db.execute("CREATE TABLE candidates (seq INTEGER PRIMARY KEY, qid TEXT, docid TEXT, score, line INTEGER)")
    firsts = []
    for qid, entries in run_blocks(run):
        db.executemany("INSERT INTO candidates (qid, docid, score, line) VALUES (?, ?, ?, ?)",
                       [(qid, entry.docid, entry.score, entry.line) for entry in entries])  # fmt: skip
        add_wanted(db, (entry.docid for entry in entries))
        firsts.append((qid, entries[0].line))
    return firsts


def _check_queries(firsts: list[tuple[str, int]], queries: Mapping[str, str], run_path: str) -> None:
    """InputError naming the run line of the first run query (in run order) that has no text."""
    for qid, line in firsts:
        if qid not in queries:
            raise InputError(run_path, line, f"query {qid!r} is not in the query set")


def _write_joined(
    db: sqlite3.Connection, queries: Mapping[str, str], run_path: str, output_path: str, skip_missing: bool
) -> tuple[int, int]:
    """Write each candidate, in run order, with its passage; return (written, skipped)."""
    rows = db.execute("SELECT c.qid, c.docid, c.score, c.line, p.title, p.text FROM candidates c "
                      "LEFT JOIN passages p ON p.pid = c.docid ORDER BY c.seq")  # fmt: skip
    written = skipped = 0
    with atomic_output(output_path) as out:
        for qid, docid, score, line, title, text in tqdm(rows, desc="writing rerank file", unit=" lines",
                                                         mininterval=1):  # fmt: skip
            if text is None:
                if not skip_missing:
                    raise InputError(run_path, line, f"passage {docid!r} is not in the corpus (--skip_missing skips)")
                skipped += 1
                continue
            out.write(format_candidate(RerankCandidate(qid, queries[qid], docid, title, text, score)))
            written += 1
    return written, skipped
