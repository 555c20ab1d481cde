"""The published MS MARCO teacher scores (Hofstätter et al., 2020), as training rows.

The file (`bert_cat_ensemble_msmarcopassage_train_scores_ids.tsv`) has one line per training triple:
`pos_score<TAB>neg_score<TAB>qid<TAB>pid_pos<TAB>pid_neg`, about 40 million of them, not grouped by query. They are
joined with the queries (`qid<TAB>query`) and the collection (`pid<TAB>text`) into one Tevatron row per query, each
passage with its teacher `score`.

Memory stays bounded whatever the file's size: the triples are sorted by query on disk (sorted runs of `run_lines`
lines, kept as one compact string each, then merged), and the queries and the passages the triples name are looked
up in an SQLite store on disk, not held in dicts. Which passages those are comes from a sorted file of each run's
pids, merged into the store once the runs are done. The import resumes after a kill: its work folder
(`.OUT.work/` beside the output) records each sorted run and each batch of the collection once it is durable, and
the rows are written through `ResumableOutput`, with where each run's merge stood after each chunk of rows
recorded in the store, so a rerun of the same command loses at most one run (or one batch, or one chunk of rows),
re-reads nothing before it, and writes the same bytes as an uninterrupted run. A `.gz` output is written as one
gzip member per chunk of rows, compressed on `threads` threads beside the one building rows.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import os
import shutil
import sqlite3
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from reranker.io.corpus import iter_corpus
from reranker.io.errors import InputError
from reranker.io.fields import parse_float, split_columns
from reranker.io.hub import is_hub_name
from reranker.io.passage_store import add_wanted, copy_wanted_passages, open_passage_store, passage_texts
from reranker.io.queries import iter_query_file, read_queries
from reranker.io.resumable import ResumableOutput, partial_paths
from reranker.io.stamps import fingerprint, source_stamp
from reranker.io.summary import write_summary
from reranker.io.textio import atomic_output, gzip_member, iter_lines
from reranker.io.train_rows import format_train_row

logger = logging.getLogger(__name__)
Triple = tuple[str, int, str, str, float, float]  # qid, line, pid_pos, pid_neg, pos_score, neg_score
COLLECTION_BATCH = 100_000  # passages per committed step of the collection pass
STORE_VERSION = 3  # bump when the work folder's layout changes: an old one is then discarded, not resumed


@dataclass(frozen=True)
class TriplesStats:
    queries: int
    triples: int
    positives: int
    negatives: int
    score_disagreements: int  # a passage scored differently on two lines of its query: the first score is kept


def _read_triples(path: str | os.PathLike, skip: int) -> Iterator[tuple[int, str]]:
    """Yield (line, the triple as one sortable string) for every line after the first `skip`.

    One string per triple (about 100 bytes, a tuple of six objects is about 400) keeps a sorted run small. The
    line number is zero-padded so that string order is (qid, line) order within a qid; a tab sorts before any
    printable character, so one qid's lines stay together.
    """
    for line, text in iter_lines(path, skip=skip):
        pos_score, neg_score, qid, pid_pos, pid_neg = split_columns(text, (5,), path, line, sep="\t")
        for what, value in (("qid", qid), ("pid_pos", pid_pos), ("pid_neg", pid_neg)):
            if not value.strip():
                raise InputError(path, line, f"{what} is empty")
        pos, neg = parse_float(pos_score, "pos_score", path, line), parse_float(neg_score, "neg_score", path, line)
        yield line, f"{qid}\t{line:012d}\t{pid_pos}\t{pid_neg}\t{pos!r}\t{neg!r}\n"


def _parse(text: str) -> Triple:
    qid, line, pid_pos, pid_neg, pos_score, neg_score = text.rstrip("\n").split("\t")
    return qid, int(line), pid_pos, pid_neg, float(pos_score), float(neg_score)


class _Store:
    """The work folder: sorted runs as files, and an SQLite database of the queries, the wanted pids, their
    passages and how far each step got (`state`). Each step commits its progress with its data, so a kill loses
    only the step's uncommitted batch."""

    def __init__(self, folder: Path, job: str) -> None:
        self.folder = folder
        if folder.is_dir() and self._job() != job:
            logger.warning("discarding %s: it belongs to a different job", folder)
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.db = open_passage_store(folder / "store.sqlite")
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value);"
            "CREATE TABLE IF NOT EXISTS queries (qid TEXT PRIMARY KEY, query TEXT);"
        )
        self.set("job", job)
        self.db.commit()

    def _job(self) -> str | None:
        try:
            with sqlite3.connect(self.folder / "store.sqlite") as db:
                found = db.execute("SELECT value FROM state WHERE key = 'job'").fetchone()
        except sqlite3.Error:
            return None
        return found and found[0]

    def get(self, key: str, default=0):
        found = self.db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return default if found is None else found[0]

    def set(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, value))

    def run_file(self, number: int) -> Path:
        return self.folder / f"run{number:05d}.tsv"

    def pid_file(self, number: int) -> Path:
        return self.folder / f"pids{number:05d}.txt"

    def runs(self) -> list[Path]:
        return [self.run_file(number) for number in range(self.get("runs"))]

    def remove(self) -> None:
        self.db.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _load_queries(store: _Store, source: str) -> None:
    """Copy the queries into the store once (a duplicate qid is an error naming its line)."""
    if store.get("queries_loaded"):
        return
    store.db.execute("DELETE FROM queries")  # a batch left by a kill
    if is_hub_name(source):
        store.db.executemany("INSERT INTO queries VALUES (?, ?)", read_queries(source).items())
    else:
        for line, qid, query in iter_query_file(source):
            try:
                store.db.execute("INSERT INTO queries VALUES (?, ?)", (qid, query))
            except sqlite3.IntegrityError:
                raise InputError(source, line, f"duplicate query id {qid!r}") from None
    store.set("queries_loaded", 1)
    store.db.commit()


