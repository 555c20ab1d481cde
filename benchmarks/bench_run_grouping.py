"""Reading a run in any order: a whole `iter_run` pass over a large run grouped by query and over the same lines
scattered, and the share of the contiguity pass that every read now makes first.

    python benchmarks/bench_run_grouping.py [--run ../shared/data/offline/dev600/run.bm25.trec] [--copies 100]
        [--workdir /tmp/run_grouping]

Builds `grouped.trec` (the run's lines in `--copies` copies, query ids renamed per copy) and `mixed.trec` (the
same lines dealt round-robin into 7 piles: every query scattered), then prints per file the entries read, the
whole pass's time, the contiguity pass's time and last `scattered_vs_grouped=X.XX` (the ratio of whole passes).
Run it under `/usr/bin/time -v` for the peak RSS.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reranker.io.query_blocks import first_scattered_line  # noqa: E402
from reranker.io.runs import _query_ids, iter_run  # noqa: E402


def build(run: Path, copies: int, workdir: Path) -> tuple[Path, Path]:
    lines = run.read_text().splitlines(keepends=True)
    big = [f"{copy}_{line}" for copy in range(copies) for line in lines]
    workdir.mkdir(parents=True, exist_ok=True)
    grouped, mixed = workdir / "grouped.trec", workdir / "mixed.trec"
    grouped.write_text("".join(big))
    mixed.write_text("".join("".join(big[pile::7]) for pile in range(7)))
    return grouped, mixed


def timed_read(path: Path) -> float:
    started = time.perf_counter()
    first_scattered_line(_query_ids(path))
    prepass = time.perf_counter() - started
    started = time.perf_counter()
    count = sum(len(entries) for _, entries in iter_run(path))
    whole = time.perf_counter() - started
    print(f"{path.name}: {count} entries; iter_run {whole:.1f} s, of which the contiguity pass {prepass:.1f} s "
          f"({prepass / whole:.0%})")  # fmt: skip
    return whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("../shared/data/offline/dev600/run.bm25.trec"))
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/run_grouping"))
    args = parser.parse_args()
    grouped, mixed = build(args.run, args.copies, args.workdir)
    print(f"scattered_vs_grouped={timed_read(mixed) / timed_read(grouped):.2f}")


if __name__ == "__main__":
    main()
