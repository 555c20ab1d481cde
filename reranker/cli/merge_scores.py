"""`python -m reranker.merge_scores --inputs S0 S1 ... --output OUT`: merge sharded score files into one.

Shard i of K holds chunks i, i+K, i+2K, ... of the input, so taking one chunk from each shard in turn restores the
input order: the merged file is the file a single process would have written. The merge checks that the shards
are disjoint and complete (every shard present, none cut short) and, where the shards have summaries, that they
come from the same job, with the same chunk size, as shards 0..K-1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reranker.cli.common import exits_on_bad_input, setup_logging
from reranker.inference.merge import merge_score_files


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", nargs="+", required=True, help="Shard score files, in shard index order.")
    parser.add_argument("--output", required=True, help="Merged score file.")
    parser.add_argument("--chunk_size", type=int, default=None, help="Only for shards without summaries.")
    args = parser.parse_args(argv)
    queries, candidates = merge_score_files([Path(p) for p in args.inputs], Path(args.output), args.chunk_size)
    print(f"merged {candidates} candidates of {queries} queries into {args.output}")


if __name__ == "__main__":
    raise SystemExit(main())
