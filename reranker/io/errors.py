"""The one error type every reader raises, so CLIs can print it as a single line."""

from __future__ import annotations

import os


class InputError(ValueError):
    """Bad input: names the file, the line (1-based; None for the whole file) and the problem."""

    def __init__(self, path: str | os.PathLike | None, line: int | None, message: str):
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.message = message
        where = self.path or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


class UsageError(ValueError):
    """A nonsensical flag value or combination of flags."""
