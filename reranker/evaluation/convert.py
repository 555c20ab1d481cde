"""Turning a score file into a ranked run: MS MARCO (`qid docid rank`) or TREC 6 columns."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tqdm import tqdm

from reranker.io.runs import iter_score_blocks, resolve_output_format, write_ranked_lines
from reranker.io.summary import write_summary
from reranker.io.textio import atomic_output


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
) -> ConvertStats:
    """Rank each query's candidates by score, descending (ties keep input order), and write ranks 1..n as a
    `marco` or `trec` run, with its summary (`fingerprint`, the job's, recorded for `finished_summary`).

    Example:
        >>> stats = convert_scores("scores.txt", "run.marco")
    """
    started = time.perf_counter()
    run_format = resolve_output_format(run_format)
    queries = lines = 0
    with atomic_output(output_path) as out:
        for qid, scored in tqdm(iter_score_blocks(input_path), desc="converting", unit=" queries"):
            ranked = sorted(scored, key=lambda pair: -pair[1])  # sorted() is stable: ties keep input order
            lines += write_ranked_lines(out, qid, ranked, run_format, tag)
            queries += 1
    write_summary(output_path, "convert", arguments or {}, queries=queries, lines=lines,
                  seconds=round(time.perf_counter() - started, 3), fingerprint=fingerprint)  # fmt: skip
    return ConvertStats(queries, lines)
