"""Join a first-stage run with query and passage texts into a rerank input file. See README.md."""

import sys

from reranker.cli.prepare import main

if __name__ == "__main__":
    sys.exit(main())
