"""The full-size figures side by side, with the issue's two scaling checks, as a Markdown table.

    python benchmarks/full_size/compare.py /work/fullsize_data/s0.01 /work/fullsize_data/s0.1 /work/fullsize_data/s1

Reads each workdir's `results.json` (written by `run.py`) and prints, per stage, wall time and peak RSS at every
scale, then for the two largest scales: `time ratio` = large time / (small time x scale ratio) (linear: 1.0;
the target is at most 1.3) and `memory ratio` = large peak RSS / small peak RSS (flat: 1.0; the target is at most
1.2, except where a stage holds something by design).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def load(workdir: Path) -> dict[str, dict]:
    """stage -> its result row."""
    return {row["stage"]: row for row in json.loads((workdir / "results.json").read_text())}


def ratios(small: dict, large: dict) -> tuple[float | None, float | None]:
    """(time ratio, memory ratio) of one stage between two scales (None where a figure is missing)."""
    if not small or not large:
        return None, None
    scale = large["scale"] / small["scale"]
    return large["wall_s"] / (small["wall_s"] * scale), large["peak_rss_mib"] / small["peak_rss_mib"]


def table(runs: list[dict[str, dict]]) -> str:
    """The Markdown table of `runs` (one stage -> row dict per scale, smallest scale first)."""
    scales = [next(iter(run.values()))["scale"] for run in runs]
    header = ["stage"] + [f"{s:g}: wall s / RSS MiB" for s in scales] + ["time ratio", "memory ratio"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    stages = list(dict.fromkeys(stage for run in runs for stage in run))
    for stage in stages:
        cells = [stage]
        for run in runs:
            row = run.get(stage)
            cells.append(f"{row['wall_s']:,.1f} / {row['peak_rss_mib']:,.0f}" if row else "")
        time_ratio, memory_ratio = ratios(*(run.get(stage, {}) for run in runs[-2:]))
        cells += [f"{time_ratio:.2f}" if time_ratio else "", f"{memory_ratio:.2f}" if memory_ratio else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workdirs", nargs="+", type=Path, help="run.py workdirs, smallest scale first")
    args = parser.parse_args(argv)
    runs = [load(workdir) for workdir in args.workdirs]
    print(table(sorted(runs, key=lambda run: next(iter(run.values()))["scale"])))


if __name__ == "__main__":
    main()
