"""Window scores turned into one score per document: FirstP, MaxP, SumP (Dai and Callan 2019), MeanP and the mean
of the k best windows (PyTerrier's `first_passage`, `max_passage`, `mean_passage`, `kmaxavg_passage(k)`).

Scores are window logits; the aggregate is rounded to float32, the precision every score file holds, so that two
documents tie here exactly when their written scores tie.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from reranker.io.errors import ParameterError, literal
from reranker.io.windows import split_window_id

AGGREGATES = ("firstp", "maxp", "sump", "meanp", "kmaxavg:K")


@dataclass(frozen=True)
class Aggregate:
    """One way to combine a document's window scores (`Aggregate.parse("kmaxavg:2")`).

    Example:
        >>> Aggregate.parse("kmaxavg:2")([(0, 1.0), (1, 3.0), (2, 2.0)])
        2.5
    """

    name: str
    k: int = 0

    @classmethod
    def parse(cls, text: str, parameter: str = "aggregate") -> Aggregate:
        """From its name: firstp, maxp, sump, meanp or kmaxavg:K (K >= 1); a ParameterError for another."""
        name, _, k = text.partition(":")
        if name in AGGREGATES[:4] and not k:
            return cls(name)
        if name == "kmaxavg" and k.isdigit() and k.isascii() and int(k) >= 1:
            return cls(name, int(k))
        raise ParameterError(f"{{0}} must be one of {', '.join(AGGREGATES)} (K >= 1), got {literal(repr(text))}",
                             parameter)  # fmt: skip

    def __call__(self, windows: list[tuple[int, float]]) -> float:
        """The document's score from its (window index, score) pairs."""
        scores = [score for _, score in windows]
        if self.name == "firstp":
            return min(windows)[1]  # the first window scored (window 0 unless a caller left it out)
        if self.name == "maxp":
            return max(scores)
        if self.name == "sump":
            return math.fsum(scores)
        if self.name == "meanp":
            return math.fsum(scores) / len(scores)
        best = sorted(scores, reverse=True)[: self.k]  # fewer windows than k: the mean of them all, as PyTerrier
        return math.fsum(best) / len(best)

    def __str__(self) -> str:
        return f"{self.name}:{self.k}" if self.k else self.name


def aggregate_windows(
    scored: Iterable[tuple[str, float]], aggregate: Aggregate, path: str | None = None, first_line: int | None = None
) -> list[tuple[str, float]]:
    """One query's (window id, score) pairs as (document id, aggregated score), documents in the order their first
    window appears (so ties keep input order when sorted stably).

    Args:
        scored: the query's windows, ids `DOCID#N` (`reranker.io.windows.window_id`).
        aggregate: how a document's windows combine.
        path, first_line: the file and line of the first pair, to name the line of an id that is not a window's.

    Returns:
        (docid, float32-rounded score) per document.

    Example:
        >>> aggregate_windows([("a#1", 3.0), ("b#0", 2.0), ("a#0", 1.0)], Aggregate("firstp"))
        [('a', 1.0), ('b', 2.0)]
    """
    documents: dict[str, list[tuple[int, float]]] = {}
    for offset, (candidate, score) in enumerate(scored):
        line = None if first_line is None else first_line + offset
        docid, index = split_window_id(candidate, path, line)
        documents.setdefault(docid, []).append((index, score))
    return [(docid, float(np.float32(aggregate(windows)))) for docid, windows in documents.items()]
