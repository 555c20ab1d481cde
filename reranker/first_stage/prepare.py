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
from reranker.io.windows import SpanFinder, WindowSpec, cut_windows, span_finder, window_id

logger = logging.getLogger(__name__)
PASSAGE_BATCH = 100_000  # corpus passages per statement
WINDOW_CACHE = 4096  # documents whose windows are kept: a document recurs across the queries that retrieved it


@dataclass(frozen=True)
class PrepareStats:
    queries: int
    candidates: int
    skipped_missing: int
    windows: int | None = None  # lines written when documents are cut into windows


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
    windows: WindowSpec | None = None,
    tokenizer=None,
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
        windows: cut each document into windows (`reranker.io.windows`), one line each, docid `DOCID#N`
            (default: one line per document, as it is).
        tokenizer: the model's (fast) tokenizer, whose tokens `windows` of unit "tokens" count (default: words).

    Returns:
        Counts of queries, candidates (documents) written, candidates skipped and lines (windows) written.

    Example:
        >>> stats = prepare_rerank_file("dev600/queries.tsv", "corpus.jsonl.gz", "dev600/run.bm25.trec", "r.jsonl")
        >>> stats = prepare_rerank_file(queries, corpus, run, "w.jsonl", windows=WindowSpec(128, 64))
    """
    started = time.perf_counter()
    run = iter_run(retrieval, run_format, depth)
    queries = query_source
    if not isinstance(query_source, Mapping):
        queries = functools.partial(read_queries, query_source, query_split, query_revision)
    stats = join_run_with_texts(queries, run, retrieval, corpus, output_path, skip_missing, corpus_revision,
                                windows, tokenizer)  # fmt: skip
    counts = {"queries": stats.queries, "candidates": stats.candidates, "skipped_missing": stats.skipped_missing}
    if stats.windows is not None:
        counts["windows"] = stats.windows
    write_summary(output_path, "prepare", arguments or {}, **counts, seconds=round(time.perf_counter() - started, 3),
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
    windows: WindowSpec | None = None,
    tokenizer=None,
) -> PrepareStats:
    """Write `{query_id, query, docid, title, text, score}` lines in run order (a line per window with
    `windows`).

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
        windows, tokenizer: see `prepare_rerank_file`.

    Returns:
        Counts of queries, candidates written and candidates skipped (and lines written, with `windows`).
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
            cut = None if windows is None else _window_cutter(windows, span_finder(windows, tokenizer))
            written, skipped, lines = _write_joined(db, queries, run_path, output_path, skip_missing, cut)
        finally:
            db.close()
    if skipped:
        logger.warning("skipped %d candidates whose passage is not in the corpus", skipped)
    return PrepareStats(len(firsts), written, skipped, None if windows is None else lines)


WindowCutter = Callable[[str, str], list[tuple[str, str]]]  # (title, text) -> (title, text) per window


def _window_cutter(spec: WindowSpec, find_spans: SpanFinder) -> WindowCutter:
    """(title, text) -> each window's (title, text), the last few documents' windows cached."""

    @functools.lru_cache(maxsize=WINDOW_CACHE)
    def cut(title: str, text: str) -> list[tuple[str, str]]:
        return [(window.title, window.text) for window in cut_windows(title, text, find_spans([text])[0], spec)]

    return cut


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
    db: sqlite3.Connection,
    queries: Mapping[str, str],
    run_path: str,
    output_path: str,
    skip_missing: bool,
    cut: WindowCutter | None = None,
) -> tuple[int, int, int]:
    """Write each candidate, in run order, with its passage (a line per window given `cut`); return (candidates
    written, skipped, lines written)."""
    rows = db.execute("SELECT c.qid, c.docid, c.score, c.line, p.title, p.text FROM candidates c "
                      "LEFT JOIN passages p ON p.pid = c.docid ORDER BY c.seq")  # fmt: skip
    written = skipped = lines = 0
    with atomic_output(output_path) as out:
        for qid, docid, score, line, title, text in tqdm(rows, desc="writing rerank file", unit=" lines",
                                                         mininterval=1):  # fmt: skip
            if text is None:
                if not skip_missing:
                    raise InputError(run_path, line, f"passage {docid!r} is not in the corpus (--skip_missing skips)")
                skipped += 1
                continue
            if cut is None:
                out.write(format_candidate(RerankCandidate(qid, queries[qid], docid, title, text, score)))
                lines += 1
            else:
                for index, (part_title, part) in enumerate(cut(title, text)):
                    window = RerankCandidate(qid, queries[qid], window_id(docid, index), part_title, part, score)
                    out.write(format_candidate(window))
                    lines += 1
            written += 1
    return written, skipped, lines
