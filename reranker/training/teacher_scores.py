"""The teacher stage: score every passage of every training row with a teacher, for distillation.

The teacher is a cross-encoder (a checkpoint of ours or a sentence-transformers CrossEncoder folder, scored by our
engine: pairs in length-sorted batches, fp32 scores) or a sentence-transformers bi-encoder (the cosine of its own
pooled, normalised embeddings, as sentence-transformers computes it). The training file is streamed in chunks of
whole rows, and the rows are written as they were with their teacher scores (`score` on each Tevatron passage,
`pos_scores`/`neg_scores` on a FlagEmbedding row), resumable after a kill (`reranker.io.resumable`), with a summary.

Rows that already carry scores (published teacher scores, say) are refused unless `overwrite_scores`. Several
teachers make one ensemble teacher: each scores the whole file in turn (one model in memory at a time) into
`OUT.teacherN.scores`, and the weighted sum of their per-query z-scores is written.
"""

from __future__ import annotations

import gc
import gzip
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from reranker.inference.chunks import check_chunk_size, whole_query_chunks
from reranker.inference.prefetch import prefetch
from reranker.inference.scoring import PairScorer
from reranker.io.errors import ParameterError, literal, location, parse_numbers
from reranker.io.resumable import ResumableOutput
from reranker.io.runs import format_score
from reranker.io.stamps import file_stamp, fingerprint, source_stamp
from reranker.io.summary import finished_summary, write_summary
from reranker.io.train_rows import (
    FLAG_EMBEDDING_LISTS,
    PASSAGE_LISTS,
    check_train_row,
    is_flag_embedding_row,
    iter_train_file,
    scored_field,
    without_scores,
)
from reranker.model.loading import pooling_mode
from reranker.model.pair_encoding import passage_text
from reranker.model.precision import autocast_dtype
from reranker.model.prompt_template import PromptEncoder

logger = logging.getLogger(__name__)
TEACHER_TYPES = ("cross-encoder", "bi-encoder")
# Teachers of different kinds score on different scales (a cross-encoder's logits span about -10..10, a
# bi-encoder's cosines 0..1), so each teacher's scores of a query are z-scored before the weighted sum: the weights
# then say how much of the ensemble's spread over a query each teacher makes. Not min-max: that scale rests on the
# two extreme passages of the query alone, so one outlier would squeeze the teacher's other scores together.
NORMALISATION = "per-query z-score"
Passages = list[tuple[str, str]]  # (title, text) of a row's passages, positives first


def detect_teacher_type(name_or_path: str) -> str:
    """`bi-encoder` for a sentence-transformers model with a pooling module (a local folder, or a Hub model when
    the Hub is reachable), else `cross-encoder`."""
    return "cross-encoder" if pooling_mode(name_or_path) is None else "bi-encoder"


class CrossEncoderTeacher:
    """A cross-encoder's scores of (query, passage) pairs, through our scoring engine."""

    def __init__(self, scorer: PairScorer) -> None:
        self.scorer = scorer

    def settings(self) -> dict:
        encoder = self.scorer.encoder
        prompt = {"template": encoder.template.to_dict()} if isinstance(encoder, PromptEncoder) else {}
        return {"type": "cross-encoder", "lengths": (encoder.q_max_len, encoder.p_max_len), "dtype": self.scorer.dtype,
                "separator": encoder.separator, "padding": self.scorer.pad_to_multiple_of, **prompt}  # fmt: skip

    def score(
        self, queries: Sequence[str], passages: Sequence[Passages], instructions: Sequence[str | None] | None = None
    ) -> np.ndarray:
        """The scores of every row's passages, row after row (`instructions`: each row's own, for an LLM's prompt)."""
        encoded = self.scorer.encoder.encode_groups(queries, passages, instructions=instructions)
        return self.scorer.score_encoded(encoded)


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

    def score(
        self, queries: Sequence[str], passages: Sequence[Passages], instructions: Sequence[str | None] | None = None
    ) -> np.ndarray:
        """The cosines of every row's passages, row after row (`instructions`: unused, a bi-encoder reads the
        query alone; as a cross-encoder without an `{instruction}` in its prompt)."""
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


