"""The passages a job needs, out of a collection too large for memory: an SQLite table of the wanted ids and one of
their texts, filled by streaming the collection once. The teacher-triples import and the prepare stage share it.

MS MARCO's collection is 8.8M passages (about 3 GB of text); a dev rerank names about 5M of them, a teacher file
nearly all. As a dict that is several GiB; on disk it costs SQLite's page cache (`CACHE_KIB`).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

from reranker.io.corpus import Passage
from reranker.io.errors import InputError

CACHE_KIB = 64 * 1024  # SQLite's page cache: what the store holds in memory, whatever the collection's size
LOOKUP_PIDS = 500  # ids per SELECT: one statement per id cost a quarter of the import's time


def open_passage_store(path: str | Path, durable: bool = True) -> sqlite3.Connection:
    """Open (creating) an SQLite file with tables `wanted (pid)` and `passages (pid, title, text)`.

    Args:
        path: the database file.
        durable: False for a throw-away store (journal in memory, no syncs): faster, and lost on a crash.

    Returns:
        The connection.
    """
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    if not durable:
        db.execute("PRAGMA journal_mode = MEMORY")  # not OFF: a duplicate id rolls its batch back
        db.execute("PRAGMA synchronous = OFF")
    db.executescript(
        # WITHOUT ROWID: one B-tree keyed by pid, not a rowid table and an index beside it (half the pages)
        "CREATE TABLE IF NOT EXISTS wanted (pid TEXT PRIMARY KEY) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS passages (pid TEXT PRIMARY KEY, title TEXT, text TEXT);"
    )
    return db


def add_wanted(db: sqlite3.Connection, pids: Iterable[str]) -> None:
    """Add ids to `wanted` (repeats are fine; in sorted order, each insert appends to the table's last page)."""
    db.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", ((pid,) for pid in pids))


def copy_wanted_passages(
    db: sqlite3.Connection,
    passages: Iterable[tuple[int, Passage]],
    source: str,
    batch: int,
    after_batch: Callable[[int], None] = lambda count: None,
) -> None:
    """Copy the wanted passages of (line, passage) `passages` into `passages`, `batch` at a time; after each
    batch, `after_batch(passages read in it)` (to record progress and commit with it).

    A wanted id met twice in the collection is an InputError naming the second line.
    """
    passages = iter(passages)  # one iterator: islice over an iterable such as a tqdm bar would restart it each time
    while rows := list(itertools.islice(passages, batch)):
        if not db.in_transaction:
            db.execute("BEGIN")  # so that releasing the savepoint commits nothing: `after_batch` commits
        db.execute("SAVEPOINT batch")
        try:
            db.executemany("INSERT INTO passages SELECT ?, ?, ? WHERE ? IN (SELECT pid FROM wanted)",
                           [(p.docid, p.title, p.text, p.docid) for _, p in rows])  # fmt: skip
        except sqlite3.IntegrityError:
            db.execute("ROLLBACK TO batch")
            _raise_duplicate(db, rows, source)
        db.execute("RELEASE batch")
        after_batch(len(rows))


def _raise_duplicate(db: sqlite3.Connection, rows: list[tuple[int, Passage]], source: str) -> None:
    """The InputError for the first of `rows` whose wanted id is already stored (or earlier in `rows`)."""
    seen: set[str] = set()
    for line, passage in rows:
        stored = db.execute("SELECT 1 FROM passages WHERE pid = ?", (passage.docid,)).fetchone()
        if passage.docid in seen or stored:
            raise InputError(source, line, f"duplicate passage id {passage.docid!r}")
        if db.execute("SELECT 1 FROM wanted WHERE pid = ?", (passage.docid,)).fetchone():
            seen.add(passage.docid)
    raise RuntimeError("internal error: an integrity error without a duplicate passage id")


def passage_texts(db: sqlite3.Connection, pids: list[str]) -> dict[str, tuple[str, str]]:
    """pid -> (title, text) of those of `pids` in the store, LOOKUP_PIDS ids per statement."""
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(pids), LOOKUP_PIDS):
        part = pids[start : start + LOOKUP_PIDS]
        marks = ",".join("?" * len(part))
        rows = db.execute(f"SELECT pid, title, text FROM passages WHERE pid IN ({marks})", part)
        found.update((pid, (title, text)) for pid, title, text in rows)
    return found
