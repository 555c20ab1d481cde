"""What a benchmark reports per system: its metrics, speed, and per query against the first stage."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from reranker.evaluation.metrics import official_mrr_at_10, per_query_scores
from reranker.io.qrels import Qrels
from reranker.io.runs import read_run
from reranker.io.textio import atomic_output

TIE = 1e-9  # nDCG@10 differences below this are ties


@dataclass(frozen=True)
class SystemRun:
    """A system's run file and how fast it came: `pairs_per_second` for rerankers, `seconds` its step's wall time
    as the step's summary recorded it (None where not measured here, e.g. a given first-stage run)."""

    name: str
    run: str
    pairs_per_second: float | None = None
    seconds: float | None = None
    pairs: int | None = None


@dataclass(frozen=True)
class SystemResult:
    """A system's row of the table; `wins`, `ties`, `losses` count queries against the first stage on nDCG@10."""

    name: str
    run: str
    ndcg_at_10: float
    mrr_at_10: float
    recall_at_100: float
    pairs_per_second: float | None
    seconds: float | None
    pairs: int | None = None
    wins: int | None = None
    ties: int | None = None
    losses: int | None = None


def compare_systems(qrels: Qrels, systems: list[SystemRun]) -> tuple[list[SystemResult], dict[str, list[float]]]:
    """Evaluate every run (the first is the first stage) over the qrels' queries.

    Returns:
        The rows, and for each reranker its per-query nDCG@10 minus the first stage's, sorted descending.
    """
    rows, differences, first = [], {}, None
    for system in systems:
        run = read_run(system.run)
        scores = per_query_scores(qrels, run, ["nDCG@10", "R@100"])
        ndcg = scores["nDCG@10"]
        counts = {}
        if first is None:
            first = ndcg
        else:
            delta = sorted((ndcg[qid] - first[qid] for qid in qrels), reverse=True)
            differences[system.name] = delta
            counts = {"wins": sum(d > TIE for d in delta), "ties": sum(abs(d) <= TIE for d in delta),
                      "losses": sum(d < -TIE for d in delta)}  # fmt: skip
        mean = {name: sum(values.values()) / len(qrels) for name, values in scores.items()}
        rows.append(SystemResult(system.name, system.run, mean["nDCG@10"], official_mrr_at_10(qrels, run),
                                 mean["R@100"], system.pairs_per_second, system.seconds, system.pairs,
                                 **counts))  # fmt: skip
    return rows, differences


def markdown_table(rows: list[SystemResult]) -> str:
    """One Markdown table: a row per system, the first stage first."""
    lines = ["| system | nDCG@10 | MRR@10 | R@100 | pairs | pairs/s | wall s | vs first stage (W/T/L) |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        speed = "-" if row.pairs_per_second is None else f"{row.pairs_per_second:.1f}"
        seconds = "-" if row.seconds is None else f"{row.seconds:.1f}"
        versus = "-" if row.wins is None else f"{row.wins}/{row.ties}/{row.losses}"
        pairs = "-" if row.pairs is None else str(row.pairs)
        lines.append(f"| {row.name} | {row.ndcg_at_10:.4f} | {row.mrr_at_10:.4f} | {row.recall_at_100:.4f} | "
                     f"{pairs} | {speed} | {seconds} | {versus} |")  # fmt: skip
    return "\n".join(lines)


def write_results(path: str | os.PathLike, rows: list[SystemResult], **facts) -> None:
    """`results.json`: the settings and facts given, and one record per system."""
    with atomic_output(path) as out:
        json.dump({**facts, "systems": [asdict(row) for row in rows]}, out, indent=2, default=str)
        out.write("\n")
