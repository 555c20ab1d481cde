"""The per-query picture of a benchmark: each reranker's nDCG@10 minus the first stage's, query by query."""

from __future__ import annotations

import os

from reranker.benchmarking.comparison import TIE
from reranker.io.textio import atomic_output


def plot_per_query(differences: dict[str, list[float]], first_stage: str, output: str | os.PathLike, title: str = ""):
    """Draw each reranker's sorted per-query differences (wins, ties and losses counted in the legend) into a PNG;
    returns the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    for name, delta in differences.items():
        wins, losses = sum(d > TIE for d in delta), sum(d < -TIE for d in delta)
        label = f"{name}: {wins} wins / {len(delta) - wins - losses} ties / {losses} losses"
        axis.plot(range(1, len(delta) + 1), delta, label=label)
    axis.axhline(0.0, color="grey", linewidth=0.8)
    axis.set_xlabel("queries, sorted by the difference")
    axis.set_ylabel(f"nDCG@10 minus {first_stage}'s")
    axis.set_title(title)
    axis.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    with atomic_output(output, "wb") as out:
        figure.savefig(out, format="png", dpi=100)
    plt.close(figure)
    return figure
