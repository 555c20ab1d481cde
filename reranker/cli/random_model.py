"""`python -m reranker.random_model --tokenizer T --output DIR [--layers 12 --hidden 768]`: a randomly initialised
BERT cross-encoder with a tokenizer's vocabulary, saved with that tokenizer. With `--decoder qwen3|llama --corpus
CORPUS` instead of --tokenizer: a random causal-LM decoder with a byte-level BPE tokenizer trained on the corpus's
first 3000 passages (`--layers 28 --hidden 1024 --heads 16 --kv_heads 8 --head_dim 128`: Qwen3-0.6B's shape).

For timing a model size without its weights (the default is the bert-base shape) and for fast tests.
"""

from __future__ import annotations

import argparse
import itertools

from reranker.cli.common import exits_on_bad_input
from reranker.io.corpus import iter_corpus
from reranker.io.errors import UsageError
from reranker.model.random_model import build_corpus_tokenizer, save_random_bert, save_random_decoder


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", help="Tokenizer folder or Hub name (its vocabulary is used).")
    parser.add_argument("--decoder", choices=("qwen3", "llama"), help="A decoder of this family instead of BERT.")
    parser.add_argument("--corpus", help="With --decoder: the corpus its tokenizer is trained on.")
    parser.add_argument("--kv_heads", type=int, default=None, help="Decoder: key/value heads (default: --heads).")
    parser.add_argument("--head_dim", type=int, default=None, help="Decoder: per-head size (default hidden/heads).")
    parser.add_argument("--output", required=True, help="Model folder to write.")
    parser.add_argument("--layers", type=int, default=12, help="Transformer layers (default: 12, bert-base).")
    parser.add_argument("--hidden", type=int, default=768, help="Hidden size (default: 768, bert-base).")
    parser.add_argument("--heads", type=int, default=12, help="Attention heads (default: 12, bert-base).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random weights (default: 0).")
    args = parser.parse_args(argv)
    if args.decoder:
        if not args.corpus:
            raise UsageError("--decoder needs --corpus (its tokenizer is trained there)")
        texts = (passage.text for _, passage in itertools.islice(iter_corpus(args.corpus), 3000))
        path = save_random_decoder(
            args.output,
            build_corpus_tokenizer(texts, args.decoder),
            args.decoder,
            layers=args.layers,
            hidden=args.hidden,
            heads=args.heads,
            kv_heads=args.kv_heads or args.heads,
            head_dim=args.head_dim,
            seed=args.seed,
        )
        print(f"wrote a random {args.layers}-layer, hidden-{args.hidden} {args.decoder} causal LM to {path}")
        return
    if not args.tokenizer:
        raise UsageError("give --tokenizer (BERT) or --decoder with --corpus")
    path = save_random_bert(args.output, args.tokenizer, args.layers, args.hidden, args.heads, seed=args.seed)
    print(f"wrote a random {args.layers}-layer, hidden-{args.hidden} BERT cross-encoder to {path}")


if __name__ == "__main__":
    raise SystemExit(main())
