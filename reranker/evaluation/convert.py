"""Turning a score file into a ranked run: MS MARCO (`qid docid rank`) or TREC 6 columns; window scores (a rerank
file prepared with windows) aggregated into one score per document first."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tqdm import tqdm

from reranker.io.runs import iter_score_blocks, rank_scored, resolve_output_format, write_ranked_lines
from reranker.io.summary import write_summary
from reranker.io.textio import atomic_output
from reranker.io.window_scores import Aggregate, aggregate_windows


@dataclass(frozen=True)
class ConvertStats:
    queries: int
    lines: int


def convert_scores(
    input_path: str,
    output_path: str,
    run_format: str = "marco",
    tag: str = "reranker",
    arguments: dict | None = None,
    fingerprint: str | None = None,
    aggregate: str | None = None,
) -> ConvertStats:
    """Rank each query's candidates by score, descending, and write ranks 1..n as a `marco` or `trec` run, with
    its summary (`fingerprint`, the job's, recorded for `finished_summary`). Ties: a `marco` run keeps their input
    order; a `trec` run orders them by docid, descending, as trec_eval re-sorts them, so that trec_eval reads the
    ranks written (`reranker.io.runs.rank_scored`).

    Args:
        aggregate: the score file holds windows (`DOCID#N`): rank documents by this aggregate of their window
            scores (firstp, maxp, sump, meanp, kmaxavg:K; `reranker.io.window_scores`).
        The others: as above.

    Example:
        >>> stats = convert_scores("scores.txt", "run.marco")
        >>> stats = convert_scores("window_scores.txt", "run.trec", "trec", aggregate="maxp")
    """
    started = time.perf_counter()
    run_format = resolve_output_format(run_format)
    combine = None if aggregate is None else Aggregate.parse(aggregate)
    queries = lines = 0
    with atomic_output(output_path) as out:
        for qid, scored, last_line in tqdm(iter_score_blocks(input_path, with_lines=True), desc="converting",
                                           unit=" queries"):  # fmt: skip
            if combine is not None:
                scored = aggregate_windows(scored, combine, input_path, last_line - len(scored) + 1)
            lines += write_ranked_lines(out, qid, rank_scored(scored, run_format), run_format, tag)
            queries += 1
    write_summary(output_path, "convert", arguments or {}, queries=queries, lines=lines,
                  seconds=round(time.perf_counter() - started, 3), fingerprint=fingerprint)  # fmt: skip
    return ConvertStats(queries, lines)
