"""BEIR dataset folders: `corpus.jsonl[.gz]` (`{_id, title, text}`), `queries.jsonl` (`{_id, text}`, every split's
queries) and `qrels/<split>.tsv` (header `query-id corpus-id score`), the qrels checked against the other two."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from reranker.io.corpus import iter_corpus_file
from reranker.io.errors import InputError
from reranker.io.qrels import Qrels, read_qrels
from reranker.io.queries import read_queries
from reranker.io.textio import iter_lines


@dataclass(frozen=True)
class BeirFiles:
    """The files of one split of a BEIR folder."""

    folder: Path
    split: str | None
    corpus: Path
    queries: Path
    qrels: Path | None  # None: no split asked for


@dataclass(frozen=True)
class BeirSplit:
    """A split read and checked: its queries (those its qrels judge, in qrels order) and its qrels."""

    files: BeirFiles
    queries: dict[str, str]
    qrels: Qrels


def _one_of(folder: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise InputError(folder / names[0], None, f"no such file{f' (nor {names[1]})' if len(names) > 1 else ''}")


def beir_files(folder: str | os.PathLike, split: str | None = "test") -> BeirFiles:
    """Find a split's files in a BEIR folder (no qrels when `split` is None); a missing one is an InputError
    naming it.

    Example:
        >>> beir_files("beir/scifact", "test").qrels
        PosixPath('beir/scifact/qrels/test.tsv')
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, None, "no such folder (a BEIR dataset: corpus.jsonl, queries.jsonl, qrels/)")
    qrels = None if split is None else folder / "qrels" / f"{split}.tsv"
    if qrels is not None and not qrels.is_file():
        splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise InputError(qrels, None, f"no such file (the splits here: {', '.join(splits) or 'none'})")
    corpus = _one_of(folder, ("corpus.jsonl", "corpus.jsonl.gz"))
    return BeirFiles(folder, split, corpus, _one_of(folder, ("queries.jsonl", "queries.jsonl.gz")), qrels)


def read_beir_split(folder: str | os.PathLike, split: str = "test", check_corpus: bool = True) -> BeirSplit:
    """Read a split's qrels and queries; a qrels query absent from `queries.jsonl`, or (with `check_corpus`, one
    pass over the corpus) a qrels passage absent from the corpus, is an InputError naming the qrels line.

    Args:
        folder: the BEIR dataset folder.
        split: the qrels file to read, `qrels/<split>.tsv`.
        check_corpus: also check the judged passages against the corpus.

    Returns:
        The split's files, queries and qrels.

    Example:
        >>> split = read_beir_split("beir/scifact", "test")
        >>> len(split.queries), len(split.qrels)
        (300, 300)
    """
    files = beir_files(folder, split)
    qrels = read_qrels(files.qrels, require_beir_header=True)
    every_query = read_queries(os.fspath(files.queries))
    unknown = set(qrels) - set(every_query)
    if unknown:
        line, qid = _first_line_with(files.qrels, 0, unknown)
        raise InputError(files.qrels, line, f"query {qid!r} is not in {files.queries}")
    if check_corpus:
        unknown = {docid for judged in qrels.values() for docid in judged}
        for _, passage in tqdm(iter_corpus_file(files.corpus), desc="checking qrels ids", unit=" passages"):
            unknown.discard(passage.docid)
        if unknown:
            line, docid = _first_line_with(files.qrels, 1, unknown)
            raise InputError(files.qrels, line, f"passage {docid!r} is not in {files.corpus}")
    return BeirSplit(files, {qid: every_query[qid] for qid in qrels}, qrels)


def _first_line_with(path: Path, column: int, values: set[str]) -> tuple[int, str]:
    """The first line whose `column` holds one of `values`, and that value (looked up again only to report an
    error, so that reading keeps no line numbers)."""
    for line, text in iter_lines(path, skip=1):
        if text.split()[column] in values:
            return line, text.split()[column]
    raise AssertionError(f"none of {sorted(values)[:3]} is in {path}")
