"""The small JSON summary each stage writes beside its output: arguments, counts, timing, versions, commit."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from reranker.io.textio import atomic_output

PACKAGES = ("reranker", "torch", "transformers", "datasets", "tokenizers", "numpy")


def summary_path(output: str | os.PathLike) -> Path:
    """Where the summary of `output` goes: `OUTPUT.summary.json`, or `summary.json` inside an output folder."""
    output = Path(output)
    return output / "summary.json" if output.is_dir() else output.with_name(output.name + ".summary.json")


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages that decide scores (`PACKAGES`) installed here."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _git_commit() -> str | None:
    """The commit of the checkout this package runs from, if it is one."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None


def write_summary(output: str | os.PathLike, stage: str, arguments: dict[str, Any], **facts: Any) -> Path:
    """Write the summary of a finished stage; `facts` are counts, timings and anything the next stage checks."""
    record = {
        "stage": stage,
        "output": os.fspath(output),
        "arguments": arguments,
        **facts,
        "versions": package_versions(),
        "git_commit": _git_commit(),
        "host": platform.node(),
    }
    path = summary_path(output)
    with atomic_output(path) as out:
        json.dump(record, out, indent=2, default=str)
        out.write("\n")
    return path


def read_summary(output: str | os.PathLike) -> dict[str, Any] | None:
    """The summary of `output`, or None if it has none (or an unreadable one)."""
    try:
        return json.loads(summary_path(output).read_text())
    except (OSError, ValueError):
        return None


def finished_summary(output: str | os.PathLike, fingerprint: str) -> dict[str, Any] | None:
    """The summary of `output` if the file is there and was written by the job with this fingerprint, else None."""
    if not Path(output).exists():
        return None
    summary = read_summary(output)
    return summary if summary and summary.get("fingerprint") == fingerprint else None
