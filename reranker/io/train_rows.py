"""Training data: one query a line, with its positive and negative passages, optionally a teacher's scores.

Two row formats are read, told apart by their keys, in any file:
- Tevatron: `{query_id, query, positive_passages: [{docid, title, text, score?}], negative_passages: [...]}`;
- FlagEmbedding: `{query, pos: [text], neg: [text], pos_scores?, neg_scores?, prompt?}` (other keys are ignored).
Either form may carry the query's task instruction for an LLM reranker's prompt: `instruction`, or FlagEmbedding's
`prompt` (kept as `instruction`; None where the row has none).
Either way a row is checked and turned into the Tevatron form, each passage with a `score` (the teacher's logit, a
finite number) or None; a row has scores for all of its passages or for none. A local `.jsonl`/`.jsonl.gz` file or
a folder of them is cached as Arrow; a Hub name (e.g. `Tevatron/msmarco-passage`) loads the split's raw data files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from reranker.io.arrow_cache import dataset_from_files
from reranker.io.errors import InputError, UsageError
from reranker.io.fields import finite_number, get_str, parse_json_object
from reranker.io.hub import is_hub_name, load_hub_split
from reranker.io.textio import JSON_SUFFIXES, iter_lines

PASSAGE_LISTS = ("positive_passages", "negative_passages")
FLAG_EMBEDDING_LISTS = {"positive_passages": ("pos", "pos_scores"), "negative_passages": ("neg", "neg_scores")}
INSTRUCTION_FIELDS = ("instruction", "prompt")  # ours, FlagEmbedding's
ROWS_VERSION = 3  # part of the Arrow cache key: bump when checked rows change shape


def train_features():
    """The `datasets.Features` of checked training rows."""
    import datasets

    passage = {name: datasets.Value("string") for name in ("docid", "title", "text")}
    passages = datasets.List({**passage, "score": datasets.Value("float64")})
    return datasets.Features({"query_id": datasets.Value("string"), "query": datasets.Value("string"),
                              **{key: passages for key in PASSAGE_LISTS},
                              "instruction": datasets.Value("string")})  # fmt: skip


def _check_passages(record: dict, key: str, path: str | os.PathLike, line: int) -> list[dict]:
    passages = record.get(key)
    if not isinstance(passages, list):
        raise InputError(path, line, f"field '{key}' must be a list of passages")
    if not passages:
        kind = "positive" if key.startswith("positive") else "negative"
        raise InputError(path, line, f"query {record.get('query_id')!r} has no {kind} passage")
    checked = []
    for number, passage in enumerate(passages):
        where = f"{key}[{number}]"
        if not isinstance(passage, dict):
            raise InputError(path, line, f"{where} must be an object")
        score = passage.get("score")
        try:
            checked.append(
                {
                    "docid": get_str(passage, "docid", path, line, required=False, nonempty=False),
                    "title": get_str(passage, "title", path, line, required=False, nonempty=False),
                    "text": get_str(passage, "text", path, line),
                    "score": None if score is None else finite_number(score, "score", path, line),
                }
            )
        except InputError as err:
            raise InputError(path, line, f"{where}: {err.message}") from None
    return checked


def _from_flag_embedding(record: dict, path: str | os.PathLike, line: int) -> dict:
    """A FlagEmbedding row in the Tevatron form (its passages have no ids or titles)."""
    row = {"query_id": "", "query": get_str(record, "query", path, line)}
    row["instruction"] = row_instruction(record, path, line)
    for key, (texts_key, scores_key) in FLAG_EMBEDDING_LISTS.items():
        texts, scores = record.get(texts_key), record.get(scores_key)
        if not isinstance(texts, list) or not texts:
            raise InputError(path, line, f"field '{texts_key}' must be a non-empty list of passage texts")
        if scores is not None and (not isinstance(scores, list) or len(scores) != len(texts)):
            raise InputError(path, line, f"field '{scores_key}' must be a list of {len(texts)} scores, one per "
                             f"'{texts_key}' passage")  # fmt: skip
        passages = []
        for number, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise InputError(path, line, f"{texts_key}[{number}] must be a non-empty string, got {text!r:.40}")
            score = None if scores is None else finite_number(scores[number], f"{scores_key}[{number}]", path, line)
            passages.append({"docid": "", "title": "", "text": text, "score": score})
        row[key] = passages
    if ("pos_scores" in record) != ("neg_scores" in record):
        given, missing = ("pos_scores", "neg_scores") if "pos_scores" in record else ("neg_scores", "pos_scores")
        raise InputError(path, line, f"missing field '{missing}' (the row has '{given}')")
    return row


def _check_scores_complete(row: dict, path: str | os.PathLike, line: int) -> None:
    """A row has a teacher score for every passage or for none."""
    scored = [(key, number, p["score"] is not None) for key in PASSAGE_LISTS for number, p in enumerate(row[key])]
    if any(has for *_, has in scored) and not all(has for *_, has in scored):
        key, number, _ = next(item for item in scored if not item[2])
        raise InputError(path, line, f"{key}[{number}]: missing field 'score' (other passages of the row have one)")


def is_flag_embedding_row(record: dict) -> bool:
    return "pos" in record and "neg" in record and "positive_passages" not in record


def scored_field(record: dict) -> str | None:
    """The first field of a record (as written) that holds a teacher score, named as errors name it, or None.

    A score is what `check_train_row` reads as one: a passage's `score` that is not null (Tevatron), a row's
    `pos_scores` or `neg_scores` that is not null (FlagEmbedding).

    Args:
        record: a training row as read from the file, checked or not.

    Returns:
        E.g. `positive_passages[0]: field 'score'` or `field 'pos_scores'`; None if no passage has a score.

    Example:
        >>> scored_field({"query": "q", "pos": ["a"], "neg": ["b"], "pos_scores": [1.0], "neg_scores": [0.0]})
        "field 'pos_scores'"
    """
    if is_flag_embedding_row(record):
        return next((f"field '{key}'" for _, key in FLAG_EMBEDDING_LISTS.values() if record.get(key) is not None),
                    None)  # fmt: skip
    for key in PASSAGE_LISTS:
        passages = record.get(key)
        for number, passage in enumerate(passages if isinstance(passages, list) else []):
            if isinstance(passage, dict) and passage.get("score") is not None:
                return f"{key}[{number}]: field 'score'"
    return None


def without_scores(record: dict) -> dict:
    """The record with every teacher score taken out (a copy; a malformed record is left for the check to name).

    Example:
        >>> without_scores({"query": "q", "pos": ["a"], "neg": ["b"], "pos_scores": [1.0], "neg_scores": [0.0]})
        {'query': 'q', 'pos': ['a'], 'neg': ['b']}
    """
    if is_flag_embedding_row(record):
        scores = {key for _, key in FLAG_EMBEDDING_LISTS.values()}
        return {key: value for key, value in record.items() if key not in scores}
    stripped = dict(record)
    for key in PASSAGE_LISTS:
        if isinstance(record.get(key), list):
            stripped[key] = [{name: value for name, value in passage.items() if name != "score"}
                             if isinstance(passage, dict) else passage for passage in record[key]]  # fmt: skip
    return stripped


def check_train_row(record: dict, path: str | os.PathLike, line: int) -> dict:
    """Check one training row (Tevatron or FlagEmbedding) and return it in the Tevatron form, with only the fields
    training uses."""
    if is_flag_embedding_row(record):
        return _from_flag_embedding(record, path, line)
    row = {
        "query_id": get_str(record, "query_id", path, line, required=False, nonempty=False),
        "query": get_str(record, "query", path, line),
        **{key: _check_passages(record, key, path, line) for key in PASSAGE_LISTS},
        "instruction": row_instruction(record, path, line),
    }
    _check_scores_complete(row, path, line)
    return row


def row_instruction(record: dict, path: str | os.PathLike, line: int) -> str | None:
    """A row's task instruction (`instruction`, else FlagEmbedding's `prompt`), or None."""
    for key in INSTRUCTION_FIELDS:
        if record.get(key) is not None:
            return get_str(record, key, path, line)
    return None


def format_train_row(row: dict) -> str:
    """One line of a Tevatron training JSONL (`instruction` only where there is one)."""
    fields = {key: value for key, value in row.items() if key != "instruction" or value is not None}
    return json.dumps(fields, ensure_ascii=False) + "\n"


def train_files(source: str | os.PathLike) -> list[Path]:
    """The training files named by a local path: the file itself, or every JSONL file in a folder."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.endswith(JSON_SUFFIXES))
        if not files:
            raise UsageError(f"{path}: folder holds no .jsonl or .jsonl.gz files")
        return files
    if not path.is_file():
        raise UsageError(f"{path}: no such training file, folder or Hub dataset")
    return [path]


