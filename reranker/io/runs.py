"""Run files: TREC (`qid Q0 docid rank score tag`), MS MARCO (`qid docid rank`) and score (`qid docid score`).

Three-column files are told apart by their third column: a run whose third column counts 1, 2, 3, ... within
every query is an MS MARCO rank file; anything else is a score file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, NamedTuple

from tqdm import tqdm

from reranker.io.errors import InputError, ParameterError, check_at_least, literal
from reranker.io.fields import parse_float, parse_int, split_columns
from reranker.io.query_blocks import contiguous_blocks
from reranker.io.textio import iter_lines

RUN_FORMATS = ("auto", "trec", "marco", "score")  # what a run is read as
OUTPUT_FORMATS = ("marco", "trec")  # what a ranked run is written as
FORMAT_ALIASES = {"msmarco": "marco"}  # pyserini's name for the MS MARCO format
OUTPUT_FORMAT_NAMES = (*OUTPUT_FORMATS, *FORMAT_ALIASES)  # what the command line accepts


class RunEntry(NamedTuple):
    """One ranked candidate. `rank` is 1-based; for a score file it is the position in the file."""

    qid: str
    docid: str
    rank: int
    score: float
    line: int = 0


Run = dict[str, list[RunEntry]]


def ranked(entries: list[RunEntry]) -> list[RunEntry]:
    """A query's candidates in rank order."""
    return sorted(entries, key=lambda entry: entry.rank)


def _detect_three_column_format(rows: list[tuple[int, str, str, str, str]]) -> str:
    expected: dict[str, int] = {}
    for _, qid, _, third, _ in rows:
        expected[qid] = expected.get(qid, 0) + 1
        if third != str(expected[qid]):
            return "score"
    return "marco"


def _parse_rows(path: str | os.PathLike, run_format: str) -> tuple[str, list[tuple[int, str, str, str, str]]]:
    """Split every line into (line, qid, docid, rank text, score text) and settle the format."""
    rows = []
    first_count = None
    for line, text in tqdm(iter_lines(path), desc=f"reading {Path(path).name}", unit=" lines", mininterval=1):
        columns = split_columns(text, (3, 6), path, line)
        if first_count is None:
            first_count = len(columns)
            if run_format == "auto":
                run_format = "trec" if first_count == 6 else "three"
            expected = 6 if run_format == "trec" else 3
            if first_count != expected:
                raise InputError(path, line, f"expected {expected} columns for a {run_format} run, got {first_count}")
        elif len(columns) != first_count:
            raise InputError(path, line, f"expected {first_count} columns like line 1, got {len(columns)}")
        if first_count == 6:
            qid, _, docid, rank, score, _ = columns
        else:
            qid, docid, rank = columns
            score = rank
        rows.append((line, qid, docid, rank, score))
    if run_format == "three":
        run_format = _detect_three_column_format(rows)
    return run_format, rows


def read_run(path: str | os.PathLike, run_format: str = "auto", depth: int | None = None) -> Run:
    """Read a run into qid -> entries (queries in first-appearance order, entries in file order).

    Every line is checked (column count, numbers, duplicate (qid, docid)); only the first `depth` entries of
    each query are kept. For MS MARCO rank files the score is `-rank`, so that higher is better everywhere.
    """
    if run_format not in RUN_FORMATS:
        raise ParameterError(f"{{0}} must be one of {', '.join(RUN_FORMATS)}, got {literal(repr(run_format))}",
                             "run_format")  # fmt: skip
    check_at_least("depth", depth, 1)
    run_format, rows = _parse_rows(path, run_format)
    run: Run = {}
    seen: dict[str, set[str]] = {}
    ranks: dict[str, set[int]] = {}
    for line, qid, docid, rank_text, score_text in rows:
        entries = run.setdefault(qid, [])
        docids = seen.setdefault(qid, set())
        if docid in docids:
            raise InputError(path, line, f"duplicate candidate {docid!r} for query {qid!r}")
        docids.add(docid)
        position = len(docids)
        if run_format == "score":
            rank, score = position, parse_float(score_text, "score", path, line)
        else:
            rank = parse_int(rank_text, "rank", path, line)
            if rank < 1:
                raise InputError(path, line, f"rank must be >= 1, got {rank}")
            if rank in ranks.setdefault(qid, set()):
                raise InputError(path, line, f"rank {rank} appears twice for query {qid!r}")
            ranks[qid].add(rank)
            score = -float(rank) if run_format == "marco" else parse_float(score_text, "score", path, line)
        if depth is None or position <= depth:
            entries.append(RunEntry(qid, docid, rank, score, line))
    return run


