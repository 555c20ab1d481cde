"""Scoring with an exported model (`python -m reranker.export`) on ONNX Runtime or OpenVINO, through the same
length-sorted batching as PyTorch (`ExportedPairScorer` is a `PairScorer` whose forward pass is the runtime's).

An export folder holds the model (`onnx/model.onnx` or `openvino/openvino_model.xml`, where sentence-transformers'
`CrossEncoder(folder, backend=...)` looks for them), the config, the tokenizer and `reranker_export.json`: how it
was made and a handful of real pairs with the scores PyTorch gave them. Loading scores those pairs again and refuses
an export that no longer follows them (a head removed, a file swapped).
"""

from __future__ import annotations

import json
import os
import queue
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from reranker.inference.scoring import PairScorer, PendingScores
from reranker.io.errors import ParameterError, UsageError, check_at_least, literal
from reranker.model.pair_encoding import EncodedPairs, GroupEncoder

EXPORT_RECORD = "reranker_export.json"
BACKENDS = ("torch", "onnx", "openvino")
MODEL_FILES = {"onnx": "onnx/model.onnx", "openvino": "openvino/openvino_model.xml"}
# An fp32 export computes what PyTorch does up to float rounding; an approximate one (int8, GELU approximated)
# must still rank like it: scores that do not correlate are a broken export, not an approximation.
EXACT_TOLERANCE = 1e-3
MIN_CORRELATION = 0.9


def read_export_record(name_or_path: str | os.PathLike) -> dict | None:
    """The `reranker_export.json` of an export folder, or None for anything else (a PyTorch folder, a Hub name)."""
    path = Path(name_or_path) / EXPORT_RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def check_backend(backend: str | None) -> None:
    """ParameterError unless `backend` is None or one of `BACKENDS`."""
    if backend is not None and backend not in BACKENDS:
        raise ParameterError(f"{{0}} must be one of {', '.join(BACKENDS)}, got {literal(repr(backend))}", "backend")


def check_num_threads(num_threads: int | None) -> None:
    check_at_least("num_threads", num_threads, 1)


class ExportedModel:
    """An exported cross-encoder on its runtime: `model(batch, stream)` gives the relevance logits of a batch of
    pairs, run on `stream` (0 to `streams` - 1): the runtime runs `streams` batches at once, one per stream, each
    on its own threads (a stream takes one batch at a time).

    `batch` holds int64 arrays `input_ids` and, when the pairs have them, `token_type_ids` and `attention_mask`;
    inputs the graph needs that the batch lacks are the values they stand for (no padding: a mask of ones; one
    segment: type ids of zeros).
    """

    backend = ""
    streams = 1
    length_multiple = 1  # batches group pairs by length rounded up to this (padded, masked) unless told otherwise

    def __init__(self, path: str | os.PathLike, input_names: Sequence[str]) -> None:
        self.path = os.fspath(path)
        self.input_names = list(input_names)

    def inputs(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids = batch["input_ids"]
        fill = {"attention_mask": np.ones_like, "token_type_ids": np.zeros_like}
        missing = [name for name in self.input_names if name not in batch and name not in fill]
        if missing:
            raise UsageError(f"the exported model needs inputs the pairs lack: {', '.join(missing)}")
        return {name: batch[name] if name in batch else fill[name](ids) for name in self.input_names}

    def __call__(self, batch: dict[str, np.ndarray], stream: int) -> np.ndarray:
        logits = self.run(self.inputs(batch), stream)
        if logits.ndim != 2 or logits.shape[1] != 1:
            raise UsageError(f"the exported model gives outputs of shape {list(logits.shape)}, not one relevance "
                             "logit per pair [batch, 1]: it has no score head")  # fmt: skip
        return logits[:, 0].astype(np.float32)

    def run(self, inputs: dict[str, np.ndarray], stream: int) -> np.ndarray:
        raise NotImplementedError


class OnnxRuntimeModel(ExportedModel):
    """An ONNX model on ONNX Runtime's CPU provider, for throughput: one stream of one thread per core
    (`num_threads`: fewer; default: PyTorch's, the physical cores), all running the one session: dev600 int8
    1.07-1.08x the speed of one batch at a time on all cores (BENCHMARKS.md)."""

    backend = "onnx"

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self.streams = num_threads or torch.get_num_threads()
        self.session = onnxruntime.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
        super().__init__(path, [i.name for i in self.session.get_inputs()])

    def run(self, inputs: dict[str, np.ndarray], stream: int) -> np.ndarray:
        return self.session.run(None, inputs)[0]


# OpenVINO's CPU plugin keeps the kernels it built for each input shape, 5000 shapes by default; a server's windows
# bring new (batch, length) shapes for long: int8 RSS grew by ~1 MiB a window, 613 -> 1576 MiB over 300 windows of
# 10 dev600 requests (and 2.0 GiB in the serving benchmark). 200 shapes: 1119 MiB, as fast; none: 1284 MiB, 0.75x.
OPENVINO_SHAPE_CACHE = 200


class OpenVinoModel(ExportedModel):
    """An OpenVINO IR model compiled for the CPU in fp32 (int8 layers of a quantized model stay int8) for
    throughput: OpenVINO splits the cores (`num_threads`: fewer) into the streams it finds best, on 2 cores 2 of
    one thread each, and each stream scores its own batch: dev600 int8 1.12-1.23x the speed of one batch at a time on
    all cores (BENCHMARKS.md). Batches group lengths rounded up to multiples of 16: int8 1.17x the speed of
    exact lengths (2.67x against 2.29x torch fp32's, in one run; multiples of 32: 2.39x)."""

    backend = "openvino"
    length_multiple = 16

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None) -> None:
        import openvino

        # without the f32 hint, CPUs with bf16 units would run the fp32 model in bf16
        config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "THROUGHPUT",
                  "CPU_RUNTIME_CACHE_CAPACITY": OPENVINO_SHAPE_CACHE}  # fmt: skip
        if num_threads:
            config["INFERENCE_NUM_THREADS"] = num_threads
        self.compiled = openvino.Core().compile_model(os.fspath(path), "CPU", config)
        self.streams = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.requests = [self.compiled.create_infer_request() for _ in range(self.streams)]
        super().__init__(path, [port.get_any_name() for port in self.compiled.inputs])

    def run(self, inputs: dict[str, np.ndarray], stream: int) -> np.ndarray:
        return self.requests[stream].infer(inputs)[self.compiled.outputs[0]]


