"""A randomly initialised BERT cross-encoder with a tokenizer's vocabulary, saved with that tokenizer (the command:
`python -m reranker.random_model`).

For timing a model size without its weights (the default is the bert-base shape) and for fast tests.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification

from reranker.io.errors import UsageError
from reranker.model.loading import load_tokenizer


def save_random_bert(
    output_dir: str | Path,
    tokenizer_name_or_path: str,
    layers: int = 12,
    hidden: int = 768,
    heads: int = 12,
    intermediate: int | None = None,
    dropout: float = 0.1,
    seed: int = 0,
    initializer_range: float = 0.02,
) -> Path:
    """Save a random one-label BERT (feed-forward `intermediate`, default 4 x hidden) and the tokenizer.

    `initializer_range`: the weights' standard deviation; BERT's 0.02 scores every pair almost alike (spread
    ~1e-3), 0.1 spreads them (~0.1) for tests that compare scores."""
    if layers < 1 or hidden < 1 or heads < 1 or hidden % heads:
        raise UsageError(
            f"need layers, hidden, heads >= 1 and hidden divisible by heads, got {layers} {hidden} {heads}"
        )
    tokenizer = load_tokenizer(tokenizer_name_or_path)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate or 4 * hidden,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        num_labels=1,
        initializer_range=initializer_range,
    )
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return Path(output_dir)
