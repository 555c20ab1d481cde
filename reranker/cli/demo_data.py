"""`python -m reranker.demo_data --output DIR`: a small real data slice from the Hub, for `make demo` on a
networked machine without `../shared/data/offline`.

From Tevatron/msmarco-passage's train split: the first `--train` rows become `train.jsonl.gz`; the next `--eval`
rows become an evaluation set `eval/`: their queries, their positives as qrels, and as candidates each query's
BM25 hard negatives with its positive, in a fixed shuffled order (`eval/run.shuffled.trec`), the passages of both
in `corpus.jsonl.gz`. Tevatron mined those negatives from BM25's top 200, so this is a reranking task on real
BM25 candidates; the candidate order is not BM25's, so the first-stage MRR@10 here is that of a random order.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reranker.cli.common import exits_on_bad_input
from reranker.first_stage.demo_data import write_demo_slice
from reranker.io.hub import iter_hub_rows


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="Folder to write.")
    parser.add_argument("--dataset", default="Tevatron/msmarco-passage", help="Hub training dataset.")
    parser.add_argument("--revision", default=None, help="Hub revision.")
    parser.add_argument("--train", type=int, default=1000, help="Training queries (default 1000).")
    parser.add_argument("--eval", type=int, default=200, help="Evaluation queries (default 200).")
    args = parser.parse_args(argv)
    write_demo_slice(iter_hub_rows(args.dataset, "train", args.revision), Path(args.output), args.train, args.eval)
    print(f"wrote {args.train} training and {args.eval} evaluation queries to {args.output}")


if __name__ == "__main__":
    raise SystemExit(main())
