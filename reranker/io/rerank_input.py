"""The rerank input file: one JSONL line per (query, candidate), grouped by query.

Fields: `query_id`, `query`, `docid`, `text` (strings, required), `title` (string, optional) and `score` (the
first-stage score, optional). This is the schema the reference's `data_script.py` declared. An LLM reranker also
reads an optional `instruction` (the query's task instruction, the same on all its lines).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from reranker.io.arrow_cache import dataset_from_files
from reranker.io.errors import InputError
from reranker.io.fields import get_float, get_str, parse_json_object
from reranker.io.query_blocks import contiguous_blocks
from reranker.io.textio import iter_lines

FIELDS = {"query_id": "string", "query": "string", "docid": "string", "title": "string", "text": "string"}
SCORE_FIELD = ("score", "float32")


class RerankCandidate(NamedTuple):
    query_id: str
    query: str
    docid: str
    title: str
    text: str
    score: float
    instruction: str | None = None


@dataclass
class QueryBlock:
    """All candidates of one query; `last_line` is the input line of its last candidate; `instruction`: the
    query's own task instruction (None: the model's)."""

    query_id: str
    query: str
    candidates: list[RerankCandidate]
    last_line: int
    instruction: str | None = None


def format_candidate(candidate: RerankCandidate) -> str:
    """One line of a rerank file, fields in schema order (`instruction` only where there is one)."""
    fields = candidate._asdict()
    if fields["instruction"] is None:
        del fields["instruction"]
    return json.dumps(fields, ensure_ascii=False) + "\n"


def parse_candidate(path: str | os.PathLike, line: int, text: str) -> RerankCandidate:
    """Parse and check one line of a rerank file."""
    record = parse_json_object(path, line, text)
    return RerankCandidate(
        get_str(record, "query_id", path, line),
        get_str(record, "query", path, line),
        get_str(record, "docid", path, line),
        get_str(record, "title", path, line, required=False, nonempty=False),
        get_str(record, "text", path, line),
        get_float(record, "score", path, line, default=0.0),
        get_str(record, "instruction", path, line) if record.get("instruction") is not None else None,
    )


def iter_query_blocks(path: str | os.PathLike, skip_lines: int = 0) -> Iterator[QueryBlock]:
    """Stream a rerank file one query at a time, checking that each query's candidates are contiguous,
    unique and share one query text. `skip_lines` resumes after that many lines (a block boundary)."""
    for qid, candidates, last_line in contiguous_blocks(_candidate_rows(path, skip_lines), path):
        yield QueryBlock(qid, candidates[0].query, candidates, last_line, candidates[0].instruction)


def _candidate_rows(path: str | os.PathLike, skip_lines: int) -> Iterator[tuple[int, str, str, RerankCandidate]]:
    previous: RerankCandidate | None = None
    for line, text in iter_lines(path, skip=skip_lines):
        candidate = parse_candidate(path, line, text)
        if previous and candidate.query_id == previous.query_id and candidate.query != previous.query:
            raise InputError(path, line, f"query {candidate.query_id!r} has a different text than on earlier lines")
        if previous and candidate.query_id == previous.query_id and candidate.instruction != previous.instruction:
            raise InputError(path, line, f"query {candidate.query_id!r} has a different instruction than on earlier "
                             "lines")  # fmt: skip
        yield line, candidate.query_id, candidate.docid, candidate
        previous = candidate


@dataclass(frozen=True)
class RerankFileSummary:
    queries: int
    candidates: int
    min_depth: int
    max_depth: int

    def __str__(self) -> str:
        return (
            f"queries: {self.queries}\ncandidates: {self.candidates}\n"
            f"min depth per query: {self.min_depth}\nmax depth per query: {self.max_depth}"
        )


def summarize_rerank_file(path: str | os.PathLike) -> RerankFileSummary:
    """Validate a whole rerank file and count its queries and candidates."""
    depths = [len(block.candidates) for block in iter_query_blocks(path)]
    return RerankFileSummary(len(depths), sum(depths), min(depths), max(depths))


def rerank_features():
    """The `datasets.Features` of a rerank file."""
    import datasets

    features = {name: datasets.Value(kind) for name, kind in FIELDS.items()}
    features[SCORE_FIELD[0]] = datasets.Value(SCORE_FIELD[1])
    return datasets.Features(features)


def load_rerank_dataset(path: str | os.PathLike, cache_dir: str | None = None):
    """Load a checked rerank file as a `datasets.Dataset` (no loading script: works with `datasets` >= 4)."""
    return dataset_from_files(_checked_rows, [os.fspath(path)], rerank_features(), cache_dir)


def _checked_rows(files: list[str], stamps: list) -> Iterator[dict]:
    """Generator for the Arrow cache; `stamps` only keys the cache."""
    for path in files:
        for block in iter_query_blocks(path):
            yield from ({name: getattr(candidate, name) for name in (*FIELDS, SCORE_FIELD[0])}
                        for candidate in block.candidates)  # fmt: skip
