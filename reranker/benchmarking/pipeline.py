"""The benchmark's steps: BM25 index (cached) and search, the rerank file, each model's scores and run, then the
evaluation. Each step's output carries a summary with the fingerprint of its inputs and settings; a rerun skips
the steps whose output is complete for the same job, and the scoring resumes inside a file."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reranker.api import Reranker
from reranker.benchmarking.comparison import SystemResult, SystemRun, compare_systems, markdown_table, write_results
from reranker.benchmarking.per_query_plot import plot_per_query
from reranker.evaluation.convert import convert_scores
from reranker.first_stage.bm25 import cached_index, pyserini_order, run_search
from reranker.first_stage.prepare import prepare_rerank_file
from reranker.inference.scoring import check_batching
from reranker.io.beir import BeirSplit, read_beir_split
from reranker.io.errors import ParameterError, check_at_least, literal
from reranker.io.stamps import file_stamp, fingerprint, source_stamp
from reranker.io.summary import finished_summary, read_summary
from reranker.io.window_scores import Aggregate
from reranker.io.windows import WindowSpec, check_window_within
from reranker.model.pair_encoding import check_max_lengths
from reranker.model.precision import check_precision

logger = logging.getLogger(__name__)

FIRST_STAGE_BM25 = "bm25"


@dataclass(frozen=True)
class BenchmarkSettings:
    """What a benchmark runs.

    Args:
        data: a BEIR dataset folder.
        models: cross-encoders (folders or Hub names), each reranking the first stage's top `depth`.
        split: the qrels split evaluated.
        first_stage: `bm25` (our index of the corpus, built once and cached), or a run file.
        depth: candidates reranked per query.
        output_dir: where the runs, results.json and per_query.png go.
        precision, batch_size, q_max_len, p_max_len: the scoring's, as `Reranker.from_pretrained`.
        index_cache: where BM25 indexes are cached (default: `$RERANKER_CACHE/bm25`).
        score_head: the head of every model that records none (e.g. "yes_no" for Qwen3-Reranker checkpoints).
        template: decoder prompt settings for every model (`Reranker.from_pretrained`'s `pair_template`,
            `template_prefix`, `template_suffix`, `instruction`; e.g. this dataset's task instruction).
        window_tokens: besides each model's run on passages cut at `p_max_len`, one per window size: documents cut
            into windows of this many of the model's tokens, scored, and aggregated by each of `aggregates`.
        window_stride: each size's stride (default: half the window, as PyTerrier's 150/75 and pygaggle's 10/5).
        aggregates: how windows' scores combine (`reranker.io.window_scores`).
    """

    data: str
    models: tuple[str, ...]
    split: str = "test"
    first_stage: str = FIRST_STAGE_BM25
    depth: int = 100
    output_dir: str = "benchmark"
    precision: str = "fp32"
    batch_size: int = 128
    q_max_len: int = 32
    p_max_len: int = 256
    index_cache: str | None = None
    score_head: str | None = None
    template: dict[str, str | None] = field(default_factory=dict)
    window_tokens: tuple[int, ...] = ()
    window_stride: tuple[int, ...] = ()
    aggregates: tuple[str, ...] = ("firstp", "maxp")

    def windows(self) -> list[WindowSpec]:
        """The window settings, each checked."""
        if self.window_stride and len(self.window_stride) != len(self.window_tokens):
            raise ParameterError(f"{{0}} gives {len(self.window_stride)} strides for {len(self.window_tokens)} "
                                 "window sizes in {1}", "window_stride", "window_tokens")  # fmt: skip
        strides = self.window_stride or [max(1, size // 2) for size in self.window_tokens]
        specs = [WindowSpec(size, stride) for size, stride in zip(self.window_tokens, strides, strict=True)]
        for spec in specs:
            check_window_within(spec, self.p_max_len)
        return specs

    def check(self) -> None:
        """ParameterError for a setting that cannot work, before anything is read or built."""
        if not self.models:
            raise ParameterError("{0} needs at least one model", "models")
        check_at_least("depth", self.depth, 1)
        if self.first_stage != FIRST_STAGE_BM25 and not Path(self.first_stage).is_file():
            raise ParameterError(f"{{0}} must be bm25 or a run file, got {literal(repr(self.first_stage))}",
                                 "first_stage")  # fmt: skip
        check_max_lengths(self.q_max_len, self.p_max_len)
        check_precision(self.precision)
        check_batching(self.batch_size, None, None, self.q_max_len + self.p_max_len)
        model_names(self.models)
        self.windows()
        for aggregate in self.aggregates:
            Aggregate.parse(aggregate, "aggregates")


@dataclass(frozen=True)
class BenchmarkResults:
    rows: list[SystemResult]
    table: str
    output_dir: Path


def model_names(models: tuple[str, ...] | list[str]) -> list[str]:
    """A short distinct name per model: its folder's name, with as many parent folders as it takes to tell the
    models apart (`a/reranker`, `b/reranker` -> `a_reranker`, `b_reranker`)."""
    parts = [Path(model.rstrip("/")).parts for model in models]
    for depth in range(1, max(map(len, parts)) + 1):
        names = ["_".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            break
    else:
        raise ParameterError("{0} names the same model twice", "models")
    if FIRST_STAGE_BM25 in names:
        raise ParameterError(f"{{0}}: a model may not be named {FIRST_STAGE_BM25} (the first stage's name)", "models")
    return names


def run_benchmark(settings: BenchmarkSettings) -> BenchmarkResults:
    """Run every step (skipping those already complete), write `results.json`, the runs under `runs/` and
    `per_query.png` into the output folder, and return the rows with their Markdown table.

    Example:
        >>> results = run_benchmark(BenchmarkSettings("beir/scifact", ("runs/minilm",), precision="bf16"))
        >>> print(results.table)
    """
    started = time.perf_counter()
    settings.check()
    out = Path(settings.output_dir)
    split = read_beir_split(settings.data, settings.split)
    first = _first_stage(split, settings, out)
    rerank_input = out / "rerank.jsonl"
    _prepare(split, first.run, rerank_input, settings.depth)
    systems = [first]
    for name, model in zip(model_names(settings.models), settings.models, strict=True):
        systems.extend(_rerank(name, model, rerank_input, out, settings, split, first.run))
    rows, differences = compare_systems(split.qrels, systems)
    title = f"{split.files.folder.name} {settings.split}: rerankers against {first.name} (top {settings.depth})"
    plot_per_query(differences, first.name, out / "per_query.png", title)
    table = markdown_table(rows)
    write_results(out / "results.json", rows, settings=asdict(settings), queries=len(split.qrels),
                  seconds=round(time.perf_counter() - started, 3), table=table)  # fmt: skip
    return BenchmarkResults(rows, table, out)


def _first_stage(split: BeirSplit, settings: BenchmarkSettings, out: Path) -> SystemRun:
    if settings.first_stage != FIRST_STAGE_BM25:
        return SystemRun(Path(settings.first_stage).name.split(".")[0], settings.first_stage)
    run = out / "runs" / f"{FIRST_STAGE_BM25}.trec"
    files = split.files
    job = fingerprint(stage="bm25", corpus=file_stamp(files.corpus), queries=file_stamp(files.queries),
                      qrels=file_stamp(files.qrels), hits=settings.depth)  # fmt: skip
    if not (done := finished_summary(run, job)):
        index = cached_index(files.corpus, settings.index_cache)
        run_search(os.fspath(index), pyserini_order(split.queries), os.fspath(run), hits=settings.depth,
                   arguments={"index": os.fspath(index), "data": settings.data, "split": settings.split},
                   fingerprint=job)  # fmt: skip
        done = read_summary(run)
    else:
        logger.info("%s is already complete for this job", run)
    return SystemRun(FIRST_STAGE_BM25, os.fspath(run), seconds=done["seconds"])


def _prepare(
    split: BeirSplit, run: str, output: Path, depth: int, windows: WindowSpec | None = None, tokenizer=None,
    tokenizer_source: dict | str | None = None,
) -> None:  # fmt: skip
    files = split.files
    window = {} if windows is None else {"windows": [windows.size, windows.stride], "tokenizer": tokenizer_source}
    job = fingerprint(stage="prepare", run=file_stamp(run), corpus=file_stamp(files.corpus),
                      queries=file_stamp(files.queries), qrels=file_stamp(files.qrels), depth=depth,
                      **window)  # fmt: skip
    if finished_summary(output, job):
        logger.info("%s is already complete for this job", output)
        return
    prepare_rerank_file(split.queries, os.fspath(files.corpus), run, os.fspath(output), depth=depth,
                        arguments={"run": run, "depth": depth, **window}, fingerprint=job, windows=windows,
                        tokenizer=tokenizer)  # fmt: skip


def _rerank(
    name: str, model: str, rerank_input: Path, out: Path, settings: BenchmarkSettings, split: BeirSplit, first: str
) -> list[SystemRun]:
    """The model's run on passages cut at p_max_len, then one per window size and aggregate."""
    reranker = Reranker.from_pretrained(model, q_max_len=settings.q_max_len, p_max_len=settings.p_max_len,
                                        precision=settings.precision, batch_size=settings.batch_size,
                                        score_head=settings.score_head, **settings.template)  # fmt: skip
    systems = [_score(reranker, name, rerank_input, out / "scores" / f"{name}.txt", out / "runs" / f"{name}.trec")]
    for spec in settings.windows():
        label = f"w{spec.size}s{spec.stride}"
        windowed = out / f"rerank.{name}.{label}.jsonl"  # the model's tokens: a file per model
        _prepare(split, first, windowed, settings.depth, spec, reranker.tokenizer, source_stamp(model))
        scores = out / "scores" / f"{name}.{label}.txt"
        for aggregate in settings.aggregates:
            run = out / "runs" / f"{name}.{label}.{aggregate.replace(':', '')}.trec"
            systems.append(_score(reranker, f"{name} {label} {aggregate}", windowed, scores, run, aggregate))
    return systems


def _score(
    reranker: Reranker, name: str, rerank_input: Path, scores: Path, run: Path, aggregate: str | None = None
) -> SystemRun:
    """Score `rerank_input` (resuming a partial file, skipping a complete one) and rank it into `run`."""
    reranker.rerank_file(rerank_input, scores)
    scored = read_summary(scores)
    job = fingerprint(stage="convert", scores=file_stamp(scores), aggregate=aggregate)
    if not finished_summary(run, job):
        convert_scores(os.fspath(scores), os.fspath(run), "trec", tag=name.replace(" ", "_"), fingerprint=job,
                       aggregate=aggregate)  # fmt: skip
    return SystemRun(name, os.fspath(run), scored["pairs_per_second"], scored["seconds"], scored["candidates"])