def _sort_runs(store: _Store, triples_path: str, run_lines: int) -> None:
    """Sort the triples not yet in a run into runs of `run_lines`; each run is durable (its file and the file of
    its distinct pids synced, `triples_lines` advanced, in one commit) before the next starts."""
    done = store.get("triples_lines")
    # one iterator over the bar: islice-ing the bar itself would start (and lose an item to) a new one each time
    lines = iter(tqdm(_read_triples(triples_path, done), desc="sorting triples", unit=" triples", mininterval=1,
                      initial=done))  # fmt: skip
    while batch := list(itertools.islice(lines, run_lines)):
        last_line = batch[-1][0]
        texts = sorted(text for _, text in batch)
        del batch
        number = store.get("runs")
        # a file, not inserts into `wanted`: a run's 2M random ids into a table of millions cost 40% more a run at
        # 100% than at 10%; the sorted files are merged into it once (`_wanted_table`). A list, not a set: as many
        # strings at 10% as at 100% (a set holds more distinct ids the larger the file).
        pids = sorted([pid for text in texts for pid in text.split("\t", 4)[2:4]])
        with atomic_output(store.pid_file(number)) as out:
            out.writelines(pid + "\n" for pid, _ in itertools.groupby(pids))
        del pids
        with atomic_output(store.run_file(number)) as out:
            out.writelines(texts)
        del texts  # else held while the next run is read: two runs in memory
        store.set("runs", number + 1)
        store.set("triples_lines", last_line)
        store.db.commit()


def _wanted_table(store: _Store) -> None:
    """Fill table `wanted` with the pids the runs name, merged from their sorted pid files, in one commit."""
    if store.get("wanted_done"):
        return
    with contextlib.ExitStack() as stack:
        # newline="\n": a pid may hold a carriage return, which universal newlines would split on
        files = [stack.enter_context(open(store.pid_file(number), encoding="utf-8", newline="\n"))
                 for number in range(store.get("runs"))]  # fmt: skip
        merged = (line.rstrip("\n") for line, _ in itertools.groupby(heapq.merge(*files)))
        add_wanted(store.db, tqdm(merged, desc="merging wanted pids", unit=" pids", mininterval=1))
    store.set("wanted_done", 1)
    store.db.commit()


def _passage_table(store: _Store, collection: str) -> None:
    """Fill table `passages` with the texts of the wanted pids, streaming the collection; each batch of
    COLLECTION_BATCH passages is committed with how far the collection was read."""
    if store.get("passages_done"):
        return
    done = store.get("collection_passages")
    bar = tqdm(desc="reading collection", unit=" passages", mininterval=1, initial=done)

    def committed(count: int) -> None:
        store.set("collection_passages", store.get("collection_passages") + count)
        store.db.commit()
        bar.update(count)

    passages = itertools.islice(iter_corpus(collection), done, None)
    copy_wanted_passages(store.db, passages, collection, COLLECTION_BATCH, committed)
    bar.close()
    store.set("passages_done", 1)
    store.db.commit()


