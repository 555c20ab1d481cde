"""Run files: TREC (`qid Q0 docid rank score tag`), MS MARCO (`qid docid rank`) and score (`qid docid score`).

Three-column files are told apart by their third column: a run whose third column counts 1, 2, 3, ... within
every query is an MS MARCO rank file; anything else is a score file.

What orders a query's candidates, and so what `RunEntry.rank` holds (1..n, every consumer reads the same run):

- TREC: the rank column where it orders the query (every rank >= 1, none twice), as the official MS MARCO
  script reads ranks; where it does not (BEIR's `save_runfile` writes rank 0 on every line; some tools repeat
  ranks), the score, as trec_eval reads every run (`trec_eval_order`), the ranks reassigned 1..n in that order.
  Such files are read, as trec_eval, ranx, Tevatron and BEIR read them, instead of refused.
- MS MARCO: the rank column, as the official MS MARCO script reads it (each rank >= 1 and once per query).
- score: the line order (our inference writes each query sorted by score).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, NamedTuple

from tqdm import tqdm

from reranker.io.errors import InputError, ParameterError, check_at_least, literal
from reranker.io.fields import parse_float, parse_int, split_columns
from reranker.io.query_blocks import contiguous_blocks, first_scattered_line
from reranker.io.query_grouping import grouped_by_query
from reranker.io.textio import iter_lines, open_binary

logger = logging.getLogger(__name__)
RUN_FORMATS = ("auto", "trec", "marco", "score")  # what a run is read as
OUTPUT_FORMATS = ("marco", "trec")  # what a ranked run is written as
FORMAT_ALIASES = {"msmarco": "marco"}  # pyserini's name for the MS MARCO format
OUTPUT_FORMAT_NAMES = (*OUTPUT_FORMATS, *FORMAT_ALIASES)  # what the command line accepts


class RunEntry(NamedTuple):
    """One ranked candidate. `rank` is 1-based: a TREC run's rank column (its position in trec_eval's order where
    the query's ranks are 0 or repeated), an MS MARCO run's rank column, a score file's position in the file."""

    qid: str
    docid: str
    rank: int
    score: float
    line: int = 0


Run = dict[str, list[RunEntry]]
RunBlocks = Iterable[tuple[str, list[RunEntry]]]  # (qid, entries) per query, as `iter_run` streams them


def run_blocks(run: Run | RunBlocks) -> Iterator[tuple[str, list[RunEntry]]]:
    """(qid, entries) per query of a run in memory (`read_run`) or streamed (`iter_run`)."""
    return iter(run.items() if isinstance(run, Mapping) else run)


def ranked(entries: list[RunEntry]) -> list[RunEntry]:
    """A query's candidates in rank order."""
    return sorted(entries, key=lambda entry: entry.rank)


def trec_eval_order(entries: list[RunEntry]) -> list[RunEntry]:
    """A query's TREC candidates in trec_eval's order, their ranks reassigned 1..n in it.

    trec_eval ignores the rank column: it sorts by score, descending, and breaks ties by docno, descending
    (usnistgov/trec_eval, form_res_rels.c: `comp_sim_docno` returns `strcmp(p2->docno, p1->docno)` on equal sims);
    pytrec_eval, and so ir_measures, run the same code. Python orders str by code point, as strcmp orders UTF-8.

    Example:
        >>> [(e.docid, e.rank) for e in trec_eval_order([RunEntry("q", "a", 0, 1.0), RunEntry("q", "b", 0, 1.0),
        ...                                              RunEntry("q", "c", 0, 2.0)])]
        [('c', 1), ('b', 2), ('a', 3)]
    """
    ordered = sorted(entries, key=lambda entry: (entry.score, entry.docid), reverse=True)
    return [RunEntry(qid, docid, rank, score, line) for rank, (qid, docid, _, score, line) in enumerate(ordered, 1)]


def _three_column_format(path: str | os.PathLike) -> str:
    """`marco` if the third column counts 1, 2, 3, ... within every query, else `score`: a first pass over the
    file that stops at the first line that shows a score file (a score file's first line, as a rule)."""
    expected: dict[str, int] = {}
    for line, text in iter_lines(path):
        columns = split_columns(text, (3, 6), path, line)
        if len(columns) != 3:
            return "score"  # the parsing pass names the line
        qid, _, third = columns
        expected[qid] = expected.get(qid, 0) + 1
        if third != str(expected[qid]):
            return "score"
    return "marco"


