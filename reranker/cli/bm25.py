"""`python -m reranker.bm25 index|search`: the BM25 first stage, with pyserini's Lucene indexer and searcher.

`index` converts a Tevatron or BEIR JSONL or an MS MARCO TSV corpus to Anserini's JsonCollection and runs Anserini's
IndexCollection on it (the indexer behind `python -m pyserini.index.lucene`). `search` takes the flags of
`python -m pyserini.search.lucene` and writes the same run: same queries in the same order, same docids, ranks
and scores, and the `Anserini` tag.
"""

from __future__ import annotations

import argparse

from reranker.cli.common import add_beir_flags, check_files_or_beir, exits_on_bad_input, setup_logging
from reranker.first_stage.bm25 import build_index, pyserini_order, run_search
from reranker.io.beir import beir_files, read_beir_split
from reranker.io.runs import OUTPUT_FORMAT_NAMES

# -------------------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reranker.bm25", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    index = commands.add_parser("index", help="Build a Lucene index of a corpus.")
    index.add_argument(
        "--corpus", default=None,
        help="Tevatron JSONL {docid,title,text}, BEIR JSONL {_id,title,text} or MS MARCO TSV pid<TAB>text "
        "(optionally gzipped), or a Hub corpus.",
    )  # fmt: skip
    index.add_argument("--index", required=True, help="Index folder to create.")
    index.add_argument("--threads", type=int, default=1, help="Indexing threads (default: 1).")
    index.add_argument("--overwrite", action="store_true", help="Replace an existing index at --index.")
    index.add_argument("--quiet", action="store_true", help="Silence Anserini's indexing log.")
    add_beir_flags(index, "the corpus", split=None)

    search = commands.add_parser("search", help="Search topics with BM25; flags as python -m pyserini.search.lucene.")
    search.add_argument("--index", required=True, help="Index folder, or a pyserini prebuilt index name.")
    search.add_argument("--topics", default=None, help="Queries: TSV qid<TAB>query, JSONL, or a pyserini topics name.")
    search.add_argument("--output", required=True, help="Run file to write.")
    search.add_argument("--bm25", action="store_true", help="Accepted for pyserini compatibility (BM25 is the model).")
    search.add_argument("--k1", type=float, default=None, help="BM25 k1 (with --b; default: pyserini's).")
    search.add_argument("--b", type=float, default=None, help="BM25 b (with --k1; default: pyserini's).")
    search.add_argument("--hits", type=int, default=1000, help="Hits per query (default: 1000).")
    search.add_argument("--threads", type=int, default=1, help="Search threads (default: 1).")
    search.add_argument(
        "--batch_size", "--batch-size", dest="batch_size", type=int, default=None,
        help="Queries per batch_search call (default: 1 with one thread, else 64 per thread).",
    )  # fmt: skip
    search.add_argument(
        "--output_format", "--output-format", dest="output_format", default="trec", choices=OUTPUT_FORMAT_NAMES,
        help="trec: qid Q0 docid rank score Anserini (default); msmarco (or marco): qid<TAB>docid<TAB>rank.",
    )  # fmt: skip
    add_beir_flags(search, "the queries the split's qrels judge")
    return parser


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = build_parser().parse_args(argv)
    check_files_or_beir(args, ["corpus" if args.command == "index" else "topics"])
    if args.command == "index":
        corpus = args.corpus or str(beir_files(args.beir, split=None).corpus)
        stats = build_index(corpus, args.index, args.threads, args.overwrite, args.quiet)
        rate = stats.passages / stats.seconds if stats.seconds else float("inf")
        print(f"indexed {stats.passages} passages into {args.index} in {stats.seconds:.1f} s ({rate:.0f} passages/s)")
        return
    topics = args.topics or pyserini_order(read_beir_split(args.beir, args.split).queries)
    stats = run_search(
        args.index, topics, args.output, args.k1, args.b, args.hits, args.threads, args.batch_size,
        args.output_format, vars(args),
    )  # fmt: skip
    print(f"wrote {stats.lines} lines of {stats.queries} queries to {args.output} in {stats.seconds:.1f} s")
    if stats.without_hits:
        print(f"{stats.without_hits} queries had no hits")


if __name__ == "__main__":
    raise SystemExit(main())
