"""Ranking metrics: the official MS MARCO MRR@10, and any ir_measures metric over the same ranking.

Ordering: a query's candidates are ranked by `RunEntry.rank` as `read_run` sets it: a TREC run's by its rank
column, or in trec_eval's order (by score, ties by docid descending) where the query's ranks are 0 or repeated; an
MS MARCO run's by its rank column (as the official MS MARCO script); a score file's by position in the file.
Every metric is averaged over ALL queries of the qrels, a query missing from the run counting 0 (trec_eval's `-c`;
the official MRR@10 does the same).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import ir_measures

from reranker.io.qrels import Qrels
from reranker.io.runs import Run, RunBlocks, RunEntry, ranked, run_blocks
from reranker.io.summary import write_summary
from reranker.io.textio import atomic_output

DEFAULT_METRICS = ("nDCG@10", "R@100", "R@1000")


QUERIES_PER_CALL = 100  # queries handed to ir_measures at once: its rows for them (100,000 at depth 1000) are held


def _batches(run: Run | RunBlocks) -> Iterator[list[tuple[str, list[RunEntry]]]]:
    """The run's queries, QUERIES_PER_CALL at a time (a dict's items, or a stream's blocks as they come)."""
    blocks = run_blocks(run)
    while batch := list(itertools.islice(blocks, QUERIES_PER_CALL)):
        yield batch


def _reciprocal_rank(judged: dict[str, int], entries: list[RunEntry]) -> float:
    """1/rank of the first relevant candidate with rank <= 10, else 0 (the official MS MARCO MRR@10's term)."""
    for entry in ranked(entries):
        if entry.rank > 10:
            break
        if judged.get(entry.docid, 0) >= 1:
            return 1.0 / entry.rank
    return 0.0


def official_mrr_at_10(qrels: Qrels, run: Run | RunBlocks) -> float:
    """MS MARCO MRR@10: 1/rank of the first relevant candidate with rank <= 10, averaged over the qrels' queries."""
    return evaluate(qrels, run, []).mrr_at_10


def _add_batch_scores(values: dict[str, dict[str, float]], qrels: Qrels, batch: list, names: Sequence[str]) -> None:
    """Put the ir_measures `names` of the batch's judged queries into `values` (metric name -> qid -> value)."""
    measures = [ir_measures.parse_measure(name) for name in names]
    judged = [(qid, entries) for qid, entries in batch if qid in qrels]
    qrel_rows = [ir_measures.Qrel(qid, docid, grade) for qid, _ in judged for docid, grade in qrels[qid].items()]
    # score = -position encodes the rank order exactly, so no evaluator can re-break ties differently
    run_rows = [ir_measures.ScoredDoc(qid, entry.docid, -float(position))
                for qid, entries in judged for position, entry in enumerate(ranked(entries))]  # fmt: skip
    by_measure = dict(zip(measures, names, strict=True))
    for metric in ir_measures.iter_calc(measures, qrel_rows, run_rows):
        values[by_measure[metric.measure]][metric.query_id] = metric.value


def per_query_scores(qrels: Qrels, run: Run | RunBlocks, names: Sequence[str]) -> dict[str, dict[str, float]]:
    """ir_measures metrics (e.g. `nDCG@10`, `RR@10`, `R@1000`) per query, on the run's rank order: metric name ->
    qid -> value, for every query of the qrels (0 for those the run lacks). A stream of blocks (`iter_run`) is
    evaluated QUERIES_PER_CALL queries at a time, so memory does not grow with the run."""
    values = {name: dict.fromkeys(qrels, 0.0) for name in names}
    for batch in _batches(run):
        _add_batch_scores(values, qrels, batch, names)
    return values


def ir_measures_scores(qrels: Qrels, run: Run | RunBlocks, names: Sequence[str]) -> dict[str, float]:
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


def evaluate(qrels: Qrels, run: Run | RunBlocks, metrics: Sequence[str] = DEFAULT_METRICS) -> Evaluation:
    """Evaluate a run against qrels in one pass: the official MRR@10 and the ir_measures `metrics`, averaged over
    the qrels' queries (each sum taken in the qrels' order, so a dict and a stream give the same floats).

    Args:
        qrels: qid -> docid -> grade.
        run: qid -> entries (`read_run`), or a stream of (qid, entries) (`iter_run`): held QUERIES_PER_CALL
            queries at a time.
        metrics: ir_measures names; none for the official MRR@10 alone.

    Returns:
        The Evaluation.

    Example:
        >>> print(evaluate(read_qrels("qrels.dev.tsv"), iter_run("run.marco")).report())
    """
    reciprocal = dict.fromkeys(qrels, 0.0)
    values = {name: dict.fromkeys(qrels, 0.0) for name in metrics}
    queries_ranked, judged_ranked = 0, set()
    for batch in _batches(run):
        queries_ranked += len(batch)
        judged = [(qid, entries) for qid, entries in batch if qid in qrels]
        judged_ranked.update(qid for qid, _ in judged)
        reciprocal.update((qid, _reciprocal_rank(qrels[qid], entries)) for qid, entries in judged)
        if metrics:
            _add_batch_scores(values, qrels, judged, metrics)
    return Evaluation(
        sum(reciprocal.values()) / len(qrels),
        queries_ranked,
        len(qrels) - len(judged_ranked),
        {name: sum(per_query.values()) / len(qrels) for name, per_query in values.items()},
    )