Teacher = CrossEncoderTeacher | BiEncoderTeacher


@dataclass(frozen=True)
class TeacherStats:
    rows: int
    passages: int
    seconds: float


@dataclass(frozen=True)
class TeacherLoader:
    """A teacher to load when its turn comes (an ensemble keeps one model in memory at a time).

    Example:
        >>> TeacherLoader(MINILM, lambda: BiEncoderTeacher(MINILM, torch.device("cpu")))
    """

    source: str  # the folder or Hub name (part of the job's fingerprint)
    load: Callable[[], Teacher]


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


def check_unscored_row(record: dict, path: str | os.PathLike, line: int, overwrite_scores: bool = False) -> dict:
    """Check a training row for the teacher stage: a row any of whose passages already carries a teacher score is
    refused (so a row mixing scored and unscored passages is too) unless `overwrite_scores`, which ignores them.

    Args:
        record: the row as read from the file.
        path, line: where it was read, for the error.
        overwrite_scores: replace the scores a row has instead of refusing it.

    Returns:
        The checked row (without scores), as `check_train_row` gives it.

    Example:
        >>> check_unscored_row({"query": "q", "pos": ["a"], "neg": ["b"], "pos_scores": [9.5], "neg_scores": [1]},
        ...                    "train.jsonl", 3)
        Traceback (most recent call last):
        ParameterError: train.jsonl:3: field 'pos_scores' is already set; pass overwrite_scores to replace the
        row's teacher scores
    """
    row = check_train_row(without_scores(record), path, line)  # the scores go: the teacher's replace them
    if not overwrite_scores and (field := scored_field(record)):
        raise ParameterError(f"{literal(location(path, line))}: {literal(field)} is already set; pass {{0}} to "
                             "replace the row's teacher scores", "overwrite_scores")  # fmt: skip
    return row


def _rows(input_path: str, skip_lines: int, overwrite_scores: bool) -> Iterator[tuple[int, dict, dict]]:
    def check(record: dict, path: str | os.PathLike, line: int) -> dict:
        return check_unscored_row(record, path, line, overwrite_scores)

    return iter_train_file(input_path, skip_lines, check)


def _chunks(
    input_path: str, chunk_size: int, skip_lines: int, first_chunk: int, overwrite_scores: bool
) -> Iterator[tuple[int, list]]:
    rows = _rows(input_path, skip_lines, overwrite_scores)
    chunks = whole_query_chunks(rows, lambda item: len(_passages_of(item[2])), chunk_size)
    yield from enumerate(chunks, start=first_chunk)


def _encode_lines(records: list[dict], compress: bool) -> bytes:
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")
    return gzip.compress(text, mtime=0) if compress else text  # gzip members concatenate into one valid file


def _scored_lines(chunk: list, scores: np.ndarray, compress: bool) -> bytes:
    """A chunk's records with `scores` (its passages', row after row) put in, as the output's bytes."""
    records, offset = [], 0
    for _, record, row in chunk:
        size = len(_passages_of(row))
        records.append(with_scores(record, scores[offset : offset + size]))
        offset += size
    return _encode_lines(records, compress)


def _teacher_chunk_scores(teacher: Teacher, chunk: list) -> np.ndarray:
    rows = [row for _, _, row in chunk]
    return teacher.score([row["query"] for row in rows], [_passages_of(row) for row in rows],
                         [row.get("instruction") for row in rows])  # fmt: skip


