"""Relevance judgments: TREC `qid 0 docid rel` (also MS MARCO's TSV of the same shape), `qid docid rel`, or BEIR's
TSV (`qid<TAB>docid<TAB>grade` under the header `query-id corpus-id score`)."""

from __future__ import annotations

import os

from reranker.io.errors import InputError
from reranker.io.fields import parse_int, split_columns
from reranker.io.textio import iter_lines

Qrels = dict[str, dict[str, int]]
BEIR_HEADER = ("query-id", "corpus-id", "score")


def format_qrels_line(qid: str, docid: str, grade: int) -> str:
    """One line of TREC qrels."""
    return f"{qid} 0 {docid} {grade}\n"


def read_qrels(path: str | os.PathLike, require_beir_header: bool = False) -> Qrels:
    """Read qrels into qid -> docid -> relevance grade (queries in first-appearance order); a first line that is
    BEIR's header is skipped, and with `require_beir_header` it must be there."""
    qrels: Qrels = {}
    width: tuple[int, ...] = (3, 4)
    for line, text in iter_lines(path):
        columns = split_columns(text, width, path, line)
        if line == 1:
            if tuple(columns) == BEIR_HEADER:
                width = (len(BEIR_HEADER),)
                continue
            if require_beir_header:
                raise InputError(path, line, f"expected the BEIR header '{' '.join(BEIR_HEADER)}', got {text!r:.80}")
        width = (len(columns),)  # every line as wide as the first
        qid, docid, grade = columns[0], columns[-2], columns[-1]
        judged = qrels.setdefault(qid, {})
        if docid in judged:
            raise InputError(path, line, f"duplicate judgment of {docid!r} for query {qid!r}")
        judged[docid] = parse_int(grade, "relevance", path, line)
    return qrels
