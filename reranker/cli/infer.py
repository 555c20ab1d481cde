"""`reranker_inference.py`: score a rerank input file with a cross-encoder (also under torchrun)."""

from __future__ import annotations

from reranker.arguments import ModelArguments, RerankArguments
from reranker.cli.common import exits_on_bad_input, parse_dataclasses, setup_logging


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    model_args, args = parse_dataclasses((ModelArguments, RerankArguments), argv)
    from reranker.inference import run_inference  # after parsing: --help stays fast

    run_inference(model_args, args)
