"""Train a BERT cross-encoder reranker (flags as in Tevatron's reranker example). See README.md."""

import sys

from reranker.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