RowCheck = Callable[[dict, str | os.PathLike, int], dict]  # (record, path, line) -> the checked row


def iter_train_file(
    path: str | os.PathLike, skip_lines: int = 0, check: RowCheck = check_train_row
) -> Iterator[tuple[int, dict, dict]]:
    """Yield (line, the record as written, the checked row) for every row of a local training file; `check`
    (record, path, line) -> row checks each record (the teacher stage passes its own rule)."""
    for line, text in iter_lines(path, skip=skip_lines):
        record = parse_json_object(path, line, text)
        yield line, record, check(record, path, line)


def load_train_dataset(source: str, split: str = "train", revision: str | None = None, cache_dir: str | None = None):
    """Load training rows as a memory-mapped `datasets.Dataset` (local rows checked, Hub rows as they are)."""
    if is_hub_name(source):
        return load_hub_split(source, split, revision, cache_dir)
    files = [os.fspath(p) for p in train_files(source)]
    return dataset_from_files(_checked_rows, files, train_features(), cache_dir, version=ROWS_VERSION)


def rows_have_teacher_scores(rows) -> bool:
    """Whether every passage of every row carries a teacher score (read from the Arrow columns, not row by row)."""
    import pyarrow.compute as pc

    table = getattr(rows, "data", None)
    if table is None or any(key not in table.column_names for key in PASSAGE_LISTS):
        return False
    for key in PASSAGE_LISTS:
        passages = pc.list_flatten(table.column(key))
        if passages.type.num_fields == 0 or passages.type.get_field_index("score") < 0:
            return False
        if pc.struct_field(passages, "score").null_count:
            return False
    return True


def train_source_has_teacher_scores(source: str, cache_dir: str | None = None) -> bool:
    """Whether the training rows of `source` carry a teacher score on every passage: the training stage's own
    test (`rows_have_teacher_scores` of the loaded rows), so a script can skip the teacher stage exactly when
    training would accept the file for a teacher loss.

    Args:
        source: a training file, a folder of them or a Hub name (as `--dataset_name` takes it).
        cache_dir: the Arrow cache (default: the `datasets` cache, which the training stage then reuses).

    Returns:
        True if every passage of every row has a score; False if any has none.

    Example:
        >>> train_source_has_teacher_scores("train.teacher.jsonl.gz")
        True
    """
    return rows_have_teacher_scores(load_train_dataset(source, cache_dir=cache_dir))


def _checked_rows(files: list[str], stamps: list, version: int) -> Iterator[dict]:
    """Generator for the Arrow cache; `stamps` and `version` only key the cache."""
    for path in files:
        for _, _, row in iter_train_file(path):
            yield row