def load_exported_model(folder: str | os.PathLike, backend: str, num_threads: int | None = None) -> ExportedModel:
    """The model of an export folder on `backend` ("onnx" or "openvino")."""
    path = Path(folder) / MODEL_FILES[backend]
    if not path.is_file():
        raise UsageError(f"{folder}: no {MODEL_FILES[backend]}: not a complete {backend} export")
    runtime = {"onnx": OnnxRuntimeModel, "openvino": OpenVinoModel}[backend]
    try:
        return runtime(path, num_threads)
    except Exception as err:  # noqa: BLE001 (each runtime has its own error types; all mean "cannot load")
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UsageError(f"{path}: {backend} cannot load it: {first[:300]}") from None


class ExportedPairScorer(PairScorer):
    """A `PairScorer` (same batching, same `score_encoded`) whose model is an `ExportedModel` on the CPU; a call's
    batches go to the model's streams as they free up."""

    def __init__(
        self,
        model: ExportedModel,
        encoder: GroupEncoder,
        batch_size: int = 128,
        max_tokens_per_batch: int | None = None,
        pad_to_multiple_of: int | None = None,
    ) -> None:
        super().__init__(model, encoder, torch.device("cpu"), None, batch_size, max_tokens_per_batch,
                         pad_to_multiple_of or model.length_multiple)  # fmt: skip
        self._free_streams: queue.SimpleQueue[int] = queue.SimpleQueue()
        for stream in range(model.streams):
            self._free_streams.put(stream)
        # the runtimes release the GIL while they compute: Python threads are enough to keep every stream busy
        self._stream_threads = ThreadPoolExecutor(model.streams, thread_name_prefix="stream")

    def _prepared(self, model: ExportedModel, device: torch.device, dtype: torch.dtype | None) -> ExportedModel:
        return model

    def submit(self, pairs: EncodedPairs) -> PendingScores:
        padded, batches = self.planned_batches(pairs)
        outputs = list(self._stream_threads.map(lambda index: self._score_batch(pairs, padded, index), batches))
        order = np.concatenate(batches) if batches else np.empty(0, dtype=np.int64)
        return PendingScores(len(pairs), order, torch.from_numpy(np.concatenate(outputs)) if outputs else None)

    def _score_batch(self, pairs: EncodedPairs, padded: np.ndarray, index: np.ndarray) -> np.ndarray:
        batch = pairs.padded_batch(index, int(padded[index[0]]), self.encoder.pad_token_id)
        stream = self._free_streams.get()  # never waits: as many threads as streams
        try:
            scores = self.model({name: tensor.numpy() for name, tensor in batch.items()}, stream)
        finally:
            self._free_streams.put(stream)
        self.trim_heap()
        return scores


def scores_follow(reference: np.ndarray, scores: np.ndarray, approximate: bool) -> tuple[bool, str]:
    """Whether `scores` follow `reference` (PyTorch's, on the same pairs): within `EXACT_TOLERANCE` for an fp32
    model, correlated at least `MIN_CORRELATION` for an approximate one; and the figures that say so."""
    reference, scores = np.asarray(reference, np.float64), np.asarray(scores, np.float64)
    difference = float(np.max(np.abs(reference - scores)))
    correlation = float(np.corrcoef(reference, scores)[0, 1]) if np.std(scores) > 0 else 0.0
    figures = f"max |difference| {difference:.2e}, correlation {correlation:.4f} on {len(scores)} pairs"
    return (correlation >= MIN_CORRELATION if approximate else difference <= EXACT_TOLERANCE), figures


def check_export(model: ExportedModel, encoder: GroupEncoder, record: dict, where: str | os.PathLike) -> None:
    """Score the record's check pairs (`encoder`: with the lengths they were checked with) and refuse (UsageError,
    one line) an export whose scores no longer follow the PyTorch scores recorded when it was made."""
    check = record["check"]
    queries = check["queries"]
    scores = ExportedPairScorer(model, encoder).score_pairs(queries, [""] * len(queries), check["passages"])
    follows, figures = scores_follow(check["torch_scores"], scores, record["approximate"])
    if not follows:
        raise UsageError(f"{where}: the exported model does not give the scores it was checked with ({figures}): "
                         "the export is damaged; export the model again")  # fmt: skip