def _parse_rows(path: str | os.PathLike, run_format: str) -> Iterator[tuple[int, str, str, str, str]]:
    """(line, qid, docid, rank text, score text) of every line, the column count checked against the format's."""
    columns_expected = None
    for line, text in tqdm(iter_lines(path), desc=f"reading {Path(path).name}", unit=" lines", mininterval=1):
        columns = split_columns(text, (3, 6), path, line)
        if columns_expected is None:
            columns_expected = 6 if run_format == "trec" else 3
            if len(columns) != columns_expected:
                raise InputError(path, line, f"expected {columns_expected} columns for a {run_format} run, got "
                                 f"{len(columns)}")  # fmt: skip
        elif len(columns) != columns_expected:
            raise InputError(path, line, f"expected {columns_expected} columns like line 1, got {len(columns)}")
        if columns_expected == 6:
            qid, _, docid, rank, score, _ = columns
        else:
            qid, docid, rank = columns
            score = rank
        yield line, qid, docid, rank, score


def _settle_format(path: str | os.PathLike, run_format: str) -> str:
    """The run's format: `run_format`, or (`auto`) TREC for 6 columns, MS MARCO or score for 3."""
    if run_format != "auto":
        return run_format
    for line, text in iter_lines(path):
        columns = split_columns(text, (3, 6), path, line)
        return "trec" if len(columns) == 6 else _three_column_format(path)
    return "trec"  # an empty run: no line to tell


def iter_run(
    path: str | os.PathLike, run_format: str = "auto", depth: int | None = None
) -> Iterator[tuple[str, list[RunEntry]]]:
    """Stream a run one query at a time: (qid, its entries best first), queries in file order. Memory holds one
    query, whatever the run's size (a 6.98M-line MS MARCO dev run is about 4 GiB as a dict).

    Every line is checked (column count, numbers, duplicate (qid, docid)), errors naming the line of the file. A
    run whose queries are not contiguous is read as trec_eval reads it: grouped on disk first
    (`reranker.io.query_grouping`, a second pass over the file and a stable external sort), queries then in the
    order they first appear. Only each query's best `depth` entries are kept. The order, and so the ranks, is the
    module's: a TREC run's by its rank column, or by score as trec_eval's where the rank column is 0 or repeated
    in the query (ranks then 1..n in that order); an MS MARCO run's by its rank column (score `-rank`, so that
    higher is better everywhere); a score file's by line.

    Args:
        path: the run file.
        run_format: `trec`, `marco`, `score`, or `auto` (6 columns: TREC; 3: told apart by the third column, in a
            first pass over the file).
        depth: the entries kept per query (None: all).

    Yields:
        (qid, the query's entries, best first).

    Example:
        >>> for qid, entries in iter_run("run.bm25.trec", depth=100):
        ...     print(qid, entries[0].docid)
    """
    if run_format not in RUN_FORMATS:
        raise ParameterError(f"{{0}} must be one of {', '.join(RUN_FORMATS)}, got {literal(repr(run_format))}",
                             "run_format")  # fmt: skip
    check_at_least("depth", depth, 1)
    run_format = _settle_format(path, run_format)
    order = _trec_order if run_format == "trec" else ranked
    rows = _parse_rows(path, run_format)
    scattered = first_scattered_line(_query_ids(path))
    if scattered is not None:
        logger.info("%s:%d: a query's lines are not contiguous; grouping the run by query on disk", path, scattered)
        rows = grouped_by_query(rows)
    for qid, block, _ in contiguous_blocks(((row[0], row[1], row[2], row) for row in rows), path):
        yield qid, order(_entries(block, run_format, path))[:depth]


def _query_ids(path: str | os.PathLike) -> Iterator[tuple[int, bytes]]:
    """(line, query id) of every line: the first column's bytes, undecoded and unchecked (the parsing pass decodes
    and checks each line; this pass costs about a seventh of a whole read, BENCHMARKS.md)."""
    with open_binary(path) as handle:
        for line, raw in enumerate(handle, start=1):
            yield line, raw.split(None, 1)[0] if raw.strip() else b""


