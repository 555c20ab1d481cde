"""`convert_result_to_marco.py`: turn a score file into an MS MARCO (or TREC) run."""

from __future__ import annotations

import argparse

from reranker.cli.common import exits_on_bad_input
from reranker.evaluation.convert import convert_scores
from reranker.io.runs import OUTPUT_FORMAT_NAMES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True, help="Scores: qid<TAB>docid<TAB>score, grouped by query.")
    parser.add_argument("--output", required=True, help="Run file to write.")
    parser.add_argument(
        "--format",
        default="marco",
        choices=OUTPUT_FORMAT_NAMES,
        help="marco (msmarco): qid docid rank; trec: 6 cols.",
    )
    parser.add_argument("--tag", default="reranker", help="Run tag of TREC output.")
    parser.add_argument(
        "--aggregate", default=None, metavar="{firstp,maxp,sump,meanp,kmaxavg:K}",
        help="The scores are windows' (DOCID#N, from prepare_rerank_file.py --window_tokens): rank documents by the "
        "first window's score, the best, the sum, the mean, or the mean of the K best.",
    )  # fmt: skip
    return parser


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    stats = convert_scores(args.input, args.output, args.format, args.tag, arguments=vars(args),
                           aggregate=args.aggregate)  # fmt: skip
    print(f"wrote {stats.lines} lines of {stats.queries} queries to {args.output}")