def _write_chunks(
    input_path: str, output_path: str, job: str, encode: Callable[[list, int], tuple[bytes, int]], *,
    chunk_size: int, overwrite_scores: bool, show_progress: bool,
) -> tuple[TeacherStats, float]:  # fmt: skip
    """Stream the rows of `input_path` in chunks through `encode(chunk, passages before it)` -> (bytes, passages)
    into the resumable output; return the job's stats and this run's passages per second."""
    started = time.perf_counter()
    with ResumableOutput(output_path, job) as out:
        chunks = _chunks(input_path, chunk_size, out.progress.input_lines, out.progress.chunks_seen, overwrite_scores)
        bar = tqdm(initial=out.progress.candidates, desc="teacher scores", unit=" passages", disable=not show_progress)
        with bar:
            for number, chunk in prefetch(chunks, depth=1):
                data, passages = encode(chunk, out.progress.candidates)
                out.write(data, input_lines=chunk[-1][0], chunks_seen=number + 1, queries=len(chunk),
                          candidates=passages)  # fmt: skip
                bar.update(passages)
    stats = TeacherStats(out.progress.queries, out.progress.candidates, time.perf_counter() - started)
    return stats, (stats.passages - out.resumed_at) / max(stats.seconds, 1e-9)


def score_training_file(
    teacher: Teacher,
    teacher_source: str,
    input_path: str,
    output_path: str,
    *,
    chunk_size: int = 20000,
    arguments: dict | None = None,
    show_progress: bool = True,
    overwrite_scores: bool = False,
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
        overwrite_scores: replace the scores rows already carry; otherwise a row with any is refused (a
            ParameterError naming its file, line and field).

    Returns:
        Rows and passages scored, and the time taken. A rerun after a kill continues where it stopped and gives
        the file an uninterrupted run writes; a rerun of a finished job does nothing.

    Example:
        >>> teacher = BiEncoderTeacher(MINILM, torch.device("cpu"))
        >>> stats = score_training_file(teacher, MINILM, "train.jsonl.gz", "train.scored.jsonl.gz")
    """
    check_chunk_size(chunk_size)
    # overwrite_scores is not in the fingerprint: rows without scores come out the same either way
    job = fingerprint(input=file_stamp(input_path), teacher=source_stamp(teacher_source), **teacher.settings(),
                      chunk_size=chunk_size, output_gzip=output_path.endswith(".gz"))  # fmt: skip
    if done := finished_summary(output_path, job):
        logger.info("%s is already complete for this job", output_path)
        return TeacherStats(done["rows"], done["passages"], 0.0)

    def encode(chunk: list, _: int) -> tuple[bytes, int]:
        scores = _teacher_chunk_scores(teacher, chunk)
        return _scored_lines(chunk, scores, output_path.endswith(".gz")), len(scores)

    stats, rate = _write_chunks(input_path, output_path, job, encode, chunk_size=chunk_size,
                                overwrite_scores=overwrite_scores, show_progress=show_progress)  # fmt: skip
    write_summary(output_path, "teacher scores", arguments or {}, fingerprint=job, teacher=teacher_source,
                  teacher_type=teacher.settings()["type"], teacher_weights=[1.0], normalisation=None,
                  rows=stats.rows, passages=stats.passages, seconds=round(stats.seconds, 3),
                  passages_per_second=round(rate, 1))  # fmt: skip
    return stats


def teacher_scores_path(output_path: str, number: int) -> str:
    """Where an ensemble's teacher `number` (1-based) keeps its raw scores: `OUT.teacherN.scores`, float32."""
    return f"{output_path}.teacher{number}.scores"


def _score_one_teacher(
    loader: TeacherLoader, input_path: str, scores_path: str, *, chunk_size: int, overwrite_scores: bool,
    show_progress: bool,
) -> tuple[str, dict]:  # fmt: skip
    """One teacher's pass over the file: its raw float32 scores, passage after passage, into `scores_path`
    (resumable; a finished file is kept). Returns the pass's fingerprint and the teacher's settings."""
    teacher = loader.load()
    settings = teacher.settings()
    job = fingerprint(input=file_stamp(input_path), teacher=source_stamp(loader.source), **settings,
                      chunk_size=chunk_size, output="float32 scores")  # fmt: skip
    if finished_summary(scores_path, job):
        logger.info("%s is already complete for this job", scores_path)
        return job, settings

    def encode(chunk: list, _: int) -> tuple[bytes, int]:
        scores = _teacher_chunk_scores(teacher, chunk)
        return scores.astype("<f4").tobytes(), len(scores)

    stats, rate = _write_chunks(input_path, scores_path, job, encode, chunk_size=chunk_size,
                                overwrite_scores=overwrite_scores, show_progress=show_progress)  # fmt: skip
    write_summary(scores_path, "teacher scores (one teacher of an ensemble)", {}, fingerprint=job,
                  teacher=loader.source, teacher_type=settings["type"], rows=stats.rows, passages=stats.passages,
                  seconds=round(stats.seconds, 3), passages_per_second=round(rate, 1))  # fmt: skip
    return job, settings


def zscore(scores: np.ndarray) -> np.ndarray:
    """One query's scores minus their mean, over their (population) standard deviation, in float64; all zeros
    where the scores are all equal (they say nothing about the order).

    Example:
        >>> zscore(np.float32([1, 2, 3])).round(4).tolist()
        [-1.2247, 0.0, 1.2247]
    """
    scores = np.asarray(scores, dtype=np.float64)
    deviation = scores.std()
    return (scores - scores.mean()) / deviation if deviation > 0 else np.zeros_like(scores)


def ensemble_row_scores(teacher_scores: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The ensemble's scores of one row's passages: the weighted sum of each teacher's z-scores.

    Args:
        teacher_scores: each teacher's scores of the row's passages (raw, as one teacher alone writes them).
        weights: one positive weight per teacher.

    Returns:
        float64 scores, one per passage.

    Example:
        >>> ensemble_row_scores([np.float32([9, 1]), np.float32([3, 1])], [0.8, 0.2]).tolist()
        [1.0, -1.0]
    """
    return sum(weight * zscore(scores) for weight, scores in zip(weights, teacher_scores, strict=True))


def parse_teacher_weights(weights: str | Sequence[float] | None, teachers: int) -> tuple[float, ...]:
    """The teachers' weights: positive numbers, one per teacher (comma-separated, like `--loss_weights`).

    Args:
        weights: e.g. `"0.8,0.2"` or `(0.8, 0.2)`; None: 1/N each (the ensemble is the teachers' mean, as
            Hofstätter et al. averaged theirs).
        teachers: how many teachers there are.

    Returns:
        The weights as floats.

    Example:
        >>> parse_teacher_weights("0.8,0.2", 2)
        (0.8, 0.2)
    """
    if weights is None:
        return (1 / teachers,) * teachers
    text = weights if isinstance(weights, str) else ",".join(map(str, weights))
    values = parse_numbers("teacher_weights", text)
    if not all(value > 0 for value in values):  # parse_numbers has refused nan and infinities
        raise ParameterError(f"{{0}} must be positive, got {literal(repr(text))}", "teacher_weights")
    if len(values) != teachers:
        raise ParameterError(f"{{0}} gives {len(values)} weights for {teachers} teachers in {{1}}",
                             "teacher_weights", "teacher")  # fmt: skip
    return values


def score_with_teachers(
    teachers: Sequence[TeacherLoader],
    input_path: str,
    output_path: str,
    *,
    weights: str | Sequence[float] | None = None,
    chunk_size: int = 20000,
    arguments: dict | None = None,
    show_progress: bool = True,
    overwrite_scores: bool = False,
) -> TeacherStats:
    """Score every passage of `input_path` with one teacher, or with an ensemble of several.

    One teacher: exactly `score_training_file` (its raw scores). Several: each teacher in turn, loaded only for its
    pass, writes its raw scores to `OUT.teacherN.scores` (kept, so a rerun with other weights scores nothing
    again); then each row gets the weighted sum of the teachers' per-query z-scores (see NORMALISATION).

    Args:
        teachers: the teachers, each loaded when its turn comes.
        input_path, output_path, chunk_size, arguments, show_progress, overwrite_scores: as `score_training_file`
            takes them.
        weights: one positive weight per teacher (default: 1/N each, the mean); see `parse_teacher_weights`.

    Returns:
        Rows and passages written, and the time taken.

    Example:
        >>> stats = score_with_teachers([TeacherLoader(BIG, load_big), TeacherLoader(SMALL, load_small)],
        ...                             "train.jsonl.gz", "train.ensemble.jsonl.gz", weights="0.8,0.2")
    """
    if not teachers:
        raise ParameterError("give at least one {0}", "teacher")
    values = parse_teacher_weights(weights, len(teachers))
    check_chunk_size(chunk_size)
    next(_rows(input_path, 0, overwrite_scores), None)  # a file of scored rows is refused before a model loads
    if len(teachers) == 1:
        return score_training_file(teachers[0].load(), teachers[0].source, input_path, output_path,
                                   chunk_size=chunk_size, arguments=arguments, show_progress=show_progress,
                                   overwrite_scores=overwrite_scores)  # fmt: skip
    started, jobs, described = time.perf_counter(), [], []
    paths = [teacher_scores_path(output_path, number) for number in range(1, len(teachers) + 1)]
    for number, (loader, scores_path) in enumerate(zip(teachers, paths, strict=True), start=1):
        logger.info("teacher %d of %d: %s", number, len(teachers), loader.source)
        job, settings = _score_one_teacher(loader, input_path, scores_path, chunk_size=chunk_size,
                                           overwrite_scores=overwrite_scores, show_progress=show_progress)  # fmt: skip
        gc.collect()  # let the teacher go before the next one loads
        jobs.append(job)
        described.append({"teacher": loader.source, "teacher_type": settings["type"], "scores": scores_path})
    job = fingerprint(teachers=jobs, weights=values, normalisation=NORMALISATION,
                      chunk_size=chunk_size, output_gzip=output_path.endswith(".gz"))  # fmt: skip
    if done := finished_summary(output_path, job):
        logger.info("%s is already complete for this job", output_path)
        return TeacherStats(done["rows"], done["passages"], 0.0)
    stats = _write_ensemble(paths, values, input_path, output_path, job, chunk_size=chunk_size,
                            overwrite_scores=overwrite_scores, show_progress=show_progress)  # fmt: skip
    stats = TeacherStats(stats.rows, stats.passages, time.perf_counter() - started)
    write_summary(output_path, "teacher scores", arguments or {}, fingerprint=job, teachers=described,
                  teacher_weights=list(values), normalisation=NORMALISATION, rows=stats.rows,
                  passages=stats.passages, seconds=round(stats.seconds, 3))  # fmt: skip
    return stats


def _read_scores(path: str) -> np.ndarray:
    """A teacher's score file, mapped rather than read (a large training file has millions of passages)."""
    return np.memmap(path, dtype="<f4", mode="r") if os.path.getsize(path) else np.zeros(0, "<f4")  # mmap needs bytes


def _write_ensemble(
    scores_paths: Sequence[str], weights: Sequence[float], input_path: str, output_path: str, job: str, *,
    chunk_size: int, overwrite_scores: bool, show_progress: bool,
) -> TeacherStats:  # fmt: skip
    """The rows with the ensemble's scores, from the teachers' score files."""
    files = [_read_scores(path) for path in scores_paths]

    def encode(chunk: list, first: int) -> tuple[bytes, int]:
        scores, offset = [], first
        for _, _, row in chunk:
            size = len(_passages_of(row))
            scores.append(ensemble_row_scores([file[offset : offset + size] for file in files], weights))
            offset += size
        return _scored_lines(chunk, np.concatenate(scores), output_path.endswith(".gz")), offset - first

    stats, _ = _write_chunks(input_path, output_path, job, encode, chunk_size=chunk_size,
                             overwrite_scores=overwrite_scores, show_progress=show_progress)  # fmt: skip
    return stats


def check_teacher_type(teacher_type: str) -> None:
    if teacher_type not in TEACHER_TYPES:
        raise ParameterError(f"{{0}} must be one of {', '.join(TEACHER_TYPES)}, got {literal(repr(teacher_type))}",
                             "teacher_type")  # fmt: skip
