"""The teacher stage: score every passage of every training row with a teacher, for distillation.

The teacher is a cross-encoder (a checkpoint of ours or a sentence-transformers CrossEncoder folder, scored by our
engine: pairs in length-sorted batches, fp32 scores) or a sentence-transformers bi-encoder (the cosine of its own
pooled, normalised embeddings, as sentence-transformers computes it). The training file is streamed in chunks of
whole rows, and the rows are written as they were with their teacher scores (`score` on each Tevatron passage,
`pos_scores`/`neg_scores` on a FlagEmbedding row), resumable after a kill (`reranker.io.resumable`), with a summary.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from reranker.inference.chunks import check_chunk_size, whole_query_chunks
from reranker.inference.prefetch import prefetch
from reranker.inference.scoring import PairScorer
from reranker.io.errors import ParameterError, literal
from reranker.io.resumable import ResumableOutput
from reranker.io.runs import format_score
from reranker.io.stamps import file_stamp, fingerprint, source_stamp
from reranker.io.summary import finished_summary, write_summary
from reranker.io.train_rows import FLAG_EMBEDDING_LISTS, PASSAGE_LISTS, is_flag_embedding_row, iter_train_file
from reranker.model.pair_encoding import passage_text
from reranker.model.precision import autocast_dtype

logger = logging.getLogger(__name__)
TEACHER_TYPES = ("cross-encoder", "bi-encoder")
Passages = list[tuple[str, str]]  # (title, text) of a row's passages, positives first


def detect_teacher_type(name_or_path: str) -> str:
    """`bi-encoder` for a sentence-transformers folder with a pooling module, else `cross-encoder`."""
    modules = Path(name_or_path) / "modules.json"
    if modules.is_file() and any("Pooling" in module.get("type", "") for module in json.loads(modules.read_text())):
        return "bi-encoder"
    return "cross-encoder"


class CrossEncoderTeacher:
    """A cross-encoder's scores of (query, passage) pairs, through our scoring engine."""

    def __init__(self, scorer: PairScorer) -> None:
        self.scorer = scorer

    def settings(self) -> dict:
        encoder = self.scorer.encoder
        return {"type": "cross-encoder", "lengths": (encoder.q_max_len, encoder.p_max_len), "dtype": self.scorer.dtype,
                "separator": encoder.separator, "padding": self.scorer.pad_to_multiple_of}  # fmt: skip

    def score(self, queries: Sequence[str], passages: Sequence[Passages]) -> np.ndarray:
        """The scores of every row's passages, row after row."""
        return self.scorer.score_encoded(self.scorer.encoder.encode_groups(queries, passages))


class BiEncoderTeacher:
    """A sentence-transformers bi-encoder: the cosine of the query's and the passage's embeddings. Passages are
    embedded as `title + separator + text`, each distinct text once per chunk."""

    def __init__(
        self, name_or_path: str, device: torch.device, precision: str = "fp32", batch_size: int = 128,
        separator: str = " ",
    ) -> None:  # fmt: skip
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:  # an optional dependency
            raise ParameterError("{0} bi-encoder needs sentence-transformers: pip install sentence-transformers",
                                 "teacher_type") from None  # fmt: skip
        self.model = SentenceTransformer(str(name_or_path), device=str(device))
        self.device, self.batch_size, self.separator = device, batch_size, separator
        self.dtype = autocast_dtype(precision, device)

    def settings(self) -> dict:
        return {"type": "bi-encoder", "dtype": self.dtype, "batch_size": self.batch_size,
                "max_seq_length": self.model.max_seq_length, "separator": self.separator}  # fmt: skip

    def _embed(self, texts: list[str]) -> torch.Tensor:
        # sentence-transformers sorts the texts by length into batches itself, and restores their order
        autocast = torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)
        with autocast:
            embeddings = self.model.encode(texts, batch_size=self.batch_size, convert_to_tensor=True,
                                           show_progress_bar=False)  # fmt: skip
        return embeddings.float()

    def score(self, queries: Sequence[str], passages: Sequence[Passages]) -> np.ndarray:
        from sentence_transformers.util import cos_sim

        texts = [[passage_text(title, text, self.separator) for title, text in group] for group in passages]
        distinct = list(dict.fromkeys(text for group in texts for text in group))
        position = {text: i for i, text in enumerate(distinct)}
        query_embeddings, passage_embeddings = self._embed(list(queries)), self._embed(distinct)
        scores = []
        for number, group in enumerate(texts):
            columns = torch.tensor([position[text] for text in group], device=passage_embeddings.device)
            scores.append(cos_sim(query_embeddings[number : number + 1], passage_embeddings[columns])[0])
        return torch.cat(scores).cpu().numpy().astype(np.float32) if scores else np.zeros(0, np.float32)


