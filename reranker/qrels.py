"""Relevance judgments: TREC `qid 0 docid rel` (also MS MARCO's TSV of the same shape) or `qid docid rel`."""

from __future__ import annotations

import os

from reranker.errors import InputError
from reranker.fields import parse_int, split_columns
from reranker.textio import iter_lines

Qrels = dict[str, dict[str, int]]


def read_qrels(path: str | os.PathLike) -> Qrels:
    """Read qrels into qid -> docid -> relevance grade (queries in first-appearance order)."""
    qrels: Qrels = {}
    for line, text in iter_lines(path):
        columns = split_columns(text, (3, 4), path, line)
        qid, docid, grade = columns[0], columns[-2], columns[-1]
        judged = qrels.setdefault(qid, {})
        if docid in judged:
            raise InputError(path, line, f"duplicate judgment of {docid!r} for query {qid!r}")
        judged[docid] = parse_int(grade, "relevance", path, line)
    return qrels
