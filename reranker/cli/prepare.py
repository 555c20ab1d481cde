"""`prepare_rerank_file.py`: join a first-stage run with query and passage texts into a rerank input file."""

from __future__ import annotations

import argparse

from reranker.cli.common import add_beir_flags, check_files_or_beir, exits_on_bad_input, setup_logging
from reranker.io.runs import RUN_FORMATS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--query_data_name", default=None, help="Queries: Hub dataset, or local TSV (qid<TAB>query) / JSONL."
    )
    parser.add_argument("--query_data_split", default="dev", help="Split of a Hub query dataset (default: dev).")
    parser.add_argument("--query_data_revision", default=None, help="Hub revision of the query dataset.")
    parser.add_argument(
        "--corpus", "--corpus_data_name", dest="corpus", default=None,
        help="Passages: Hub corpus, or local JSONL {docid,title,text} / TSV pid<TAB>text, optionally gzipped.",
    )  # fmt: skip
    parser.add_argument("--corpus_revision", default=None, help="Hub revision of the corpus.")
    parser.add_argument(
        "--retrieval", "--retrieval_results", dest="retrieval", required=True,
        help="First-stage run: TREC 6 columns (ordered by the rank column, or by score as trec_eval where a query's "
        "ranks are 0 or repeated), MS MARCO qid pid rank, or qid pid score.",
    )  # fmt: skip
    parser.add_argument("--run_format", default="auto", choices=RUN_FORMATS, help="Run format (default: detect).")
    parser.add_argument("--output_path", required=True, help="Rerank input JSONL to write.")
    parser.add_argument("--depth", type=int, default=1000, help="Candidates kept per query (default: 1000).")
    parser.add_argument("--skip_missing", action="store_true", help="Skip run passages missing from the corpus.")
    parser.add_argument("--cache_dir", default=None, help="Accepted for compatibility; Hub files use the HF cache.")
    add_beir_flags(parser, "the queries the split's qrels judge and the corpus")
    return parser


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = build_parser().parse_args(argv)
    check_files_or_beir(args, ["query_data_name", "corpus"])
    from reranker.first_stage.prepare import prepare_rerank_file
    from reranker.io.beir import read_beir_split

    queries, corpus = args.query_data_name, args.corpus
    if args.beir is not None:
        split = read_beir_split(args.beir, args.split)
        queries, corpus = split.queries, str(split.files.corpus)
    stats = prepare_rerank_file(
        queries, corpus, args.retrieval, args.output_path, depth=args.depth,
        run_format=args.run_format, query_split=args.query_data_split, query_revision=args.query_data_revision,
        corpus_revision=args.corpus_revision, skip_missing=args.skip_missing, arguments=vars(args),
    )  # fmt: skip
    print(f"wrote {stats.candidates} candidates of {stats.queries} queries to {args.output_path}")
    if stats.skipped_missing:
        print(f"skipped {stats.skipped_missing} candidates missing from the corpus")
