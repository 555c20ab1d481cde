"""Reading text files line by line and writing them atomically (both gzip-aware, strict UTF-8), and the file
suffixes that tell a local file from a Hub name."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from reranker.io.errors import InputError

JSON_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz")
DATA_SUFFIXES = (*JSON_SUFFIXES, ".parquet")  # the files `datasets`' generic builders read
FILE_SUFFIXES = (*DATA_SUFFIXES, ".tsv", ".txt", ".trec", ".gz", ".py")


def has_file_suffix(name: str) -> bool:
    """Whether `name` ends like a file of ours (so it is not a Hub dataset, pyserini index or topics name)."""
    return name.endswith(FILE_SUFFIXES)


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
    """Write to a temporary file beside `path` and rename it into place only if the block succeeds. A `.gz` path
    is gzip-compressed (with no timestamp in the header, so equal content gives equal bytes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw:
            with _writer(raw, path.suffix == ".gz", "b" in mode) as handle:
                yield handle
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty work folder beside `path`; if the block succeeds, it replaces `path` (an existing folder
    there is removed after the rename), else it is removed: a folder under the final name is always complete.

    Example:
        >>> with atomic_folder("exports/minilm-onnx") as work:
        ...     (work / "model.onnx").write_bytes(data)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        (work / "new").mkdir()
        yield work / "new"
        if path.exists():
            path.rename(work / "replaced")
        os.replace(work / "new", path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def gzip_member(data: bytes, level: int = 6) -> bytes:
    """`data` as one complete gzip member (no timestamp, as `atomic_output` writes). Members concatenated are one
    valid gzip file (RFC 1952), so a long output can be compressed in pieces on several threads (zlib releases the
    GIL) and resumed after the last whole piece.

    Args:
        data: the bytes to compress.
        level: zlib level, 1 (fastest) to 9; 6 compresses JSON rows about 3x faster than 9 for a few % more bytes.

    Returns:
        The gzip member.

    Example:
        >>> gzip.decompress(gzip_member(b"a") + gzip_member(b"b"))
        b'ab'
    """
    return gzip.compress(data, compresslevel=level, mtime=0)


@contextlib.contextmanager
def _writer(raw: IO[bytes], compress: bool, binary: bool) -> Iterator[IO]:
    """A handle over `raw` (compressing, decoding to UTF-8 text as asked) that leaves `raw` itself open."""
    compressed = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if compress else None
    target = compressed or raw
    text = None if binary else io.TextIOWrapper(target, encoding="utf-8", newline="\n")
    yield text or target
    if text is not None:
        text.flush()
        text.detach()
    if compressed is not None:
        compressed.close()  # writes the gzip trailer; leaves `raw` open
