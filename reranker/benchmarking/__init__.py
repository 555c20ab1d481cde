"""The BEIR benchmark: from a BEIR folder to one results table (the command: `python -m reranker.benchmark`)."""
