"""An output written chunk by chunk that survives a crash or kill: rerun the same job and it continues.

The output goes to `OUT.partial`; after each chunk the partial file is synced and `OUT.progress.json` records how
far input and output got, under the job's fingerprint. A rerun of the same job truncates the partial file to the
last recorded chunk and goes on from there, so the finished file is byte-identical to an uninterrupted run's; it is
renamed to `OUT` when complete (a file under the final name is always complete).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass
class Progress:
    """How far a job got: input lines consumed, chunks seen (all shards), and what this job wrote (its queries
    or rows, its candidates or passages, and its bytes)."""

    fingerprint: str
    input_lines: int = 0
    chunks_seen: int = 0
    queries: int = 0
    candidates: int = 0
    output_bytes: int = 0


def partial_paths(output_path: str | os.PathLike) -> tuple[Path, Path]:
    """The in-progress output and the progress record of a job writing `output_path`."""
    output = Path(output_path)
    return output.with_name(output.name + ".partial"), output.with_name(output.name + ".progress.json")


class ResumableOutput:
    """`with ResumableOutput(path, fingerprint) as out:` then `out.write(data, ...)` per chunk; `out.progress`
    says where to resume reading. On leaving the block without an error the output takes its final name.

    Example:
        >>> with ResumableOutput("scores.txt", job) as out:
        ...     for chunk in chunks_after(out.progress.input_lines):
        ...         out.write(text_of(chunk), input_lines=chunk.last_line, chunks_seen=chunk.number + 1,
        ...                   queries=len(chunk.queries), candidates=len(chunk.pairs))
    """

    def __init__(self, output_path: str | os.PathLike, fingerprint: str) -> None:
        self.output = Path(output_path)
        self.partial, self.progress_path = partial_paths(output_path)
        self.progress = self._load(fingerprint)
        self.resumed_at = self.progress.candidates  # candidates written before this run
        self.checkpoint_seconds = 0.0  # time spent making progress durable

    def _load(self, fingerprint: str) -> Progress:
        if self.progress_path.is_file() and self.partial.is_file():
            saved = Progress(**json.loads(self.progress_path.read_text()))
            if saved.fingerprint == fingerprint and self.partial.stat().st_size >= saved.output_bytes:
                logger.info("resuming after input line %d (%d done)", saved.input_lines, saved.candidates)
                return saved
            logger.warning("ignoring %s: it belongs to a different job", self.progress_path)
        return Progress(fingerprint)

    def __enter__(self) -> ResumableOutput:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.partial, "r+b" if self.progress.input_lines else "wb")
        self._file.truncate(self.progress.output_bytes)
        self._file.seek(self.progress.output_bytes)
        return self

    def write(self, data: bytes, *, input_lines: int, chunks_seen: int, queries: int, candidates: int) -> None:
        """Append one chunk's output and make it durable with where the input got to."""
        started = time.perf_counter()
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())
        progress = self.progress
        progress.input_lines, progress.chunks_seen = input_lines, chunks_seen
        progress.queries += queries
        progress.candidates += candidates
        progress.output_bytes += len(data)
        tmp = self.progress_path.with_name(self.progress_path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(progress)))
        os.replace(tmp, self.progress_path)
        self.checkpoint_seconds += time.perf_counter() - started

    def __exit__(self, exc_type, exc, traceback) -> None:
        self._file.close()
        if exc_type is not None:
            return
        if self.partial.stat().st_size != self.progress.output_bytes:
            raise RuntimeError(f"{self.partial}: size does not match the recorded progress; delete it and rerun")
        os.replace(self.partial, self.output)
        self.progress_path.unlink(missing_ok=True)
