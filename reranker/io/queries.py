"""Query sets: `qid<TAB>query` TSV, JSONL with query_id/query (Tevatron) or _id/text (BEIR), or a Hub dataset
split."""

from __future__ import annotations

import os
from collections.abc import Iterator

from reranker.io.errors import InputError
from reranker.io.fields import get_str, parse_json_object, split_columns
from reranker.io.hub import is_hub_name, iter_hub_rows
from reranker.io.textio import JSON_SUFFIXES, iter_lines


def format_query_line(qid: str, query: str) -> str:
    """One line of a TSV query file."""
    return f"{qid}\t{query}\n"


def iter_query_file(path: str | os.PathLike) -> Iterator[tuple[int, str, str]]:
    """Yield (line, qid, query) from a local TSV or JSONL query file."""
    is_json = str(path).endswith(JSON_SUFFIXES)
    for line, text in iter_lines(path):
        if is_json:
            record = parse_json_object(path, line, text)
            beir = "_id" in record
            qid = get_str(record, "_id" if beir else "query_id", path, line)
            query = get_str(record, "text" if beir else "query", path, line)
        else:
            qid, query = split_columns(text, (2,), path, line, sep="\t")
            if not qid.strip():
                raise InputError(path, line, "query id is empty")
            if not query.strip():
                raise InputError(path, line, "query text is empty")
        yield line, qid, query


def read_queries(source: str, split: str = "dev", revision: str | None = None) -> dict[str, str]:
    """Map query id -> query text from a local file or (when `source` is a Hub name) a Hub dataset split."""
    queries: dict[str, str] = {}
    if is_hub_name(source):
        for row in iter_hub_rows(source, split, revision):
            queries[str(row["query_id"])] = row["query"]
        return queries
    for line, qid, query in iter_query_file(source):
        if qid in queries:
            raise InputError(source, line, f"duplicate query id {qid!r}")
        queries[qid] = query
    return queries
