"""`convert_result_to_marco.py`: turn a score file into an MS MARCO (or TREC) run."""

from __future__ import annotations

import argparse
import time

from reranker.cli.common import exits_on_bad_input
from reranker.evaluation.convert import OUTPUT_FORMATS, convert_scores
from reranker.io.summary import write_summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True, help="Scores: qid<TAB>docid<TAB>score, grouped by query.")
    parser.add_argument("--output", required=True, help="Run file to write.")
    parser.add_argument(
        "--format", default="marco", choices=OUTPUT_FORMATS, help="marco: qid docid rank; trec: 6 cols."
    )
    parser.add_argument("--tag", default="reranker", help="Run tag of TREC output.")
    return parser


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    stats = convert_scores(args.input, args.output, args.format, args.tag)
    write_summary(args.output, "convert", vars(args), queries=stats.queries, lines=stats.lines,
                  seconds=round(time.perf_counter() - started, 3))  # fmt: skip
    print(f"wrote {stats.lines} lines of {stats.queries} queries to {args.output}")
