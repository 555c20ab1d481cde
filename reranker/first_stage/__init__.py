"""What comes before the cross-encoder: BM25 with pyserini (and its Java), hard-negative mining, the rerank input
file, and a demo data slice."""