def format_score(score: float) -> str:
    """The shortest text that reads back as the same float32 value."""
    import numpy as np

    return str(np.float32(score))


def format_score_line(qid: str, docid: str, score: float) -> str:
    """One line of a score file (the inference output): `qid<TAB>docid<TAB>score`."""
    return f"{qid}\t{docid}\t{format_score(score)}\n"


def write_marco_lines(handle: IO[str], qid: str, docids: Iterable[str]) -> int:
    """Write `qid<TAB>docid<TAB>rank` lines, ranks 1..n in the given order; return the number written."""
    count = 0
    for count, docid in enumerate(docids, start=1):
        handle.write(f"{qid}\t{docid}\t{count}\n")
    return count


def write_trec_lines(
    handle: IO[str], qid: str, scored: Iterable[tuple[str, float]], tag: str = "reranker", decimals: int | None = None
) -> int:
    """Write TREC 6-column lines, ranks 1..n in the given order; return the number written.

    Scores are the shortest float32 text, or fixed `decimals` (pyserini's runs have 6).
    """
    count = 0
    for count, (docid, score) in enumerate(scored, start=1):
        text = format_score(score) if decimals is None else f"{score:.{decimals}f}"
        handle.write(f"{qid} Q0 {docid} {count} {text} {tag}\n")
    return count


def resolve_output_format(name: str) -> str:
    """The output format `name` stands for (`msmarco` is pyserini's spelling of `marco`)."""
    name = FORMAT_ALIASES.get(name, name)
    if name not in OUTPUT_FORMATS:
        raise ParameterError(f"{{0}} must be one of {', '.join(OUTPUT_FORMAT_NAMES)}, got {literal(repr(name))}",
                             "output_format")  # fmt: skip
    return name


def write_ranked_lines(
    handle: IO[str],
    qid: str,
    scored: Iterable[tuple[str, float]],
    run_format: str,
    tag: str,
    decimals: int | None = None,
) -> int:
    """Write one query's ranked candidates as `marco` (`qid<TAB>docid<TAB>rank`) or `trec` lines (see
    `write_trec_lines`); return the number written."""
    if resolve_output_format(run_format) == "marco":
        return write_marco_lines(handle, qid, (docid for docid, _ in scored))
    return write_trec_lines(handle, qid, scored, tag, decimals)


def iter_score_blocks(
    path: str | os.PathLike, allow_empty: bool = False
) -> Iterator[tuple[str, list[tuple[str, float]]]]:
    """Stream a score file (`qid<TAB>docid<TAB>score`) one query block at a time, in file order.

    A query whose lines are not contiguous, or a repeated docid within a query, is an InputError.
    """
    for qid, block, _ in contiguous_blocks(_score_rows(path, allow_empty), path):
        yield qid, block


def _score_rows(path: str | os.PathLike, allow_empty: bool) -> Iterator[tuple[int, str, str, tuple[str, float]]]:
    for line, text in iter_lines(path, allow_empty=allow_empty):
        qid, docid, score_text = split_columns(text, (3,), path, line)
        yield line, qid, docid, (docid, parse_float(score_text, "score", path, line))
