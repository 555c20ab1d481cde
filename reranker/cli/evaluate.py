"""`python -m reranker.evaluate --qrels QRELS --run RUN`: the official MS MARCO MRR@10 block and more metrics."""

from __future__ import annotations

import argparse

from reranker.cli.common import add_beir_flags, check_files_or_beir, exits_on_bad_input
from reranker.evaluation.metrics import DEFAULT_METRICS, evaluate
from reranker.io.beir import read_beir_split
from reranker.io.qrels import read_qrels
from reranker.io.runs import RUN_FORMATS, iter_run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--qrels", default=None, help="TREC qrels (qid 0 docid rel), MS MARCO qrels TSV, or BEIR qrels TSV."
    )
    parser.add_argument(
        "--run", required=True,
        help="Run: MS MARCO (qid docid rank) or TREC 6 columns (ordered by the rank column, or by score as trec_eval "
        "where a query's ranks are 0 or repeated).",
    )  # fmt: skip
    parser.add_argument("--run_format", default="auto", choices=RUN_FORMATS, help="Run format (default: detect).")
    parser.add_argument(
        "--metrics", nargs="*", default=list(DEFAULT_METRICS), help="ir_measures names, e.g. nDCG@10 RR@10 R@1000."
    )
    parser.add_argument("--output", default=None, help="Also write the report here (and a JSON summary beside it).")
    add_beir_flags(parser, "the split's qrels")
    return parser


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    check_files_or_beir(args, ["qrels"])
    qrels = read_qrels(args.qrels) if args.beir is None else read_beir_split(args.beir, args.split).qrels
    result = evaluate(qrels, iter_run(args.run, args.run_format), args.metrics)
    print(result.report())
    if args.output:
        result.write(args.output, vars(args))


if __name__ == "__main__":
    raise SystemExit(main())
