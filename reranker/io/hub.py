"""Loading Hugging Face Hub datasets from their raw data files.

`datasets` >= 4 no longer runs loading scripts, and Tevatron's datasets (msmarco-passage, msmarco-passage-corpus)
are script datasets. Their raw `*.jsonl.gz` files (or the Hub's Parquet export) load with the generic
`json`/`parquet` builders, which is what this module resolves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from reranker.io.errors import UsageError
from reranker.io.textio import DATA_SUFFIXES, has_file_suffix

PARQUET_EXPORT = "refs/convert/parquet"
_KNOWN_SPLITS = ("train", "dev", "validation", "test")
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def is_hub_name(source: str) -> bool:
    """A source is a Hub dataset name when it is `owner/name`, is not a local path and has no file suffix."""
    if Path(source).exists() or not _HUB_NAME.fullmatch(source):
        return False
    return not has_file_suffix(source)


def _data_format(path: str) -> str:
    return "parquet" if path.endswith(".parquet") else "json"


def _stem(path: str) -> str:
    name = PurePosixPath(path).name
    for suffix in sorted(DATA_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _in_split(path: str, split: str) -> bool:
    stem = _stem(path)
    in_folder = split in PurePosixPath(path).parts[:-1]
    return in_folder or stem == split or stem.startswith((f"{split}-", f"{split}_", f"{split}."))


def select_split_files(files: Iterable[str], split: str) -> list[str]:
    """Pick the data files of one split from a repository listing, following the `datasets` naming conventions.

    A file belongs to `split` when its name is `split`, starts with `split-`/`split_`/`split.`, or sits in a
    folder called `split`. When no file is named after a split, every data file is the `train` split (how
    `datasets` treats e.g. `corpus.jsonl.gz`). Where a split has both JSONL and Parquet files, JSONL wins.
    """
    data = sorted(f for f in files if f.endswith(DATA_SUFFIXES))
    chosen = [f for f in data if _in_split(f, split)]
    if not chosen and split == "train" and not any(_in_split(f, s) for f in data for s in _KNOWN_SPLITS):
        chosen = data
    if len({_data_format(f) for f in chosen}) > 1:
        chosen = [f for f in chosen if _data_format(f) == "json"]
    return chosen


def _list_files(name: str, revision: str | None) -> list[str]:
    from huggingface_hub import HfApi

    try:
        return HfApi().list_repo_files(name, repo_type="dataset", revision=revision)
    except Exception as err:  # offline, private, misspelt: one clear line instead of a traceback
        raise UsageError(f"cannot list Hub dataset {name!r} (revision {revision or 'main'}): {err}") from None


def hub_data_files(name: str, split: str, revision: str | None = None) -> list[str]:
    """`hf://` URLs of the raw data files of one split of a Hub dataset (its Parquet export as a fallback)."""
    files = select_split_files(_list_files(name, revision), split)
    ref = revision
    if not files:
        ref = PARQUET_EXPORT
        files = select_split_files(_list_files(name, PARQUET_EXPORT), split)
    if not files:
        raise UsageError(f"Hub dataset {name!r} has no data files for split {split!r}")
    at = f"@{quote(ref, safe='')}" if ref else ""
    return [f"hf://datasets/{name}{at}/{f}" for f in files]


def iter_hub_rows(name: str, split: str, revision: str | None = None) -> Iterator[dict]:
    """Stream the rows of one split of a Hub dataset without downloading the whole of it first."""
    import datasets

    files = hub_data_files(name, split, revision)
    stream = datasets.load_dataset(_data_format(files[0]), data_files=files, split="train", streaming=True)
    yield from stream


def load_hub_split(name: str, split: str, revision: str | None = None, cache_dir: str | None = None):
    """Download and load one split of a Hub dataset as a memory-mapped `datasets.Dataset`."""
    import datasets

    files = hub_data_files(name, split, revision)
    return datasets.load_dataset(_data_format(files[0]), data_files=files, split="train", cache_dir=cache_dir)
