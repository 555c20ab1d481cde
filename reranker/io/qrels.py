"""Relevance judgments: TREC `qid 0 docid rel` (also MS MARCO's TSV of the same shape) or `qid docid rel`."""

from __future__ import annotations

import os

from reranker.io.errors import InputError
from reranker.io.fields import parse_int, split_columns
from reranker.io.textio import iter_lines

Qrels = dict[str, dict[str, int]]


def format_qrels_line(qid: str, docid: str, grade: int) -> str:
    """One line of TREC qrels."""
    return f"{qid} 0 {docid} {grade}\n"


def read_qrels(path: str | os.PathLike) -> Qrels:
    """Read qrels into qid -> docid -> relevance grade (queries in first-appearance order)."""
    qrels: Qrels = {}
    width: tuple[int, ...] = (3, 4)
    for line, text in iter_lines(path):
        columns = split_columns(text, width, path, line)
        width = (len(columns),)  # every line as wide as the first
        qid, docid, grade = columns[0], columns[-2], columns[-1]
        judged = qrels.setdefault(qid, {})
        if docid in judged:
            raise InputError(path, line, f"duplicate judgment of {docid!r} for query {qid!r}")
        judged[docid] = parse_int(grade, "relevance", path, line)
    return qrels
