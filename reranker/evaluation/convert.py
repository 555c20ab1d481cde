"""Turning a score file into a ranked run: MS MARCO (`qid docid rank`) or TREC 6 columns."""

from __future__ import annotations

from dataclasses import dataclass

from tqdm import tqdm

from reranker.io.runs import iter_score_blocks, write_marco_lines, write_trec_lines
from reranker.io.textio import atomic_output

OUTPUT_FORMATS = ("marco", "trec")


@dataclass(frozen=True)
class ConvertStats:
    queries: int
    lines: int


def convert_scores(
    input_path: str, output_path: str, output_format: str = "marco", tag: str = "reranker"
) -> ConvertStats:
    """Rank each query's candidates by score, descending (ties keep input order), and write ranks 1..n."""
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {output_format!r}")
    queries = lines = 0
    with atomic_output(output_path) as out:
        for qid, scored in tqdm(iter_score_blocks(input_path), desc="converting", unit=" queries"):
            ranked = sorted(scored, key=lambda pair: -pair[1])  # sorted() is stable: ties keep input order
            if output_format == "marco":
                lines += write_marco_lines(out, qid, (docid for docid, _ in ranked))
            else:
                lines += write_trec_lines(out, qid, ranked, tag)
            queries += 1
    return ConvertStats(queries, lines)