def _run_lines(index: int, handle, offset: int) -> Iterator[tuple[str, int, int]]:
    """(line, `index`, the byte offset just after it) for each line of a sorted run from `offset`."""
    handle.seek(offset)
    for raw in handle:
        offset += len(raw)
        yield raw.decode("utf-8"), index, offset


def _groups(runs: list[Path], starts: list[int]) -> Iterator[tuple[str, list[Triple], list[int]]]:
    """(qid, its triples in line order, each run's byte offset after the qid's lines) for every qid, from the
    sorted runs merged, each read from its offset in `starts`. Lines are unique (they hold their line number), so
    the merge never compares past the text."""
    with contextlib.ExitStack() as stack:
        handles = [stack.enter_context(open(run, "rb")) for run in runs]
        positions, qid, texts = list(starts), None, []
        for text, index, end in heapq.merge(*map(_run_lines, itertools.count(), handles, starts)):
            line_qid = text[: text.index("\t")]
            if line_qid != qid and texts:
                yield qid, [_parse(line) for line in texts], positions.copy()
                texts = []
            qid = line_qid
            texts.append(text)
            positions[index] = end
        if texts:
            yield qid, [_parse(line) for line in texts], positions.copy()


def import_teacher_triples(
    triples_path: str,
    queries_path: str,
    collection: str,
    output: str,
    *,
    run_lines: int = 1_000_000,
    chunk_queries: int = 200,
    compress_level: int = 1,
    threads: int = 2,
    arguments: dict | None = None,
) -> TriplesStats:
    """Turn a teacher-scored triples TSV into Tevatron training rows with scores (gzipped if `output` ends in .gz).

    Rerunning the same command after a kill resumes it (see the module docstring); the output is byte-identical
    to an uninterrupted run's.

    Args:
        triples_path: `pos_score<TAB>neg_score<TAB>qid<TAB>pid_pos<TAB>pid_neg` lines.
        queries_path: the queries, `qid<TAB>query` (or JSONL).
        collection: the passages, `pid<TAB>text` or a Tevatron corpus JSONL.
        output: the training rows to write.
        run_lines: triples sorted in memory at a time (about 110 bytes each): also the most work a kill loses.
        chunk_queries: rows per written (and, for .gz, compressed) chunk.
        compress_level: gzip level of a .gz output (1: fastest; the rows compress about 4x even so).
        threads: threads compressing chunks of a .gz output beside the one building rows.
        arguments: settings to record in the summary.

    Returns:
        What was written. A qid missing from the queries or a pid missing from the collection is an InputError
        naming the triples line; nothing is written then (and the work folder is removed).

    Example:
        >>> stats = import_teacher_triples("bert_cat_ensemble_msmarcopassage_train_scores_ids.tsv",
        ...                                "queries.train.tsv", "collection.tsv", "train.teacher.jsonl.gz")
    """
    started = time.perf_counter()
    job = fingerprint(version=STORE_VERSION, triples=source_stamp(triples_path), queries=source_stamp(queries_path),
                      collection=source_stamp(collection), run_lines=run_lines, chunk_queries=chunk_queries,
                      compress_level=compress_level if output.endswith(".gz") else None)  # fmt: skip
    out_path = Path(output)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    store = _Store(out_path.with_name(f".{out_path.name}.work"), job)
    phases: dict[str, float] = {}  # seconds per step in this process (a resumed step counts only its rest)

    def timed(name: str, step, *args):
        began = time.perf_counter()
        result = step(store, *args)
        phases[name] = round(time.perf_counter() - began, 3)
        return result

    try:
        timed("queries", _load_queries, queries_path)
        timed("sort_runs", _sort_runs, triples_path, run_lines)
        timed("wanted", _wanted_table)
        timed("collection", _passage_table, collection)
        stats = timed("rows", _write_rows, triples_path, collection, output, job, chunk_queries, compress_level,
                      threads)  # fmt: skip
    except InputError:
        # bad input fails again on a rerun: leave nothing behind
        store.remove()
        for path in partial_paths(output):
            path.unlink(missing_ok=True)
        raise
    store.remove()
    write_summary(output, "teacher triples", arguments or {}, **asdict(stats),
                  seconds=round(time.perf_counter() - started, 3), phase_seconds=phases)  # fmt: skip
    return stats


