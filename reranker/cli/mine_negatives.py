"""`python -m reranker.mine_negatives`: Tevatron-format training data from a first-stage run and qrels.

For every query with a judged-relevant passage in the corpus: the positives are its passages judged at least
`--min_positive_grade`; the negatives come from the run's candidates ranked `skip_top + 1` to `depth`, leaving out
every passage judged relevant (grade >= 1) to that query. `--sampling random` (Tevatron's recipe) draws
`n_negatives` of them with a generator seeded by (seed, query id); `--sampling top` takes the highest-ranked.
Either way the chosen negatives are written in rank order. Queries that end up without a positive or without a
negative are dropped and reported.
"""

from __future__ import annotations

import argparse

from reranker.cli.common import exits_on_bad_input, setup_logging
from reranker.first_stage.mine_negatives import SAMPLING, MiningOptions, mine_negatives
from reranker.io.runs import RUN_FORMATS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reranker.mine_negatives", description=__doc__)
    parser.add_argument("--queries", required=True, help="Queries: TSV qid<TAB>query, JSONL, or a Hub dataset.")
    parser.add_argument("--query_split", default="train", help="Split of a Hub query dataset (default: train).")
    parser.add_argument("--qrels", required=True, help="TREC qrels (qid 0 docid grade).")
    parser.add_argument("--run", required=True, help="First-stage run: TREC, MS MARCO qid pid rank, or qid pid score.")
    parser.add_argument("--run_format", default="auto", choices=RUN_FORMATS, help="Run format (default: detect).")
    parser.add_argument("--corpus", required=True, help="Passages: JSONL {docid,title,text}, TSV, or a Hub corpus.")
    parser.add_argument("--output", required=True, help="Training JSONL to write (.jsonl or .jsonl.gz).")
    parser.add_argument("--depth", type=int, default=200, help="Negatives come from the top DEPTH (default: 200).")
    parser.add_argument("--n_negatives", type=int, default=30, help="Negatives per query (default: 30).")
    parser.add_argument("--skip_top", type=int, default=0, help="Never take the top SKIP_TOP candidates (default 0).")
    parser.add_argument(
        "--sampling", default="random", choices=SAMPLING,
        help="random: a seeded sample of the window, as Tevatron (default); top: the highest-ranked.",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=42, help="Seed of --sampling random (default: 42).")
    parser.add_argument(
        "--min_positive_grade", type=int, default=1,
        help="Grade a positive needs (default: 1); passages graded >= 1 are never negatives.",
    )  # fmt: skip
    return parser


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = build_parser().parse_args(argv)
    options = MiningOptions(
        args.depth, args.n_negatives, args.skip_top, args.sampling, args.seed, args.min_positive_grade
    )
    options.check()
    from reranker.io.qrels import read_qrels
    from reranker.io.queries import read_queries
    from reranker.io.runs import read_run

    queries = read_queries(args.queries, args.query_split)
    qrels = read_qrels(args.qrels)
    run = read_run(args.run, args.run_format)
    stats = mine_negatives(queries, qrels, run, args.run, args.corpus, args.output, options, vars(args))
    print(
        f"wrote {stats.queries_written} queries ({stats.positives} positives, {stats.negatives} negatives) "
        f"to {args.output}"
    )
    if stats.report():
        print(stats.report())


if __name__ == "__main__":
    raise SystemExit(main())
