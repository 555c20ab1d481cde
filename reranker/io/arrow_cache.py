"""Turning checked row generators over local files into memory-mapped `datasets.Dataset`s."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from reranker.io.errors import InputError
from reranker.io.stamps import file_stamp


def dataset_from_files(
    rows: Callable[..., Iterator[dict]], files: list[str], features=None, cache_dir: str | None = None, **keys
):
    """`Dataset.from_generator(rows(files=..., stamps=..., **keys))`: cached under the files' stamps and `keys`
    (e.g. a format version), re-raising our InputError instead of the wrapper `datasets` puts around it."""
    import datasets

    try:
        return datasets.Dataset.from_generator(
            rows,
            features=features,
            gen_kwargs={"files": files, "stamps": [file_stamp(f) for f in files], **keys},
            cache_dir=cache_dir,
        )
    except datasets.exceptions.DatasetGenerationError as err:
        if isinstance(err.__cause__, InputError):
            raise err.__cause__ from None
        raise
