"""Checked access to the fields of one input record, with errors that name the file, line and field."""

from __future__ import annotations

import math
import os
from typing import Any

import orjson

from reranker.io.errors import InputError


def parse_json_object(path: str | os.PathLike, line: int, text: str) -> dict[str, Any]:
    """Parse one JSONL line that must hold a JSON object.

    orjson, not `json`: 3x faster on rerank lines, 2.5% of inference's host side (BENCHMARKS.md); and strict JSON,
    so `NaN`, `Infinity` and lone surrogates, which `json` lets through, are malformed lines here.
    """
    try:
        record = orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise InputError(path, line, f"malformed JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(record, dict):
        raise InputError(path, line, f"expected a JSON object, got {type(record).__name__}")
    return record


def get_str(
    record: dict, key: str, path: str | os.PathLike, line: int, *, required: bool = True, nonempty: bool = True
) -> str:
    """Return record[key] as a string; a missing, non-string or (if `nonempty`) blank value is an InputError."""
    if key not in record or record[key] is None:
        if required:
            raise InputError(path, line, f"missing field '{key}'")
        return ""
    value = record[key]
    if not isinstance(value, str):
        raise InputError(path, line, f"field '{key}' must be a string, got {type(value).__name__}")
    if nonempty and not value.strip():
        raise InputError(path, line, f"field '{key}' is empty")
    return value


def get_float(record: dict, key: str, path: str | os.PathLike, line: int, *, default: float | None = None) -> float:
    """Return record[key] as a finite float; missing is an error unless a default is given."""
    if key not in record:
        if default is None:
            raise InputError(path, line, f"missing field '{key}'")
        return default
    return finite_number(record[key], f"field '{key}'", path, line)


def finite_number(value: Any, what: str, path: str | os.PathLike, line: int) -> float:
    """`value` as a float if it is a finite JSON number (not a bool, string or NaN), else an InputError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(path, line, f"{what} must be a finite number, got {value!r}")
    return float(value)


def parse_float(text: str, what: str, path: str | os.PathLike, line: int) -> float:
    """Parse a column that must be a finite number."""
    try:
        value = float(text)
    except ValueError:
        raise InputError(path, line, f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise InputError(path, line, f"{what} must be finite, got {text!r}")
    return value


def parse_int(text: str, what: str, path: str | os.PathLike, line: int) -> int:
    """Parse a column that must be an integer."""
    try:
        return int(text)
    except ValueError:
        raise InputError(path, line, f"{what} must be an integer, got {text!r}") from None


def split_columns(text: str, counts: tuple[int, ...], path: str | os.PathLike, line: int, sep: str | None = None):
    """Split a line on `sep` (whitespace by default) and check it has one of the allowed column counts."""
    columns = text.split(sep)
    if len(columns) not in counts:
        allowed = " or ".join(str(c) for c in counts)
        raise InputError(path, line, f"expected {allowed} columns, got {len(columns)}")
    return columns