@dataclass(frozen=True)
class TeacherStats:
    rows: int
    passages: int
    seconds: float


def _passages_of(row: dict) -> Passages:
    return [(p["title"], p["text"]) for key in PASSAGE_LISTS for p in row[key]]


def with_scores(record: dict, scores: Sequence[float]) -> dict:
    """The record as it was read, with `scores` (its passages', positives first) put in."""
    record = dict(record)
    values = iter(float(format_score(score)) for score in scores)  # the shortest text of the float32 value
    if is_flag_embedding_row(record):
        for texts_key, scores_key in FLAG_EMBEDDING_LISTS.values():
            record[scores_key] = [next(values) for _ in record[texts_key]]
    else:
        for key in PASSAGE_LISTS:
            record[key] = [{**passage, "score": next(values)} for passage in record[key]]
    return record


def _chunks(input_path: str, chunk_size: int, skip_lines: int, first_chunk: int) -> Iterator[tuple[int, list]]:
    rows = iter_train_file(input_path, skip_lines)
    chunks = whole_query_chunks(rows, lambda item: len(_passages_of(item[2])), chunk_size)
    yield from enumerate(chunks, start=first_chunk)


def _encode_lines(records: list[dict], compress: bool) -> bytes:
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")
    return gzip.compress(text, mtime=0) if compress else text  # gzip members concatenate into one valid file


def score_training_file(
    teacher: CrossEncoderTeacher | BiEncoderTeacher,
    teacher_source: str,
    input_path: str,
    output_path: str,
    *,
    chunk_size: int = 20000,
    arguments: dict | None = None,
    show_progress: bool = True,
) -> TeacherStats:
    """Write every row of `input_path` to `output_path` with the teacher's score of each of its passages.

    Args:
        teacher: a `CrossEncoderTeacher` or a `BiEncoderTeacher`.
        teacher_source: the teacher's folder or Hub name (part of the job's fingerprint).
        input_path: a training JSONL (`.gz` too): Tevatron or FlagEmbedding rows.
        output_path: where the scored rows go (gzipped when it ends in `.gz`).
        chunk_size: passages per chunk (whole rows), scored and written together.
        arguments: settings to record in the summary.
        show_progress: show a tqdm bar.

    Returns:
        Rows and passages scored, and the time taken. A rerun after a kill continues where it stopped and gives
        the file an uninterrupted run writes; a rerun of a finished job does nothing.

    Example:
        >>> teacher = BiEncoderTeacher(MINILM, torch.device("cpu"))
        >>> stats = score_training_file(teacher, MINILM, "train.jsonl.gz", "train.scored.jsonl.gz")
    """
    check_chunk_size(chunk_size)
    job = fingerprint(input=file_stamp(input_path), teacher=source_stamp(teacher_source), **teacher.settings(),
                      chunk_size=chunk_size, output_gzip=output_path.endswith(".gz"))  # fmt: skip
    if done := finished_summary(output_path, job):
        logger.info("%s is already complete for this job", output_path)
        return TeacherStats(done["rows"], done["passages"], 0.0)
    started = time.perf_counter()
    with ResumableOutput(output_path, job) as out:
        chunks = _chunks(input_path, chunk_size, out.progress.input_lines, out.progress.chunks_seen)
        bar = tqdm(initial=out.progress.candidates, desc="teacher scores", unit=" passages", disable=not show_progress)
        with bar:
            for number, chunk in prefetch(chunks, depth=1):
                groups = [_passages_of(row) for _, _, row in chunk]
                scores = teacher.score([row["query"] for _, _, row in chunk], groups)
                records, offset = [], 0
                for (_, record, _), group in zip(chunk, groups, strict=True):
                    records.append(with_scores(record, scores[offset : offset + len(group)]))
                    offset += len(group)
                out.write(_encode_lines(records, output_path.endswith(".gz")), input_lines=chunk[-1][0],
                          chunks_seen=number + 1, queries=len(chunk), candidates=len(scores))  # fmt: skip
                bar.update(len(scores))
    stats = TeacherStats(out.progress.queries, out.progress.candidates, time.perf_counter() - started)
    rate = (stats.passages - out.resumed_at) / max(stats.seconds, 1e-9)
    write_summary(output_path, "teacher scores", arguments or {}, fingerprint=job, teacher=teacher_source,
                  teacher_type=teacher.settings()["type"], rows=stats.rows, passages=stats.passages,
                  seconds=round(stats.seconds, 3), passages_per_second=round(rate, 1))  # fmt: skip
    return stats


def check_teacher_type(teacher_type: str) -> None:
    if teacher_type not in TEACHER_TYPES:
        raise ParameterError(f"{{0}} must be one of {', '.join(TEACHER_TYPES)}, got {literal(repr(teacher_type))}",
                             "teacher_type")  # fmt: skip
