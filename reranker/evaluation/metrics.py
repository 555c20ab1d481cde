"""Ranking metrics: the official MS MARCO MRR@10, and any ir_measures metric over the same ranking.

Ordering: a query's candidates are ranked by `RunEntry.rank` as `read_run` sets it: a TREC run's by its rank
column, or in trec_eval's order (by score, ties by docid descending) where the query's ranks are 0 or repeated; an
MS MARCO run's by its rank column (as the official MS MARCO script); a score file's by position in the file.
Every metric is averaged over ALL queries of the qrels, a query missing from the run counting 0 (trec_eval's `-c`;
the official MRR@10 does the same).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import ir_measures

from reranker.io.qrels import Qrels
from reranker.io.runs import Run, ranked
from reranker.io.summary import write_summary
from reranker.io.textio import atomic_output

DEFAULT_METRICS = ("nDCG@10", "R@100", "R@1000")


def official_mrr_at_10(qrels: Qrels, run: Run) -> float:
    """MS MARCO MRR@10: 1/rank of the first relevant candidate with rank <= 10, averaged over the qrels' queries."""
    total = 0.0
    for qid, judged in qrels.items():
        for entry in ranked(run.get(qid, [])):
            if entry.rank > 10:
                break
            if judged.get(entry.docid, 0) >= 1:
                total += 1.0 / entry.rank
                break
    return total / len(qrels)


def per_query_scores(qrels: Qrels, run: Run, names: Sequence[str]) -> dict[str, dict[str, float]]:
    """ir_measures metrics (e.g. `nDCG@10`, `RR@10`, `R@1000`) per query, on the run's rank order: metric name ->
    qid -> value, for every query of the qrels (0 for those the run lacks)."""
    measures = [ir_measures.parse_measure(name) for name in names]
    qrel_rows = [
        ir_measures.Qrel(qid, docid, grade) for qid, judged in qrels.items() for docid, grade in judged.items()
    ]
    # score = -position encodes the rank order exactly, so no evaluator can re-break ties differently
    run_rows = [
        ir_measures.ScoredDoc(qid, entry.docid, -float(position))
        for qid, entries in run.items()
        if qid in qrels
        for position, entry in enumerate(ranked(entries))
    ]
    values = {name: dict.fromkeys(qrels, 0.0) for name in names}
    by_measure = dict(zip(measures, names, strict=True))
    for metric in ir_measures.iter_calc(measures, qrel_rows, run_rows):
        if metric.query_id in qrels:
            values[by_measure[metric.measure]][metric.query_id] = metric.value
    return values


def ir_measures_scores(qrels: Qrels, run: Run, names: Sequence[str]) -> dict[str, float]:
    """ir_measures metrics averaged over every query of the qrels (`per_query_scores`)."""
    return {name: sum(values.values()) / len(qrels) for name, values in per_query_scores(qrels, run, names).items()}


@dataclass
class Evaluation:
    mrr_at_10: float
    queries_ranked: int
    queries_missing: int
    metrics: dict[str, float] = field(default_factory=dict)

    def report(self) -> str:
        """The official MS MARCO block, then the other metrics, one per line."""
        lines = ["#####################", f"MRR @10: {self.mrr_at_10}", f"QueriesRanked: {self.queries_ranked}"]
        lines.append("#####################")
        lines += [f"{name}: {value:.4f}" for name, value in self.metrics.items()]
        lines.append(f"QueriesWithoutCandidates: {self.queries_missing} (of the qrels' queries; counted as 0)")
        return "\n".join(lines)

    def write(self, path: str | os.PathLike, arguments: dict | None = None) -> None:
        """Write the report to `path`, with a summary beside it."""
        with atomic_output(path) as out:
            out.write(self.report() + "\n")
        write_summary(path, "evaluate", arguments or {}, mrr_at_10=self.mrr_at_10, metrics=self.metrics,
                      queries_ranked=self.queries_ranked, queries_missing=self.queries_missing)  # fmt: skip


def evaluate(qrels: Qrels, run: Run, metrics: Sequence[str] = DEFAULT_METRICS) -> Evaluation:
    """Evaluate a run against qrels."""
    return Evaluation(
        official_mrr_at_10(qrels, run),
        len(run),
        sum(1 for qid in qrels if qid not in run),
        ir_measures_scores(qrels, run, metrics) if metrics else {},
    )