def _write_rows(store, triples_path, collection, output, job, chunk_queries, level, threads) -> TriplesStats:
    counts = {"queries": 0, "triples": 0, "positives": 0, "negatives": 0, "score_disagreements": 0}
    compress = output.endswith(".gz")
    with ResumableOutput(output, job) as out, ThreadPoolExecutor(max(1, threads)) as pool:
        chunk = out.progress.chunks_seen
        runs = store.runs()
        positions = [0] * len(runs)
        if chunk:  # where the merge and the counts stood after the last chunk written
            saved = store.get(f"rows_after_chunk_{chunk}", None)
            if saved is None:
                raise RuntimeError(f"{output}: its partial output has no record in {store.folder}; delete "
                                   f"{' and '.join(map(str, partial_paths(output)))} and rerun")  # fmt: skip
            positions, counts = json.loads(saved)
        groups = _groups(runs, positions)
        pending: deque[tuple[Future, int, int, int]] = deque()

        def write_oldest() -> None:
            future, chunk, queries, triples = pending.popleft()
            out.write(future.result(), input_lines=out.progress.queries + queries, chunks_seen=chunk + 1,
                      queries=queries, candidates=triples)  # fmt: skip

        bar = tqdm(desc="writing rows", unit=" queries", mininterval=1, initial=out.progress.queries)
        while block := list(itertools.islice(groups, chunk_queries)):
            text = []
            for qid, triples, _ in block:
                kinds = _kinds(qid, triples, triples_path)
                _count(kinds, counts, len(triples))
                text.append(format_train_row(_row(store, qid, kinds, triples, triples_path, collection)))
            # committed before the chunk can be written, so that a resume finds it for any chunk written
            store.set(f"rows_after_chunk_{chunk + 1}", json.dumps([block[-1][2], counts]))
            store.db.commit()
            data = "".join(text).encode("utf-8")
            done = pool.submit(gzip_member, data, level) if compress else _done(data)
            pending.append((done, chunk, len(block), sum(len(triples) for _, triples, _ in block)))
            chunk += 1
            bar.update(len(block))
            if len(pending) > max(1, threads):  # bounded: at most threads + 1 chunks in memory
                write_oldest()
        while pending:
            write_oldest()
        bar.close()
    if counts["score_disagreements"]:
        logger.warning("%d passages were scored differently on two lines of their query; the first score was kept",
                       counts["score_disagreements"])  # fmt: skip
    return TriplesStats(**counts)


def _done(data: bytes) -> Future:
    future: Future = Future()
    future.set_result(data)
    return future


def _kinds(qid: str, triples: list[Triple], triples_path: str) -> dict[str, dict[str, tuple[float, int]]]:
    """The query's positives and negatives: pid -> (first score, its line); a pid on both sides is an error."""
    kinds: dict[str, dict[str, tuple[float, int]]] = {"positive": {}, "negative": {}, "disagreements": {}}
    disagreements = 0
    for _, line, pid_pos, pid_neg, pos_score, neg_score in triples:
        for kind, pid, score in (("positive", pid_pos, pos_score), ("negative", pid_neg, neg_score)):
            other = kinds["negative" if kind == "positive" else "positive"]
            if pid in other:
                raise InputError(triples_path, line, f"passage {pid!r} is both a positive and a negative "
                                 f"of query {qid!r}")  # fmt: skip
            first = kinds[kind].setdefault(pid, (score, line))
            disagreements += first[0] != score
    kinds["disagreements"] = {"": (float(disagreements), 0)}
    return kinds


def _count(kinds: dict, counts: dict[str, int], triples: int) -> None:
    counts["queries"] += 1
    counts["triples"] += triples
    counts["positives"] += len(kinds["positive"])
    counts["negatives"] += len(kinds["negative"])
    counts["score_disagreements"] += int(kinds["disagreements"][""][0])


def _row(store: _Store, qid: str, kinds: dict, triples: list[Triple], triples_path: str, collection: str) -> dict:
    found = store.db.execute("SELECT query FROM queries WHERE qid = ?", (qid,)).fetchone()
    if found is None:
        raise InputError(triples_path, triples[0][1], f"qid {qid!r} is not in the queries")
    row = {"query_id": qid, "query": found[0]}
    texts = passage_texts(store.db, [pid for kind in ("positive", "negative") for pid in kinds[kind]])
    for kind in ("positive", "negative"):
        row[f"{kind}_passages"] = [_passage(texts, pid, score, line, triples_path, collection, kind)
                                   for pid, (score, line) in kinds[kind].items()]  # fmt: skip
    return row


def _passage(texts, pid, score, line, triples_path, collection, kind) -> dict:
    found = texts.get(pid)
    if found is None:
        field = "pid_pos" if kind == "positive" else "pid_neg"
        raise InputError(triples_path, line, f"{field} {pid!r} is not in the collection {collection}")
    return {"docid": pid, "title": found[0], "text": found[1], "score": score}
