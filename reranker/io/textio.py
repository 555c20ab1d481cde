"""Reading text files line by line (gzip-aware, strict UTF-8) and writing them atomically."""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from reranker.io.errors import InputError


def open_binary(path: str | os.PathLike) -> IO[bytes]:
    """Open a file for reading bytes; `.gz` files are decompressed. Raises InputError if it does not exist."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "no such file")
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def iter_lines(path: str | os.PathLike, skip: int = 0, allow_empty: bool = False) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text without its newline) for every line; an empty file is an error
    unless `allow_empty`.

    Lines are decoded one by one so a bad byte is reported on its own line. The first `skip` lines are read
    but not decoded (used to resume).
    """
    number = 0
    with open_binary(path) as handle:
        try:
            for number, raw in enumerate(handle, start=1):
                if number <= skip:
                    continue
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise InputError(path, number, f"not valid UTF-8 (byte {err.start} of the line)") from None
                yield number, text.rstrip("\r\n")
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise InputError(path, number + 1, f"cannot decompress ({err})") from None
    if number == 0 and not allow_empty:
        raise InputError(path, None, "file is empty")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Write to a temporary file beside `path` and rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    text_options = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
    try:
        with os.fdopen(fd, mode, **text_options) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
