"""Loading the cross-encoder (any `AutoModelForSequenceClassification` with one label) and its tokenizer."""

from __future__ import annotations

from pathlib import Path

from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from reranker.io.errors import ParameterError, UsageError, literal

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model")


def load_tokenizer(
    name_or_path: str, cache_dir: str | None = None, revision: str | None = None
) -> PreTrainedTokenizerBase:
    """Load a fast tokenizer; a model folder without tokenizer files is a one-line error.

    (transformers 5 would otherwise build an empty tokenizer from the model's config and score garbage.)
    """
    path = Path(name_or_path)
    if path.is_dir() and not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise ParameterError(
            f"{literal(name_or_path)}: cannot load a tokenizer: the folder has none (give {{0}})", "tokenizer"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, cache_dir=cache_dir, revision=revision)
    except (OSError, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        message = f"{literal(name_or_path)}: cannot load a tokenizer (give {{0}}?): {literal(first)}"
        raise ParameterError(message, "tokenizer") from None
    if tokenizer.unk_token is None or tokenizer.pad_token is None:
        raise UsageError(f"{name_or_path}: the tokenizer has no unknown or padding token")
    return tokenizer


def load_cross_encoder(
    model_name_or_path: str,
    config_name: str | None = None,
    cache_dir: str | None = None,
    revision: str | None = None,
) -> PreTrainedModel:
    """Load a sequence-classification model with a single relevance logit, using PyTorch SDPA attention."""
    config = AutoConfig.from_pretrained(
        config_name or model_name_or_path, num_labels=1, cache_dir=cache_dir, revision=revision
    )
    return AutoModelForSequenceClassification.from_pretrained(
        model_name_or_path, config=config, cache_dir=cache_dir, revision=revision, attn_implementation="sdpa"
    )
