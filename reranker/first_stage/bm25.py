"""The BM25 first stage, with pyserini's Lucene indexer and searcher (the command: `python -m reranker.bm25`).

`index` converts a Tevatron or BEIR JSONL or an MS MARCO TSV corpus to Anserini's JsonCollection and runs Anserini's
IndexCollection on it (the indexer behind `python -m pyserini.index.lucene`). `search` takes the flags of
`python -m pyserini.search.lucene` and writes the same run: same queries in the same order, same docids, ranks
and scores, and the `Anserini` tag.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from reranker.first_stage.java import start_jvm
from reranker.io.corpus import Passage, iter_corpus
from reranker.io.errors import InputError, ParameterError, UsageError, check_at_least, literal
from reranker.io.queries import read_queries
from reranker.io.runs import resolve_output_format, write_ranked_lines
from reranker.io.stamps import file_stamp, fingerprint
from reranker.io.summary import write_summary
from reranker.io.textio import atomic_folder, atomic_output, has_file_suffix

logger = logging.getLogger(__name__)

RUN_TAG = "Anserini"  # what pyserini's CLI writes when --output is given
INDEX_ARGS = ("-collection", "JsonCollection", "-generator", "DefaultLuceneDocumentGenerator")
INDEX_STORE_FLAGS = ("-storePositions", "-storeDocvectors", "-storeRaw")


# ---------------------------------------------------------------------------------------------------- indexing


def passage_contents(passage: Passage) -> str:
    """The text Lucene indexes: `title text` when there is a title, else the text (as pyserini's MS MARCO index)."""
    return f"{passage.title} {passage.text}" if passage.title.strip() else passage.text


@dataclass(frozen=True)
class IndexStats:
    passages: int
    convert_seconds: float
    index_seconds: float

    @property
    def seconds(self) -> float:
        return self.convert_seconds + self.index_seconds


def write_json_collection(corpus: str, folder: Path, files: int = 1) -> int:
    """Write the corpus as `{id, contents}` lines spread over `files` JSONL files; return the passage count.

    Duplicate ids are an InputError: they would give duplicate hits, which every later stage refuses.
    """
    hashes = array("q")  # 8 bytes a passage instead of a set of strings: 70 MB for all of MS MARCO
    handles = [open(folder / f"part{number:03d}.jsonl", "w", encoding="utf-8") for number in range(files)]
    count = 0
    try:
        for count, (_, passage) in enumerate(
            tqdm(iter_corpus(corpus), desc="converting corpus", unit=" passages"), start=1
        ):
            hashes.append(hash(passage.docid))
            # round robin, so that each of Anserini's threads (one per file) gets an equal share
            record = {"id": passage.docid, "contents": passage_contents(passage)}
            handles[count % files].write(json.dumps(record) + "\n")
    finally:
        for handle in handles:
            handle.close()
    _check_unique_ids(corpus, hashes)
    return count


def _check_unique_ids(corpus: str, hashes: array) -> None:
    import numpy as np

    ordered = np.sort(np.frombuffer(hashes, dtype=np.int64))
    repeated = set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
    if not repeated:
        return
    # a repeated hash is almost surely a repeated id; a second pass finds its lines
    first_line: dict[str, int] = {}
    for line, passage in iter_corpus(corpus):
        if hash(passage.docid) in repeated:
            if passage.docid in first_line:
                message = f"duplicate passage id {passage.docid!r} (first on line {first_line[passage.docid]})"
                raise InputError(corpus, line, message)
            first_line[passage.docid] = line


def is_lucene_index(path: Path) -> bool:
    return path.is_dir() and any(path.glob("segments_*"))


def _check_index_target(index: Path, overwrite: bool) -> None:
    if not index.exists() or (index.is_dir() and not any(index.iterdir())):
        return
    if not is_lucene_index(index):
        raise UsageError(f"{index} exists and is not a Lucene index; refusing to replace it")
    if not overwrite:
        raise ParameterError(f"{literal(index)} already holds an index; pass {{0}} to replace it", "overwrite")


def build_index(
    corpus: str, index: str | os.PathLike, threads: int = 1, overwrite: bool = False, quiet: bool = False
) -> IndexStats:
    """Index a corpus with Anserini's IndexCollection (BM25, default analyzer, positions, docvectors and raw docs).

    The index is built in a temporary folder beside `index` and renamed into place when complete; `quiet`
    silences Anserini's log.
    """
    check_at_least("threads", threads, 1)
    index = Path(index)
    _check_index_target(index, overwrite)
    index.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(index) as done, tempfile.TemporaryDirectory(prefix=f".{index.name}.", dir=index.parent) as tmp:
        started = time.perf_counter()
        passages = write_json_collection(corpus, Path(tmp), threads)
        converted = time.perf_counter()
        _run_index_collection(Path(tmp), done, threads, passages, corpus, quiet)
        indexed = time.perf_counter()
    return IndexStats(passages, converted - started, indexed - converted)


def _run_index_collection(
    collection: Path, index: Path, threads: int, expected: int, corpus: str, quiet: bool = False
) -> None:
    start_jvm()
    from jnius import autoclass

    args = autoclass("io.anserini.index.IndexCollection$Args")()
    flags = autoclass("java.util.ArrayList")()
    for flag in (*INDEX_ARGS, "-input", str(collection), "-index", str(index), "-threads", str(threads)):
        flags.add(flag)
    for flag in (*INDEX_STORE_FLAGS, *(["-quiet"] if quiet else [])):
        flags.add(flag)
    autoclass("org.kohsuke.args4j.CmdLineParser")(args).parseArgument(flags)
    # constructing and running the indexer (instead of IndexCollection.main) lets errors reach Python
    indexer = autoclass("io.anserini.index.IndexCollection")(args)
    indexer.run()
    counters = indexer.getCounters()
    indexed, errors = counters.indexed.get(), counters.errors.get()
    if indexed != expected or errors:
        raise InputError(corpus, None, f"Lucene indexed {indexed} of {expected} passages ({errors} errors)")


def default_index_cache() -> Path:
    """Where cached indexes go: `$RERANKER_CACHE/bm25`, by default `~/.cache/reranker/bm25`."""
    return Path(os.environ.get("RERANKER_CACHE") or Path.home() / ".cache" / "reranker") / "bm25"


def cached_index(corpus: str | os.PathLike, cache_dir: str | os.PathLike | None = None, threads: int = 1) -> Path:
    """The index of a local corpus file, built on first use and kept in `cache_dir` (default:
    `default_index_cache()`) under a name keyed by the file's path, size and mtime, so that a changed corpus gets
    a new index. A build that was killed left no index under the final name and is redone.

    Example:
        >>> index = cached_index("beir/scifact/corpus.jsonl.gz")
    """
    key = fingerprint(corpus=file_stamp(corpus))[:16]
    index = Path(cache_dir or default_index_cache()) / f"{Path(corpus).name}.{key}"
    if not is_lucene_index(index):
        logger.info("building the BM25 index of %s in %s", corpus, index)
        build_index(os.fspath(corpus), index, threads, quiet=True)
    return index


# ----------------------------------------------------------------------------------------------------- search


def looks_like_path(name: str) -> bool:
    return os.sep in name or name.startswith(".") or has_file_suffix(name)


def pyserini_order(queries: dict[str, str]) -> list[tuple[str, str]]:
    """Queries in the order pyserini's CLI searches a topics file: by number when every id is one, else by text."""
    if all(qid.isdigit() for qid in queries):
        return sorted(queries.items(), key=lambda item: int(item[0]))
    return sorted(queries.items())


def load_topics(topics: str) -> list[tuple[str, str]]:
    """(qid, query) pairs from a local `qid<TAB>query` file, or from a pyserini topics name (downloaded)."""
    if Path(topics).exists():
        return pyserini_order(read_queries(topics))
    if looks_like_path(topics):
        raise InputError(topics, None, "no such file")
    start_jvm()
    from pyserini.query_iterator import TopicsFormat, get_query_iterator
    from pyserini.search._base import topics_mapping

    if topics not in topics_mapping:
        raise ParameterError(f"{{0}} {literal(repr(topics))}: no such file, and not a pyserini topics name", "topics")
    try:
        return [(str(qid), text) for qid, text in get_query_iterator(topics, TopicsFormat.DEFAULT)]
    except Exception as err:  # a download failure deep inside pyserini: one line instead of a traceback
        raise UsageError(f"cannot load pyserini topics {topics!r}: {err}") from None


def open_searcher(index: str, k1: float | None = None, b: float | None = None):
    """A pyserini LuceneSearcher on a local index folder or a prebuilt index name (downloaded), set to BM25.

    Without k1 and b, pyserini's defaults apply: its per-index values for prebuilt MS MARCO indexes, else 0.9/0.4.
    """
    path = Path(index)
    if path.exists() and not is_lucene_index(path):
        raise ParameterError(f"{{0}} {literal(index)}: not a Lucene index folder (no segments_N file)", "index")
    if not path.exists() and looks_like_path(index):
        raise ParameterError(f"{{0}} {literal(index)}: no such index folder", "index")
    start_jvm()
    from pyserini.search.lucene import LuceneSearcher

    if path.exists():
        searcher = LuceneSearcher(str(path))
    else:
        from pyserini.prebuilt_index_info import TF_INDEX_INFO

        if index not in TF_INDEX_INFO:
            raise ParameterError(
                f"{{0}} {literal(index)}: no such index folder, and not a pyserini prebuilt index name", "index"
            )
        searcher = LuceneSearcher.from_prebuilt_index(index)
        if searcher is None:
            raise ParameterError(f"{{0}} {literal(index)}: could not download the prebuilt index", "index")
    if k1 is None and b is None:
        import importlib

        # pyserini's CLI keeps its per-index BM25 defaults in its __main__ module
        importlib.import_module("pyserini.search.lucene.__main__").set_bm25_parameters(searcher, index)
    else:
        searcher.set_bm25(float(k1), float(b))
    return searcher


def search_topics(
    searcher, topics: Sequence[tuple[str, str]], hits: int = 1000, threads: int = 1, batch_size: int = 1
) -> Iterator[tuple[str, list[tuple[str, float]]]]:
    """Yield (qid, [(docid, score), ...]) per query in topic order, as pyserini's CLI searches.

    One query at a time with one thread and batch size 1, else `batch_search` on batches of `batch_size`;
    the hits do not depend on the batching.
    """
    if threads <= 1 and batch_size <= 1:
        for qid, query in topics:
            yield qid, [(hit.docid.strip(), hit.score) for hit in searcher.search(query, hits)]
        return
    for start in range(0, len(topics), batch_size):
        batch = topics[start : start + batch_size]
        results = searcher.batch_search([query for _, query in batch], [qid for qid, _ in batch], hits, threads)
        for qid, _ in batch:
            yield qid, [(hit.docid.strip(), hit.score) for hit in results[qid]]


@dataclass(frozen=True)
class SearchStats:
    queries: int
    lines: int
    without_hits: int
    seconds: float


def write_run(
    results: Iterator[tuple[str, list[tuple[str, float]]]], output: str, output_format: str, total: int
) -> SearchStats:
    """Write search results as a TREC (`qid Q0 docid rank score Anserini`) or MS MARCO (`qid docid rank`) run."""
    started = time.perf_counter()
    queries = lines = empty = 0
    with atomic_output(output) as out:
        for qid, scored in tqdm(results, total=total, desc="searching", unit=" queries"):
            queries += 1
            written = write_ranked_lines(out, qid, scored, output_format, RUN_TAG, decimals=6)  # as pyserini writes
            lines += written
            empty += written == 0
    return SearchStats(queries, lines, empty, time.perf_counter() - started)


def run_search(
    index: str,
    topics: str | Sequence[tuple[str, str]],
    output: str,
    k1: float | None = 0.9,
    b: float | None = 0.4,
    hits: int = 1000,
    threads: int = 1,
    batch_size: int | None = None,
    output_format: str = "trec",
    arguments: dict | None = None,
    fingerprint: str | None = None,
) -> SearchStats:
    """Search every topic and write the run with its summary; `batch_size` None means 1 with one thread, else 64
    per thread.

    Args:
        index: a Lucene index folder or a pyserini prebuilt index name.
        topics: a queries file or pyserini topics name (`load_topics`), or (qid, query) pairs in search order.
        output: the run to write.
        k1, b: BM25's parameters (both None: pyserini's defaults for the index).
        hits: hits per query.
        threads, batch_size, output_format: as pyserini's CLI.
        arguments: settings to record in the summary.
        fingerprint: the job's fingerprint, recorded in the summary for `finished_summary`.

    Returns:
        Counts of queries and lines written, and the time.

    Example:
        >>> stats = run_search("runs/bm25-index", "val/queries.tsv", "runs/val.bm25.trec", hits=100)
    """
    check_search_flags(k1, b, hits, threads, batch_size, output_format)
    batch_size = batch_size or (1 if threads == 1 else 64 * threads)
    queries = load_topics(topics) if isinstance(topics, str) else list(topics)
    searcher = open_searcher(index, k1, b)
    try:
        results = search_topics(searcher, queries, hits, threads, batch_size)
        stats = write_run(results, output, output_format, len(queries))
    finally:
        searcher.close()
    write_summary(output, "bm25 search", arguments or {}, queries=stats.queries, lines=stats.lines,
                  without_hits=stats.without_hits, seconds=round(stats.seconds, 3),
                  fingerprint=fingerprint)  # fmt: skip
    return stats


def check_search_flags(
    k1: float | None, b: float | None, hits: int, threads: int, batch_size: int | None, output_format: str
) -> None:
    """ParameterError for a nonsensical search setting, before the JVM starts."""
    if (k1 is None) != (b is None):
        raise ParameterError("set both {0} and {1}, or neither (pyserini's defaults)", "k1", "b")
    if k1 is not None and (k1 < 0 or not 0 <= b <= 1):
        raise ParameterError(f"BM25 needs {{0}} >= 0 and {{1}} in [0, 1], got {k1} and {b}", "k1", "b")
    for name, value in (("hits", hits), ("threads", threads), ("batch_size", batch_size)):
        check_at_least(name, value, 1)
    resolve_output_format(output_format)
