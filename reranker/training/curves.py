"""Training curves: the loss and the evaluation metrics over steps, from a run's trainer state (the command:
`python -m reranker.plot`)."""

from __future__ import annotations

import json
from pathlib import Path

from reranker.io.errors import InputError, UsageError

METRICS = {"eval_mrr_at_10": "MRR@10", "eval_ndcg_at_10": "nDCG@10"}


def read_log_history(run_dir: str | Path) -> list[dict]:
    """The Trainer's log history of a run (its final state, else its newest checkpoint's)."""
    run_dir = Path(run_dir)
    checkpoints = run_dir.glob("checkpoint-*/trainer_state.json")
    states = [run_dir / "trainer_state.json", *sorted(checkpoints, key=lambda p: -int(p.parent.name.split("-")[-1]))]
    for state in states:
        if state.is_file():
            try:
                return json.loads(state.read_text())["log_history"]
            except (ValueError, KeyError):
                raise InputError(state, None, "not a trainer_state.json with a log_history") from None
    raise UsageError(f"{run_dir}: no trainer_state.json (neither final nor in a checkpoint)")


def plot_curves(log_history: list[dict], output: str | Path, title: str = ""):
    """Draw the loss (left axis) and evaluation metrics (right axis) against the step; returns the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, loss_axis = plt.subplots(figsize=(8, 4.5))
    losses = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry]
    if not losses:
        raise UsageError("the log history has no training loss to plot")
    loss_axis.plot(*zip(*losses, strict=True), color="tab:blue", label="training loss")
    loss_axis.set_xlabel("step")
    loss_axis.set_ylabel("loss")
    handles = loss_axis.get_legend_handles_labels()
    evaluations = {key: [(e["step"], e[key]) for e in log_history if key in e] for key in METRICS}
    if any(evaluations.values()):
        metric_axis = loss_axis.twinx()
        for (key, points), color in zip(evaluations.items(), ("tab:orange", "tab:green"), strict=True):
            if points:
                metric_axis.plot(*zip(*points, strict=True), marker="o", color=color, label=METRICS[key])
        metric_axis.set_ylabel("metric")
        more = metric_axis.get_legend_handles_labels()
        handles = (handles[0] + more[0], handles[1] + more[1])
    loss_axis.legend(*handles, loc="center right")
    loss_axis.set_title(title)
    figure.tight_layout()
    figure.savefig(output, dpi=120)
    return figure
