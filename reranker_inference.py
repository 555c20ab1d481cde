"""Score a rerank input file with a cross-encoder (flags as in Tevatron's reranker example). See README.md."""

import sys

from reranker.cli.infer import main

if __name__ == "__main__":
    sys.exit(main())
