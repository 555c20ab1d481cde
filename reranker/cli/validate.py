"""`python data_script.py FILE`: check a rerank input file and print its counts."""

from __future__ import annotations

import argparse

from reranker.cli.common import exits_on_bad_input
from reranker.io.rerank_input import summarize_rerank_file


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", help="Rerank input JSONL (optionally gzipped).")
    args = parser.parse_args(argv)
    print(summarize_rerank_file(args.path))
