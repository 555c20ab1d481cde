"""Telling whether an input changed, and naming a job by everything that determines its output."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def file_stamp(path: str | os.PathLike) -> dict:
    """Path, size and mtime of a file (or of the files of a folder): changes when the content may have."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path] if path.exists() else []
    return {"path": os.path.abspath(path), "files": [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]}


def source_stamp(name_or_path: str) -> dict | str:
    """A local file or folder's stamp, or a Hub name as it is."""
    return file_stamp(name_or_path) if Path(name_or_path).exists() else name_or_path


def fingerprint(**settings) -> str:
    """A hash of everything that determines a job's output (input and model stamps, settings)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
