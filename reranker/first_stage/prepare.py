"""Building the rerank input file: a first-stage run joined with query and passage texts."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tqdm import tqdm

from reranker.io.corpus import load_passages
from reranker.io.errors import InputError
from reranker.io.rerank_input import RerankCandidate, format_candidate
from reranker.io.runs import Run
from reranker.io.textio import atomic_output

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepareStats:
    queries: int
    candidates: int
    skipped_missing: int


def prepare_rerank_file(
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