def read_run(path: str | os.PathLike, run_format: str = "auto", depth: int | None = None) -> Run:
    """A whole run in memory: qid -> entries, best first (`iter_run`'s queries, checks and order). For runs of
    a few thousand queries; stream a large one with `iter_run`.

    Returns:
        qid -> the query's entries, best first.
    """
    return dict(iter_run(path, run_format, depth))


def _entries(block: list[tuple[int, str, str, str, str]], run_format: str, path: str | os.PathLike) -> list[RunEntry]:
    """One query's rows as entries, their ranks and scores read as `run_format` says."""
    entries = []
    taken: set[int] = set()
    for position, (line, qid, docid, rank_text, score_text) in enumerate(block, start=1):
        if run_format == "score":
            rank, score = position, parse_float(score_text, "score", path, line)
        elif run_format == "trec":
            rank, score = parse_int(rank_text, "rank", path, line), parse_float(score_text, "score", path, line)
        else:
            rank = _marco_rank(rank_text, taken, qid, path, line)
            score = -float(rank)
        entries.append(RunEntry(qid, docid, rank, score, line))
    return entries


def _trec_order(entries: list[RunEntry]) -> list[RunEntry]:
    """A TREC query's entries by their rank column, or in trec_eval's order where it is 0 or repeated."""
    ranks = [entry.rank for entry in entries]
    if min(ranks) >= 1 and len(set(ranks)) == len(ranks):
        return ranked(entries)
    return trec_eval_order(entries)


def _marco_rank(text: str, taken: set[int], qid: str, path: str | os.PathLike, line: int) -> int:
    """An MS MARCO rank column's value: its candidates' order, so each rank is >= 1 and once per query."""
    rank = parse_int(text, "rank", path, line)
    if rank < 1:
        raise InputError(path, line, f"rank must be >= 1, got {rank}")
    if rank in taken:
        raise InputError(path, line, f"rank {rank} appears twice for query {qid!r}")
    taken.add(rank)
    return rank


def format_score(score: float) -> str:
    """The shortest text that reads back as the same float32 value."""
    import numpy as np

    return str(np.float32(score))


def format_score_line(qid: str, docid: str, score: float) -> str:
    """One line of a score file (the inference output): `qid<TAB>docid<TAB>score`."""
    return f"{qid}\t{docid}\t{format_score(score)}\n"


def rank_scored(scored: Iterable[tuple[str, float]], run_format: str) -> list[tuple[str, float]]:
    """One query's (docid, score) pairs in the order a `run_format` run writes them: by score, descending; ties in
    input order for `marco` (as MS MARCO's and our rank columns are read), by docid descending for `trec`, the order
    trec_eval sorts ties into whatever the rank column says (`trec_eval_order`): so it reads the ranks written.

    Example:
        >>> rank_scored([("a", 1.0), ("b", 1.0), ("c", 2.0)], "trec")
        [('c', 2.0), ('b', 1.0), ('a', 1.0)]
    """
    if resolve_output_format(run_format) == "trec":
        return sorted(scored, key=lambda pair: (pair[1], pair[0]), reverse=True)
    return sorted(scored, key=lambda pair: -pair[1])  # sorted() is stable: ties keep input order


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


def iter_score_blocks(path: str | os.PathLike, allow_empty: bool = False, with_lines: bool = False) -> Iterator[tuple]:
    """Stream a score file (`qid<TAB>docid<TAB>score`) one query block at a time, in file order: (qid, its
    (docid, score) pairs), and the block's last line with `with_lines` (its lines are contiguous).

    A query whose lines are not contiguous, or a repeated docid within a query, is an InputError.
    """
    for qid, block, last_line in contiguous_blocks(_score_rows(path, allow_empty), path):
        yield (qid, block, last_line) if with_lines else (qid, block)


def _score_rows(path: str | os.PathLike, allow_empty: bool) -> Iterator[tuple[int, str, str, tuple[str, float]]]:
    for line, text in iter_lines(path, allow_empty=allow_empty):
        qid, docid, score_text = split_columns(text, (3,), path, line)
        yield line, qid, docid, (docid, parse_float(score_text, "score", path, line))
