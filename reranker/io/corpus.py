"""Passage collections: Tevatron JSONL `{docid, title, text}`, BEIR JSONL `{_id, title, text}`, MS MARCO TSV
`pid<TAB>text`, or a Hub corpus."""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterator
from typing import NamedTuple

from tqdm import tqdm

from reranker.io.errors import InputError
from reranker.io.fields import get_str, parse_json_object, split_columns
from reranker.io.hub import is_hub_name, iter_hub_rows
from reranker.io.textio import JSON_SUFFIXES, iter_lines


class Passage(NamedTuple):
    docid: str
    title: str
    text: str


def format_passage_line(passage: Passage) -> str:
    """One line of a Tevatron corpus JSONL."""
    return json.dumps(passage._asdict(), ensure_ascii=False) + "\n"


def iter_corpus_file(path: str | os.PathLike) -> Iterator[tuple[int, Passage]]:
    """Yield (line, passage) from a local corpus file: JSONL lines name the id `docid` (Tevatron) or `_id`
    (BEIR); TSV lines are `pid<TAB>text` or `pid<TAB>title<TAB>text`."""
    is_json = str(path).endswith(JSON_SUFFIXES)
    for line, text in iter_lines(path):
        if is_json:
            record = parse_json_object(path, line, text)
            passage = Passage(
                get_str(record, "_id" if "_id" in record else "docid", path, line),
                get_str(record, "title", path, line, required=False, nonempty=False),
                get_str(record, "text", path, line),
            )
        else:
            columns = split_columns(text, (2, 3), path, line, sep="\t")
            title = columns[1] if len(columns) == 3 else ""
            passage = Passage(columns[0], title, columns[-1])
            if not passage.docid.strip():
                raise InputError(path, line, "passage id is empty")
            if not passage.text.strip():
                raise InputError(path, line, "passage text is empty")
        yield line, passage


def iter_corpus(source: str, revision: str | None = None) -> Iterator[tuple[int, Passage]]:
    """Yield (line or row number, passage) from a local file or a Hub corpus (its `train` split)."""
    if not is_hub_name(source):
        yield from iter_corpus_file(source)
        return
    for row_number, row in enumerate(iter_hub_rows(source, "train", revision), start=1):
        yield row_number, Passage(str(row["docid"]), row.get("title") or "", row["text"])


def load_passages(source: str, wanted: Collection[str], revision: str | None = None) -> dict[str, Passage]:
    """Stream the corpus and keep only the passages whose ids are in `wanted` (never the whole corpus)."""
    found: dict[str, Passage] = {}
    for line, passage in tqdm(iter_corpus(source, revision), desc="reading corpus", unit=" passages"):
        if passage.docid in wanted:
            if passage.docid in found:
                raise InputError(source, line, f"duplicate passage id {passage.docid!r}")
            found[passage.docid] = passage
    return found
