"""What every stage's entry point shares: logging set-up, argument parsing and one-line errors."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence

from transformers import HfArgumentParser

from reranker.io.errors import InputError, ParameterError, UsageError, literal


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", level=level)


def parse_dataclasses(types: tuple, argv: list[str] | None = None) -> tuple:
    """Parse flags into the given dataclasses. A single `.json` argument is read as a file of flags; `--args_file
    F` (e.g. a recipe, `recipes/*.args`) reads flags from F, the flags given beside it taking precedence."""
    argv = sys.argv[1:] if argv is None else argv
    parser = HfArgumentParser(types)
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag == "--args_file" and not os.path.isfile(value):
            raise ParameterError(f"{{0}} {literal(value)}: no such file", "args_file")
    return parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False, args_file_flag="--args_file")


def load_reranker(model_args, args):
    """The `Reranker` that the model flags (`ModelArguments`) and the scoring flags (`ScoringArguments`) describe,
    loaded as `reranker_inference.py` and `python -m reranker.serve` load it."""
    from reranker.api import Reranker  # here, not at the top: --help and the light stages stay fast

    return Reranker.from_pretrained(
        model_args.model_name_or_path, tokenizer=model_args.tokenizer_name, config_name=model_args.config_name,
        cache_dir=model_args.cache_dir, revision=model_args.model_revision, q_max_len=args.q_max_len,
        p_max_len=args.p_max_len, passage_field_separator=args.passage_field_separator, device=args.device,
        precision=args.precision, batch_size=args.per_device_eval_batch_size,
        max_tokens_per_batch=args.max_tokens_per_batch, pad_to_multiple_of=args.pad_to_multiple_of,
        torch_compile=args.torch_compile, score_head=model_args.score_head, pair_template=model_args.pair_template,
        template_prefix=model_args.template_prefix, template_suffix=model_args.template_suffix,
        instruction=model_args.instruction, preset=model_args.preset, true_token=model_args.true_token,
        false_token=model_args.false_token, attn_implementation=model_args.attn_implementation,
        backend=args.backend, num_threads=args.num_threads,
        options=args.options,
    )  # fmt: skip


def exits_on_bad_input(main: Callable[..., int | None] | None = None, *, flag_names: Mapping[str, str] | None = None):
    """Turn InputError/UsageError into one `error: ...` line on stderr and exit status 2. A ParameterError names
    its parameters as flags (`flag_names` maps the library's parameter names to this command's flags)."""

    def decorate(main: Callable[..., int | None]) -> Callable[..., int]:
        @functools.wraps(main)
        def wrapper(*args, **kwargs) -> int:
            try:
                return main(*args, **kwargs) or 0
            except ParameterError as err:
                print(f"error: {err.as_flags(flag_names)}", file=sys.stderr)
            except (InputError, UsageError) as err:
                print(f"error: {err}", file=sys.stderr)
            return 2

        return wrapper

    return decorate(main) if main is not None else decorate


def add_beir_flags(parser: argparse.ArgumentParser, takes: str, split: str | None = "test") -> None:
    """`--beir DIR` (and `--split`, unless `split` is None): the inputs named in `takes` come from a BEIR folder."""
    group = parser.add_argument_group("BEIR folder (instead of the files one by one)")
    group.add_argument(
        "--beir", metavar="DIR", default=None,
        help=f"BEIR dataset folder (corpus.jsonl[.gz], queries.jsonl, qrels/SPLIT.tsv): {takes} come from it.",
    )  # fmt: skip
    if split is not None:
        group.add_argument("--split", default=split, help=f"The BEIR split: qrels/SPLIT.tsv (default: {split}).")


def check_files_or_beir(args: argparse.Namespace, flags: Sequence[str]) -> None:
    """With `--beir`, the `flags` it stands for must not be given; without it, they are required."""
    given = [flag for flag in flags if getattr(args, flag) is not None]
    if args.beir is not None and given:
        raise ParameterError("give {0} or {1}, not both", "beir", given[0])
    missing = [flag for flag in flags if getattr(args, flag) is None]
    if args.beir is None and missing:
        raise ParameterError("{0} is required (or {1} for a BEIR folder)", missing[0], "beir")


def add_index_cache_flag(parser: argparse.ArgumentParser) -> None:
    """`--index_cache DIR`: where BM25 indexes built on the fly are kept (`reranker.first_stage.bm25.cached_index`)."""
    parser.add_argument("--index_cache", default=None, help="BM25 index cache (default: $RERANKER_CACHE/bm25).")
