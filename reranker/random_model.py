"""`python -m reranker.random_model --tokenizer T --output DIR [--layers 12 --hidden 768]`: a randomly initialised
BERT cross-encoder with a tokenizer's vocabulary, saved with that tokenizer.

For timing a model size without its weights (the default is the bert-base shape) and for fast tests.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification

from reranker.cli.common import exits_on_bad_input
from reranker.errors import UsageError
from reranker.modeling import load_tokenizer


def save_random_bert(
    output_dir: str | Path,
    tokenizer_name_or_path: str,
    layers: int = 12,
    hidden: int = 768,
    heads: int = 12,
    intermediate: int | None = None,
    dropout: float = 0.1,
    seed: int = 0,
) -> Path:
    """Save a random one-label BERT (feed-forward `intermediate`, default 4 x hidden) and the tokenizer."""
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
    )
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return Path(output_dir)


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", required=True, help="Tokenizer folder or Hub name (its vocabulary is used).")
    parser.add_argument("--output", required=True, help="Model folder to write.")
    parser.add_argument("--layers", type=int, default=12, help="Transformer layers (default: 12, bert-base).")
    parser.add_argument("--hidden", type=int, default=768, help="Hidden size (default: 768, bert-base).")
    parser.add_argument("--heads", type=int, default=12, help="Attention heads (default: 12, bert-base).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random weights (default: 0).")
    args = parser.parse_args(argv)
    path = save_random_bert(args.output, args.tokenizer, args.layers, args.hidden, args.heads, seed=args.seed)
    print(f"wrote a random {args.layers}-layer, hidden-{args.hidden} BERT cross-encoder to {path}")


if __name__ == "__main__":
    raise SystemExit(main())
