"""Loading the cross-encoder (any `AutoModelForSequenceClassification` with one label) and its tokenizer."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from reranker.io.errors import ParameterError, check_fraction, literal
from reranker.model.heads import ENCODER_HEADS, check_score_head
from reranker.model.segment_cosine import BertForSegmentCosine, segment_cosine_config

# sentence-transformers' CrossEncoder(path) returns the raw logit (our score), not its sigmoid, with this in config
RAW_LOGIT_ACTIVATION = {"activation_fn": "torch.nn.modules.linear.Identity"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model")
logger = logging.getLogger(__name__)


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
    return tokenizer


def load_cross_encoder(
    model_name_or_path: str,
    config_name: str | None = None,
    cache_dir: str | None = None,
    revision: str | None = None,
    score_head: str | None = None,
    cross_attention_bias: float | None = None,
    dropout: float | None = None,
    logit_scale: float | None = None,
    fixed_logit_scale: bool = False,
    attn_implementation: str = "sdpa",
) -> PreTrainedModel:
    """Load a sequence-classification model with a single relevance logit (PyTorch SDPA attention by default).

    `score_head`: None keeps the checkpoint's own (a new [CLS] head for a model without one); "segment_cosine" makes
    a BERT checkpoint a `BertForSegmentCosine`, its cross-segment attention bias starting at `cross_attention_bias`
    (default -4) and its logit scale at `logit_scale` (default 1/0.07, learned unless `fixed_logit_scale`); "cls"
    asks for the [CLS] head (a segment-cosine checkpoint cannot take one). `dropout`: None keeps the checkpoint's
    dropout probabilities, a number replaces every one of them.

    Example:
        >>> model = load_cross_encoder("bert-base-uncased", dropout=0.0)  # every dropout layer off
    """
    check_score_head(score_head, ENCODER_HEADS)
    config = AutoConfig.from_pretrained(
        config_name or model_name_or_path, num_labels=1, cache_dir=cache_dir, revision=revision
    )
    if dropout is not None:
        set_dropout(config, dropout, model_name_or_path)
    model_class = AutoModelForSequenceClassification
    if score_head == "segment_cosine":
        if not isinstance(config, BertForSegmentCosine.config_class):
            warn_unless_mean_pooling_bi_encoder(model_name_or_path)
        config = segment_cosine_config(
            config, model_name_or_path, cross_attention_bias, logit_scale, fixed_logit_scale
        )
        model_class = BertForSegmentCosine
    elif score_head == "cls" and isinstance(config, BertForSegmentCosine.config_class):
        raise ParameterError(
            f"{{0}} cls: {literal(model_name_or_path)} scores with a segment-cosine head, not a [CLS] one",
            "score_head",
        )
    else:
        for name, value in (("cross_attention_bias", cross_attention_bias), ("logit_scale", logit_scale),
                            ("fixed_logit_scale", fixed_logit_scale or None)):  # fmt: skip
            if value is not None:
                raise ParameterError("{0} goes with {1} segment_cosine", name, "score_head")
    return model_class.from_pretrained(
        model_name_or_path,
        config=config,
        cache_dir=cache_dir,
        revision=revision,
        attn_implementation=attn_implementation,
    )


def pooling_mode(name_or_path: str) -> str | None:
    """How a sentence-transformers model pools token states ("mean", "cls", "max", ...), or None for a model that
    is not one (no modules.json with a Pooling module) or whose files cannot be read (a Hub name offline).

    Example:
        >>> pooling_mode("sentence-transformers/all-MiniLM-L6-v2")
        'mean'
    """
    modules = model_file(name_or_path, "modules.json")
    for module in json.loads(modules.read_text()) if modules else []:
        config = model_file(name_or_path, f"{module.get('path', '')}/config.json".lstrip("/"))
        if "Pooling" in module.get("type", "") and config:
            settings = json.loads(config.read_text())
            if "pooling_mode" in settings:  # the newer single-field form
                return settings["pooling_mode"]
            modes = [key.removeprefix("pooling_mode_").removesuffix("_tokens").removesuffix("_token")
                     for key, on in settings.items() if key.startswith("pooling_mode_") and on is True]  # fmt: skip
            return "+".join(modes) or None
    return None


def model_file(name_or_path: str, filename: str) -> Path | None:
    """A file of a local model folder, or of a Hub model (downloaded; None when it cannot be, e.g. offline)."""
    if Path(name_or_path).is_dir():
        path = Path(name_or_path) / filename
        return path if path.is_file() else None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(name_or_path, filename))
    except Exception:  # noqa: BLE001 (not there, no network, not a Hub name: all mean "cannot tell")
        return None


def warn_unless_mean_pooling_bi_encoder(name_or_path: str) -> None:
    """A loud warning when a segment-cosine head is put on weights that are not a mean-pooling bi-encoder's: the
    head computes that bi-encoder's score at the start, so from other weights it starts from noise."""
    mode = pooling_mode(name_or_path)
    if mode != "mean":
        found = "no sentence-transformers Pooling module found" if mode is None else f"pooling {mode!r}"
        logger.warning(
            "score_head segment_cosine: %s is not a sentence-transformers bi-encoder with mean pooling (%s): "
            "the head starts as such a bi-encoder's cosine, so from these weights it starts from noise; use "
            "score_head cls instead unless you know better",
            name_or_path, found,
        )  # fmt: skip


def set_dropout(config: PretrainedConfig, dropout: float, name: str) -> None:
    """Set every dropout probability of `config` (hidden_dropout_prob, attention_probs_dropout_prob, DistilBERT's
    dropout, ...) to `dropout`; unset ones (None: "use another of them") stay unset."""
    check_fraction("dropout", dropout)
    names = [key for key, value in config.to_dict().items() if "dropout" in key and isinstance(value, float)]
    if not names:
        raise ParameterError(f"{{0}}: the config of {literal(name)} has no dropout probability to set", "dropout")
    for key in names:
        setattr(config, key, dropout)
