"""Turn reranker scores into an MS MARCO (qid docid rank) or TREC run. See README.md."""

import sys

from reranker.cli.convert import main

if __name__ == "__main__":
    sys.exit(main())
