"""Tevatron-format training data: `{query_id, query, positive_passages, negative_passages}` per line.

A local `.jsonl`/`.jsonl.gz` file or a folder of them is checked line by line and cached as Arrow; a Hub name
(e.g. `Tevatron/msmarco-passage`) loads the split's raw data files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from reranker.io.arrow_cache import dataset_from_files
from reranker.io.errors import InputError, UsageError
from reranker.io.fields import get_str, parse_json_object
from reranker.io.hub import is_hub_name, load_hub_split
from reranker.io.textio import JSON_SUFFIXES, iter_lines


def _check_passages(record: dict, key: str, path: str | os.PathLike, line: int) -> list[dict[str, str]]:
    passages = record.get(key)
    if not isinstance(passages, list):
        raise InputError(path, line, f"field '{key}' must be a list of passages")
    if not passages:
        kind = "positive" if key.startswith("positive") else "negative"
        raise InputError(path, line, f"query {record.get('query_id')!r} has no {kind} passage")
    checked = []
    for number, passage in enumerate(passages):
        where = f"{key}[{number}]"
        if not isinstance(passage, dict):
            raise InputError(path, line, f"{where} must be an object")
        try:
            checked.append(
                {
                    "docid": get_str(passage, "docid", path, line, required=False, nonempty=False),
                    "title": get_str(passage, "title", path, line, required=False, nonempty=False),
                    "text": get_str(passage, "text", path, line),
                }
            )
        except InputError as err:
            raise InputError(path, line, f"{where}: {err.message}") from None
    return checked


def format_train_row(row: dict) -> str:
    """One line of a Tevatron training JSONL."""
    return json.dumps(row, ensure_ascii=False) + "\n"


def check_train_row(record: dict, path: str | os.PathLike, line: int) -> dict:
    """Check one training row and return it with only the fields training uses."""
    return {
        "query_id": get_str(record, "query_id", path, line, required=False, nonempty=False),
        "query": get_str(record, "query", path, line),
        "positive_passages": _check_passages(record, "positive_passages", path, line),
        "negative_passages": _check_passages(record, "negative_passages", path, line),
    }


def train_files(source: str | os.PathLike) -> list[Path]:
    """The training files named by a local path: the file itself, or every JSONL file in a folder."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.endswith(JSON_SUFFIXES))
        if not files:
            raise UsageError(f"{path}: folder holds no .jsonl or .jsonl.gz files")
        return files
    if not path.is_file():
        raise UsageError(f"{path}: no such training file, folder or Hub dataset")
    return [path]


def load_train_dataset(source: str, split: str = "train", revision: str | None = None, cache_dir: str | None = None):
    """Load training rows as a memory-mapped `datasets.Dataset`."""
    if is_hub_name(source):
        return load_hub_split(source, split, revision, cache_dir)
    return dataset_from_files(_checked_rows, [os.fspath(p) for p in train_files(source)], cache_dir=cache_dir)


def _checked_rows(files: list[str], stamps: list) -> Iterator[dict]:
    """Generator for the Arrow cache; `stamps` only keys the cache."""
    for path in files:
        for line, text in iter_lines(path):
            yield check_train_row(parse_json_object(path, line, text), path, line)
