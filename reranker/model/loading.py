"""Loading the cross-encoder (any `AutoModelForSequenceClassification` with one label) and its tokenizer."""

from __future__ import annotations

from pathlib import Path

from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from reranker.io.errors import ParameterError, UsageError, check_fraction, literal
from reranker.model.segment_cosine import BertForSegmentCosine, check_score_head, segment_cosine_config

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
    score_head: str | None = None,
    cross_attention_bias: float | None = None,
    dropout: float | None = None,
) -> PreTrainedModel:
    """Load a sequence-classification model with a single relevance logit, using PyTorch SDPA attention.

    `score_head`: None keeps the checkpoint's own (a new [CLS] head for a model without one); "segment_cosine" makes
    a BERT checkpoint a `BertForSegmentCosine`, its cross-segment attention bias starting at `cross_attention_bias`
    (default -4); "cls" asks for the [CLS] head (a segment-cosine checkpoint cannot take one). `dropout`: None keeps
    the checkpoint's dropout probabilities, a number replaces every one of them.

    Example:
        >>> model = load_cross_encoder("bert-base-uncased", dropout=0.0)  # every dropout layer off
    """
    check_score_head(score_head)
    config = AutoConfig.from_pretrained(
        config_name or model_name_or_path, num_labels=1, cache_dir=cache_dir, revision=revision
    )
    if dropout is not None:
        set_dropout(config, dropout, model_name_or_path)
    model_class = AutoModelForSequenceClassification
    if score_head == "segment_cosine":
        config = segment_cosine_config(config, model_name_or_path, cross_attention_bias)
        model_class = BertForSegmentCosine
    elif score_head == "cls" and isinstance(config, BertForSegmentCosine.config_class):
        raise ParameterError(
            f"{{0}} cls: {literal(model_name_or_path)} scores with a segment-cosine head, not a [CLS] one",
            "score_head",
        )
    elif cross_attention_bias is not None:
        raise ParameterError("{0} goes with {1} segment_cosine", "cross_attention_bias", "score_head")
    return model_class.from_pretrained(
        model_name_or_path, config=config, cache_dir=cache_dir, revision=revision, attn_implementation="sdpa"
    )


def set_dropout(config: PretrainedConfig, dropout: float, name: str) -> None:
    """Set every dropout probability of `config` (hidden_dropout_prob, attention_probs_dropout_prob, DistilBERT's
    dropout, ...) to `dropout`; unset ones (None: "use another of them") stay unset."""
    check_fraction("dropout", dropout)
    names = [key for key, value in config.to_dict().items() if "dropout" in key and isinstance(value, float)]
    if not names:
        raise ParameterError(f"{{0}}: the config of {literal(name)} has no dropout probability to set", "dropout")
    for key in names:
        setattr(config, key, dropout)
