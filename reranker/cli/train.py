"""`train_reranker.py`: train a cross-encoder with the grouped softmax loss."""

from __future__ import annotations

from reranker.cli.common import exits_on_bad_input, parse_dataclasses, setup_logging
from reranker.model.arguments import ModelArguments
from reranker.training.arguments import RerankerTrainingArguments, TrainDataArguments


@exits_on_bad_input(flag_names={"tokenizer": "tokenizer_name"})
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    model_args, data_args, training_args = parse_dataclasses(
        (ModelArguments, TrainDataArguments, RerankerTrainingArguments), argv
    )
    from reranker.api import train  # after parsing: --help stays fast

    train(model_args, data_args, training_args)
