"""`python -m reranker.random_model --tokenizer T --output DIR [--layers 12 --hidden 768]`: a randomly initialised
BERT cross-encoder with a tokenizer's vocabulary, saved with that tokenizer.

For timing a model size without its weights (the default is the bert-base shape) and for fast tests.
"""

from __future__ import annotations

import argparse

from reranker.cli.common import exits_on_bad_input
from reranker.model.random_model import save_random_bert


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
