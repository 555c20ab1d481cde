"""`python -m reranker.plot --run_dir DIR --output curves.png`: training loss and evaluation metrics over steps."""

from __future__ import annotations

import argparse
from pathlib import Path

from reranker.cli.common import exits_on_bad_input
from reranker.training.curves import plot_curves, read_log_history


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run_dir", required=True, help="A train_reranker.py output_dir (or a checkpoint).")
    parser.add_argument("--output", required=True, help="Image to write (.png, .svg, .pdf).")
    args = parser.parse_args(argv)
    plot_curves(read_log_history(args.run_dir), args.output, title=Path(args.run_dir).name)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    raise SystemExit(main())
