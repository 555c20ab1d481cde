"""`python -m reranker.mine_negatives`: Tevatron-format training data from a first-stage run and qrels.

For every query with a judged-relevant passage in the corpus: the positives are its passages judged at least
`--min_positive_grade`; the negatives come from the run's candidates ranked `skip_top + 1` to `depth`, leaving out
every passage judged relevant (grade >= 1) to that query. `--sampling random` (Tevatron's recipe) draws
`n_negatives` of them with a generator seeded by (seed, query id); `--sampling top` takes the highest-ranked.
Either way the chosen negatives are written in rank order. Queries that end up without a positive or without a
negative are dropped and reported.

`--beir DIR --split train` takes the queries, qrels and corpus from a BEIR folder; without `--run`, the candidates
are BM25's top `--depth` from an index of the corpus built once and cached (`--index_cache`), and that run is
kept beside the output as OUTPUT.bm25.trec.

`--extend TRAIN` adds candidates to the rows of a training file instead of mining new rows: each row keeps its
passages, and the run's candidates that are not among them (nor judged relevant in `--qrels`, when given) are
appended to its negatives until it has `--n_negatives`; the queries come from the rows (by `query_id`), so
without `--run` BM25 searches them. For a teacher to score more passages per row before distillation.
"""

from __future__ import annotations

import argparse
import os

from reranker.cli.common import (
    add_beir_flags,
    add_index_cache_flag,
    check_files_or_beir,
    exits_on_bad_input,
    setup_logging,
)
from reranker.first_stage.mine_negatives import (
    SAMPLING,
    MiningOptions,
    extend_train_file,
    mine_negatives,
    train_file_queries,
)
from reranker.io.beir import read_beir_split
from reranker.io.errors import ParameterError
from reranker.io.qrels import Qrels, read_qrels
from reranker.io.queries import read_queries
from reranker.io.runs import RUN_FORMATS, read_run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reranker.mine_negatives", description=__doc__)
    parser.add_argument("--queries", default=None, help="Queries: TSV qid<TAB>query, JSONL, or a Hub dataset.")
    parser.add_argument("--query_split", default="train", help="Split of a Hub query dataset (default: train).")
    parser.add_argument("--qrels", default=None, help="TREC qrels (qid 0 docid grade).")
    parser.add_argument("--run", default=None, help="First-stage run: TREC, MS MARCO qid pid rank, or qid pid score.")
    parser.add_argument("--run_format", default="auto", choices=RUN_FORMATS, help="Run format (default: detect).")
    parser.add_argument("--corpus", default=None, help="Passages: JSONL {docid,title,text}, TSV, or a Hub corpus.")
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
    parser.add_argument(
        "--extend", default=None, metavar="TRAIN",
        help="Add the run's candidates to the rows of this training file, up to --n_negatives negatives a row, "
        "instead of mining new rows (queries from the rows; --qrels optional).",
    )  # fmt: skip
    add_beir_flags(parser, "the queries, qrels and corpus (and, without --run, a BM25 run)", split="train")
    add_index_cache_flag(parser)
    return parser


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = build_parser().parse_args(argv)
    options = MiningOptions(
        args.depth, args.n_negatives, args.skip_top, args.sampling, args.seed, args.min_positive_grade
    )
    options.check()
    if args.extend is not None:
        return _extend(args, options)
    check_files_or_beir(args, ["queries", "qrels", "corpus"])
    if args.run is None and args.beir is None:
        raise ParameterError("{0} is required (or {1} for a BEIR folder and its BM25 run)", "run", "beir")
    queries, qrels, corpus = _inputs(args)
    run_path = args.run or _bm25_run(corpus, queries, args)
    run = read_run(run_path, args.run_format)
    stats = mine_negatives(queries, qrels, run, run_path, corpus, args.output, options, vars(args))
    print(
        f"wrote {stats.queries_written} queries ({stats.positives} positives, {stats.negatives} negatives) "
        f"to {args.output}"
    )
    if stats.report():
        print(stats.report())


def _extend(args: argparse.Namespace, options: MiningOptions) -> None:
    for flag in ("queries", "beir"):
        if getattr(args, flag) is not None:
            raise ParameterError("{0} takes the queries from the rows: give {0} or {1}, not both", "extend", flag)
    if args.corpus is None:
        raise ParameterError("{0} is required with {1}", "corpus", "extend")
    queries = train_file_queries(args.extend)  # read once: for the search and for the rows' candidates
    run_path = args.run or _bm25_run(args.corpus, queries, args)
    qrels = read_qrels(args.qrels) if args.qrels else None
    stats = extend_train_file(args.extend, read_run(run_path, args.run_format), run_path, args.corpus, args.output,
                              options, qrels, vars(args), queries)  # fmt: skip
    print(f"wrote {stats.rows} rows ({stats.added} negatives added) to {args.output}")
    if stats.report():
        print(stats.report())


def _inputs(args: argparse.Namespace) -> tuple[dict[str, str], Qrels, str]:
    if args.beir is None:
        return read_queries(args.queries, args.query_split), read_qrels(args.qrels), args.corpus
    split = read_beir_split(args.beir, args.split)
    return split.queries, split.qrels, str(split.files.corpus)


def _bm25_run(corpus: str, queries: dict[str, str], args: argparse.Namespace) -> str:
    """BM25's top `depth` for the queries, from the cached index of the corpus, written beside the output."""
    from reranker.first_stage.bm25 import cached_index, pyserini_order, run_search

    run_path = f"{args.output}.bm25.trec"
    run_search(os.fspath(cached_index(corpus, args.index_cache)), pyserini_order(queries), run_path,
               hits=args.depth, arguments=vars(args))  # fmt: skip
    print(f"searched {len(queries)} queries with BM25 into {run_path}")
    return run_path


if __name__ == "__main__":
    raise SystemExit(main())
