"""Building the rerank input file: a first-stage run joined with query and passage texts."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from tqdm import tqdm

from reranker.io.corpus import load_passages
from reranker.io.errors import InputError
from reranker.io.queries import read_queries
from reranker.io.rerank_input import RerankCandidate, format_candidate
from reranker.io.runs import Run, read_run
from reranker.io.summary import write_summary
from reranker.io.textio import atomic_output

logger = logging.getLogger(__name__)


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
    run = read_run(retrieval, run_format, depth)
    queries = (
        query_source if isinstance(query_source, Mapping) else read_queries(query_source, query_split, query_revision)
    )
    stats = join_run_with_texts(queries, run, retrieval, corpus, output_path, skip_missing, corpus_revision)
    write_summary(output_path, "prepare", arguments or {}, queries=stats.queries, candidates=stats.candidates,
                  skipped_missing=stats.skipped_missing, seconds=round(time.perf_counter() - started, 3),
                  fingerprint=fingerprint)  # fmt: skip
    return stats


def join_run_with_texts(
    queries: dict[str, str],
    run: Run,
    run_path: str,
    corpus: str,
    output_path: str,
    skip_missing: bool = False,
    corpus_revision: str | None = None,
) -> PrepareStats:
    """Write `{query_id, query, docid, title, text, score}` lines in run order.

    Only passages the run references are kept in memory. A run query without text, or (unless `skip_missing`)
    a run docid missing from the corpus, is an InputError naming the run line.
    """
    for entries in run.values():
        if entries[0].qid not in queries:
            raise InputError(run_path, entries[0].line, f"query {entries[0].qid!r} is not in the query set")
    wanted = {entry.docid for entries in run.values() for entry in entries}
    passages = load_passages(corpus, wanted, corpus_revision)
    written = skipped = 0
    with atomic_output(output_path) as out:
        for qid, entries in tqdm(run.items(), desc="writing rerank file", unit=" queries"):
            for entry in entries:
                passage = passages.get(entry.docid)
                if passage is None:
                    if not skip_missing:
                        raise InputError(
                            run_path,
                            entry.line,
                            f"passage {entry.docid!r} is not in the corpus (--skip_missing skips)",
                        )
                    skipped += 1
                    continue
                out.write(format_candidate(RerankCandidate(qid, queries[qid], *passage, entry.score)))
                written += 1
    if skipped:
        logger.warning("skipped %d candidates whose passage is not in the corpus", skipped)
    return PrepareStats(len(run), written, skipped)
