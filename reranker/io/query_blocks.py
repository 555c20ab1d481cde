"""Files whose lines come grouped by query (rerank inputs, score files): the one check that they really are."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from reranker.io.errors import InputError

Item = TypeVar("Item")


def contiguous_blocks(
    rows: Iterable[tuple[int, str, str, Item]], path: str | os.PathLike | None
) -> Iterator[tuple[str, list[Item], int]]:
    """Group `(line, query id, docid, item)` rows, in file order, into `(query id, items, last line)` per query.

    A query whose lines are not contiguous, or a docid repeated within a query, is an InputError naming its line.
    """
    finished: set[str] = set()
    qid, items, docids, last_line = None, [], set(), 0
    for line, row_qid, docid, item in rows:
        if row_qid != qid:
            if qid is not None:
                finished.add(qid)
                yield qid, items, last_line
            if row_qid in finished:
                raise InputError(path, line, f"query {row_qid!r} appears again after its block ended; a query's "
                                 "lines must be contiguous")  # fmt: skip
            qid, items, docids = row_qid, [], set()
        if docid in docids:
            raise InputError(path, line, f"duplicate candidate {docid!r} for query {row_qid!r}")
        docids.add(docid)
        items.append(item)
        last_line = line
    if qid is not None:
        yield qid, items, last_line


def first_scattered_line(qids: Iterable[tuple[int, str | bytes]]) -> int | None:
    """The first line whose query's block had already ended (None: every query's lines are contiguous): the
    grouping check of `contiguous_blocks` alone, lean, for a pass over a whole run before it is parsed.

    Example:
        >>> first_scattered_line([(1, "a"), (2, "b"), (3, "a")])
        3
    """
    finished, current = set(), None
    for line, qid in qids:
        if qid != current:
            if qid in finished:
                return line
            finished.add(current)
            current = qid
    return None
