"""`prepare_rerank_file.py`: join a first-stage run with query and passage texts into a rerank input file."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from reranker.cli.common import add_beir_flags, check_files_or_beir, exits_on_bad_input, setup_logging
from reranker.io.errors import ParameterError, parameters_renamed
from reranker.io.runs import RUN_FORMATS

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from reranker.io.windows import WindowSpec


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
    add_window_flags(parser)
    return parser


def add_window_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that cut long documents into windows, a rerank line each (`reranker.io.windows`)."""
    group = parser.add_argument_group("windows (long documents: a line per window, docid DOCID#N; without these "
                                      "flags, a line per document as it is)")  # fmt: skip
    group.add_argument("--window_tokens", type=int, default=None, help="Tokens per window: --tokenizer_name's, "
                       "whitespace-separated words without it. A document that fits is one window.")  # fmt: skip
    group.add_argument("--window_stride", type=int, default=None, help="Tokens between window starts (default: "
                       "--window_tokens, no overlap).")  # fmt: skip
    group.add_argument("--window_sentences", type=int, default=None, help="Sentences per window (instead of "
                       "--window_tokens; needs the windows extra).")  # fmt: skip
    group.add_argument("--window_stride_sentences", type=int, default=None, help="Sentences between window starts "
                       "(default: --window_sentences).")  # fmt: skip
    group.add_argument("--window_prepend_title", action="store_true", help="Every window carries the document's "
                       "title (default: the first window only, as the whole document would).")  # fmt: skip
    group.add_argument("--tokenizer_name", default=None, help="The model's tokenizer (folder or Hub name), whose "
                       "tokens --window_tokens counts.")  # fmt: skip


def window_settings(args: argparse.Namespace) -> tuple[WindowSpec | None, PreTrainedTokenizerBase | None]:
    """(the WindowSpec, the tokenizer) the window flags ask for; (None, None) without them."""
    from reranker.io.windows import WindowSpec, check_window_fits

    if args.window_tokens is not None and args.window_sentences is not None:
        raise ParameterError("give {0} or {1}, not both", "window_tokens", "window_sentences")
    for window, stride in (("window_tokens", "window_stride"), ("window_sentences", "window_stride_sentences")):
        if getattr(args, stride) is not None and getattr(args, window) is None:
            raise ParameterError("{1} needs {0}", window, stride)
    if args.window_sentences is not None:
        if args.tokenizer_name is not None:  # sentences are counted as sentences: the tokenizer would go unused
            raise ParameterError("{0} counts tokens for {1}, not for {2}", "tokenizer_name", "window_tokens",
                                 "window_sentences")  # fmt: skip
        spec = WindowSpec(args.window_sentences, args.window_stride_sentences, "sentences", args.window_prepend_title,
                          names=("window_sentences", "window_stride_sentences"))  # fmt: skip
        return spec, None
    if args.window_tokens is None:
        if args.window_prepend_title or args.tokenizer_name is not None:
            raise ParameterError("{0} and {1} need {2}", "window_prepend_title", "tokenizer_name", "window_tokens")
        return None, None
    spec = WindowSpec(args.window_tokens, args.window_stride, "tokens", args.window_prepend_title)
    tokenizer = None
    if args.tokenizer_name is not None:
        from reranker.model.loading import load_tokenizer

        with parameters_renamed({"tokenizer": "tokenizer_name"}):
            tokenizer = load_tokenizer(args.tokenizer_name)
        check_window_fits(spec, tokenizer, 0)
    return spec, tokenizer


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = build_parser().parse_args(argv)
    check_files_or_beir(args, ["query_data_name", "corpus"])
    windows, tokenizer = window_settings(args)
    from reranker.first_stage.prepare import prepare_rerank_file
    from reranker.io.beir import read_beir_split

    queries, corpus = args.query_data_name, args.corpus
    if args.beir is not None:
        split = read_beir_split(args.beir, args.split)
        queries, corpus = split.queries, str(split.files.corpus)
    stats = prepare_rerank_file(
        queries, corpus, args.retrieval, args.output_path, depth=args.depth,
        run_format=args.run_format, query_split=args.query_data_split, query_revision=args.query_data_revision,
        corpus_revision=args.corpus_revision, skip_missing=args.skip_missing, arguments=vars(args), windows=windows,
        tokenizer=tokenizer,
    )  # fmt: skip
    windows_written = "" if stats.windows is None else f" as {stats.windows} windows"
    print(f"wrote {stats.candidates} candidates of {stats.queries} queries{windows_written} to {args.output_path}")
    if stats.skipped_missing:
        print(f"skipped {stats.skipped_missing} candidates missing from the corpus")
