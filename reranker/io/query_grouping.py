"""Grouping a file's lines by query on disk, for runs whose queries are not contiguous (trec_eval, ir_measures and
the reference's prepare read a run in any order; some tools write them interleaved, e.g. merged shards).

A stable external sort: the rows go into a throw-away SQLite table and come back ordered by (the query's first
appearance, line), through SQLite's sorter, which spills to temporary files: memory holds its page cache and one
integer per query, whatever the file's size. (Python has no external sort; SQLite is in the standard library and
already keeps the passages of the prepare stage out of memory.)
"""

from __future__ import annotations

import logging
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from reranker.io.passage_store import CACHE_KIB

logger = logging.getLogger(__name__)


def grouped_by_query(rows: Iterable[tuple[int, str, str, str, str]], folder: str | None = None) -> Iterator[tuple]:
    """`rows` (line, qid, then three text columns) with each query's rows together, queries in the order they first
    appear and each query's rows in file order (the line numbers unchanged, for error messages).

    Args:
        rows: the rows, in file order.
        folder: where the temporary table goes (default: the system's temporary folder).

    Yields:
        The same rows, grouped.
    """
    with tempfile.TemporaryDirectory(prefix="reranker-grouping-", dir=folder) as work:
        db = sqlite3.connect(Path(work) / "rows.sqlite")
        try:
            db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            db.execute("PRAGMA temp_store = FILE")  # the sorter spills to disk, not to memory
            db.execute("CREATE TABLE rows (query INTEGER, line INTEGER, qid TEXT, a TEXT, b TEXT, c TEXT)")
            order: dict[str, int] = {}  # query id -> its rank of first appearance
            numbered = ((order.setdefault(row[1], len(order)), *row) for row in rows)
            db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?)", numbered)  # streams: no batch in memory
            order.clear()
            yield from db.execute("SELECT line, qid, a, b, c FROM rows ORDER BY query, line")
        finally:
            db.close()
