"""Turning checked row generators over local files into memory-mapped `datasets.Dataset`s."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from reranker.io.errors import InputError


def file_stamps(files: list[str]) -> list[tuple[int, int]]:
    """(size, mtime) of each file: part of the cache key, so an edited file is read again."""
    return [(os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files]


def dataset_from_files(
    rows: Callable[..., Iterator[dict]], files: list[str], features=None, cache_dir: str | None = None
):
    """`Dataset.from_generator(rows(files=..., stamps=...))`, re-raising our InputError instead of the wrapper
    `datasets` puts around any generator error."""
    import datasets

    try:
        return datasets.Dataset.from_generator(
            rows, features=features, gen_kwargs={"files": files, "stamps": file_stamps(files)}, cache_dir=cache_dir
        )
    except datasets.exceptions.DatasetGenerationError as err:
        if isinstance(err.__cause__, InputError):
            raise err.__cause__ from None
        raise
