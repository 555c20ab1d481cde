"""Scoring encoded pairs with a cross-encoder: length-sorted batches, fp32 scores.

On a CPU, batches hold pairs of exactly one length: no padding and no attention mask, so PyTorch's SDPA takes its
fused kernel (about 20% more pairs/s than length-sorted batches padded to the longest with a mask; scores agree to
float32 rounding, about 1e-5). Lengths with fewer than `CPU_MIN_BATCH_PAIRS` pairs share padded batches with their
neighbours instead: a call of 20 pairs in 20 lengths (a served request, `Reranker.rank`) would otherwise run 20
forward passes of one pair, each of a new shape. On a GPU, where small batches waste the device, pairs whose
lengths round up to the same multiple of 8 share a batch, padded with a mask.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from reranker.inference.heap import HeapTrimmer
from reranker.io.errors import ParameterError, check_at_least
from reranker.io.rerank_input import QueryBlock
from reranker.io.runs import Run, RunEntry
from reranker.model.pair_encoding import EncodedPairs, GroupEncoder
from reranker.model.precision import cast_weights, head_in_fp32

# oneDNN, and ideep (PyTorch's wrapper around it) on top, each keep a compiled kernel (with packed weights) per
# batch shape, up to 1024 of them. Batches come in every length and size, so on a CPU both grew with the input:
# oneDNN's by ~7 MiB a shape (bf16: +600 MiB over 6000 pairs), ideep's by 220 MiB over 36,000 pairs (bf16, still
# growing). 16 of oneDNN's and 64 of ideep's cost no speed; 16 of ideep's cost 6% (one forward pass needs more).
CPU_KERNEL_CACHES = {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "16", "LRU_CACHE_CAPACITY": "64"}

# Smaller batches of long pairs suit a CPU's caches (dev600 bf16: 47 s instead of 53 s) and shrink the working
# memory of a batch, which glibc keeps after the batch (peak RSS 812 instead of 1115 MiB).
CPU_MAX_TOKENS_PER_BATCH = 4096

# A length with fewer pairs than this shares its batches with the next lengths (padded, masked) on a CPU
CPU_MIN_BATCH_PAIRS = 16


# `ScoringOptions.fixed_shapes`: lengths rounded up to this multiple (unless `pad_to_multiple_of` is given) and
# partial batches to a power of two from this many pairs: at q/p 16/128, 5 lengths x 8 sizes instead of thousands
FIXED_LENGTH_MULTIPLE = 32
FIXED_MIN_BATCH_PAIRS = 8


@dataclass(frozen=True)
class ScoringOptions:
    """GPU speed variants of `PairScorer`, each off by default until a GPU run picks the defaults (issue 37).

    `fixed_shapes`: a few batch shapes only (lengths to multiples of `FIXED_LENGTH_MULTIPLE`, partial batches filled
    with copies of a real pair up to a power of two), so that kernels planned per shape (cuDNN's attention, cuBLAS)
    are planned a few times per run, not per chunk. `device_mask`: the attention mask built on the device from the
    lengths, in the 4D form transformers passes on untested (its 2D form costs a host-device sync a batch).
    `cast_weights`: weights in the autocast dtype instead of autocast (the head stays fp32). `queue_ahead`: a rerank
    file's chunks are queued on the device from a thread, one ahead of the chunk being read, ranked and written.
    `causal_no_mask`: a decoder's backbone runs without the padding mask (our batches are right-padded: causal
    attention alone keeps real tokens from the pads; see `reranker.model.decoder_heads`).
    """

    fixed_shapes: bool = False
    device_mask: bool = False
    cast_weights: bool = False
    queue_ahead: bool = False
    causal_no_mask: bool = False

    def fingerprint(self) -> dict:
        """The options that change scores (in their last bits), for a job's fingerprint; {} when all are off.
        `causal_no_mask` keeps them on the CPU, but a GPU's SDPA takes another kernel without a mask."""
        changing = {name: True for name in ("fixed_shapes", "cast_weights", "causal_no_mask") if getattr(self, name)}
        return {"variants": changing} if changing else {}


def cap_cpu_kernel_caches() -> None:
    """Bound the CPU kernel caches (`CPU_KERNEL_CACHES`) unless the user set them. Both are read when the first
    kernel is built, so this works only before the process runs its first model."""
    for name, capacity in CPU_KERNEL_CACHES.items():
        os.environ.setdefault(name, capacity)


def check_batching(
    batch_size: int, max_tokens_per_batch: int | None, pad_to_multiple_of: int | None, longest_pair: int
) -> None:
    """ParameterError for batch settings that cannot work (`longest_pair`: q_max_len + p_max_len)."""
    check_at_least("batch_size", batch_size, 1)
    check_at_least("pad_to_multiple_of", pad_to_multiple_of, 1)
    if max_tokens_per_batch is not None and max_tokens_per_batch < longest_pair:
        raise ParameterError(
            f"{{0}} must hold at least one pair of {{1}} + {{2}} = {longest_pair} tokens, got {max_tokens_per_batch}",
            "max_tokens_per_batch", "q_max_len", "p_max_len",
        )  # fmt: skip


def padded_lengths(lengths: Sequence[int], multiple: int) -> np.ndarray:
    """Each length rounded up to a multiple of `multiple`."""
    return -(-np.asarray(lengths) // multiple) * multiple


def same_length_batches(
    lengths: Sequence[int], batch_size: int, max_tokens: int | None = None, min_pairs: int = 1
) -> Iterator[np.ndarray]:
    """Yield index arrays of batches of pairs of one length (give `padded_lengths` to batch by padded length),
    longest first, input order within a length, each of at most `batch_size` pairs and (if given) at most
    `max_tokens` tokens (counted at the batch's first, longest pair). Consecutive lengths with fewer than
    `min_pairs` pairs each are batched together, to be padded to their longest."""
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    boundaries = np.flatnonzero(np.diff(lengths[order])) + 1
    for group in _small_groups_merged(np.split(order, boundaries), min_pairs):
        size = pairs_per_batch(int(lengths[group[0]]), batch_size, max_tokens)
        for start in range(0, len(group), size):
            yield group[start : start + size]


def pairs_per_batch(length: int, batch_size: int, max_tokens: int | None) -> int:
    """How many pairs of `length` tokens a full batch holds."""
    return batch_size if max_tokens is None else max(1, min(batch_size, max_tokens // length))


def fixed_shape_count(longest_pair: int, multiple: int, batch_size: int) -> int:
    """At most how many batch shapes `fixed_shapes` gives: each length (pairs of up to `longest_pair` tokens, to a
    multiple of `multiple`) with and without a mask, in the powers of two from `FIXED_MIN_BATCH_PAIRS` and a full
    batch (`fixed_batch_rows`)."""
    lengths = -(-longest_pair // multiple)
    sizes = (batch_size // FIXED_MIN_BATCH_PAIRS).bit_length() + 1
    return 2 * lengths * sizes


def fixed_batch_rows(index: np.ndarray, full: int) -> np.ndarray:
    """`index` followed by copies of its first pair up to the next power of two (at least `FIXED_MIN_BATCH_PAIRS`),
    at most `full` pairs: a partial batch in one of a few sizes. Copies, not empty rows: they need no mask of their
    own and cannot produce NaN."""
    size = min(full, max(FIXED_MIN_BATCH_PAIRS, 1 << (len(index) - 1).bit_length()))
    return np.concatenate([index, np.full(max(0, size - len(index)), index[0])])


class PendingScores:
    """Scores still on their way from the device: `result()` waits for them (on a GPU, through a non-blocking copy
    into pinned memory and an event, so that the host can queue more work first)."""

    def __init__(self, count: int, order: np.ndarray, scores: torch.Tensor | None) -> None:
        self._count, self._order, self._event = count, order, None
        if scores is not None and scores.device.type == "cuda":
            self._host = torch.empty(scores.shape, dtype=scores.dtype, pin_memory=True)
            self._host.copy_(scores, non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record(torch.cuda.current_stream(scores.device))  # a thread's current device may be another
        else:
            self._host = scores

    def result(self) -> np.ndarray:
        """The fp32 scores in input order."""
        scores = np.empty(self._count, dtype=np.float32)
        if self._event is not None:
            self._event.synchronize()
        if self._host is not None:
            scores[self._order] = self._host.numpy()
        return scores


def _small_groups_merged(groups: Iterable[np.ndarray], min_pairs: int) -> Iterator[np.ndarray]:
    """The non-empty groups in order; runs of consecutive groups smaller than `min_pairs` joined until they reach
    it (a group of `min_pairs` or more stays alone)."""
    pending: list[np.ndarray] = []
    for group in groups:
        if len(group) >= min_pairs:
            if pending:
                yield np.concatenate(pending)
                pending = []
            yield group
        elif len(group):
            pending.append(group)
            if sum(map(len, pending)) >= min_pairs:
                yield np.concatenate(pending)
                pending = []
    if pending:
        yield np.concatenate(pending)


def ranked_groups(scores: np.ndarray, sizes: Iterable[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Split `scores` into consecutive groups of `sizes` (a query's candidates each) and yield every group's
    scores with its indices by score, descending; ties keep input order (a stable sort)."""
    offset = 0
    for size in sizes:
        group = scores[offset : offset + size]
        offset += size
        yield group, np.argsort(-group, kind="stable")


def ranked_run(blocks: Sequence[QueryBlock], scores: np.ndarray) -> Run:
    """The reranked run of `blocks` given their candidates' scores in input order: each query's candidates by score,
    descending, ties in input order.

    Example:
        >>> run = ranked_run(list(iter_query_blocks("dev.rerank.jsonl")), scores)  # then evaluate(qrels, run)
    """
    groups = ranked_groups(scores, (len(block.candidates) for block in blocks))
    return {
        block.query_id: [RunEntry(block.query_id, block.candidates[i].docid, rank, float(block_scores[i]))
                         for rank, i in enumerate(order, start=1)]
        for block, (block_scores, order) in zip(blocks, groups, strict=True)
    }  # fmt: skip


def lengths_mask(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """The boolean 4D (batch, 1, 1, length) mask of pairs of `lengths` right-padded to `length`, built where
    `lengths` is. transformers passes a 4D mask to SDPA as it is, where a 2D one is first tested in Python
    (`padding_mask.all()` in its masking_utils), which waits for the GPU once a batch."""
    return (torch.arange(length, device=lengths.device) < lengths[:, None])[:, None, None, :]


def check_device_mask(model: torch.nn.Module) -> None:
    """ParameterError unless `model` attends through SDPA without a causal mask (the mask `lengths_mask` gives is
    a padding mask only, and boolean: eager attention adds its mask)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    config = model.config
    encoder = config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False)
    if getattr(config, "_attn_implementation", None) != "sdpa" or not encoder:
        raise ParameterError("{0} needs an encoder (BERT-style) model attending through SDPA", "device_mask")


def check_causal_no_mask(model: torch.nn.Module) -> None:
    """ParameterError unless `model` is a causal decoder read at its last token (`reranker.model.decoder_heads`):
    an encoder's tokens attend to the pads after them, so it needs its mask."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    from reranker.model.decoder_heads import LastTokenScoring, YesNoScoring

    inner = getattr(model, "_orig_mod", model)  # the module torch.compile wraps, if compiled
    bidirectional = inner.config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    if not isinstance(inner, LastTokenScoring | YesNoScoring) or bidirectional:
        raise ParameterError("{0} needs a decoder (LLM) reranker: a last_token or yes_no score head", "causal_no_mask")


class PairScorer:
    """Scores (query, passage) pairs with a sequence-classification model; returns fp32 numpy scores.

    `pad_to_multiple_of`: batch pairs by length rounded up to this multiple (default: 8 on a GPU, 1 elsewhere).
    `max_tokens_per_batch`: cap a batch's tokens as well as its pairs (default: 4096 on a CPU, none elsewhere).
    `min_batch_pairs`: lengths with fewer pairs share padded batches (default: `CPU_MIN_BATCH_PAIRS` on a CPU, 1
    elsewhere).
    `options`: the GPU speed variants (`ScoringOptions`; all off by default).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        encoder: GroupEncoder,
        device: torch.device,
        dtype: torch.dtype | None = None,
        batch_size: int = 128,
        max_tokens_per_batch: int | None = None,
        pad_to_multiple_of: int | None = None,
        min_batch_pairs: int | None = None,
        options: ScoringOptions | None = None,
    ) -> None:
        check_batching(batch_size, max_tokens_per_batch, pad_to_multiple_of, encoder.q_max_len + encoder.p_max_len)
        self.options = options or ScoringOptions()
        self.model = self._prepared(model, device, dtype)
        self.encoder = encoder
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        cpu_default = CPU_MAX_TOKENS_PER_BATCH if device.type == "cpu" else None
        self.max_tokens_per_batch = max_tokens_per_batch or cpu_default
        fixed = FIXED_LENGTH_MULTIPLE if self.options.fixed_shapes else None
        self.pad_to_multiple_of = pad_to_multiple_of or fixed or (8 if device.type == "cuda" else 1)
        self.min_batch_pairs = min_batch_pairs or (CPU_MIN_BATCH_PAIRS if device.type == "cpu" else 1)
        self.trim_heap = HeapTrimmer()  # keeps peak memory from growing with the input (reranker.inference.heap)

    def compile(self) -> None:
        """Compile the model with `torch.compile`: one graph for every shape (dynamic), or with `fixed_shapes` one
        static graph per batch shape, dynamo's recompile limit raised to their number (past it, 8 by default,
        dynamo would run each further shape eagerly)."""
        if not self.options.fixed_shapes:
            self.model = torch.compile(self.model, dynamic=True)
            return
        config = torch._dynamo.config
        shapes = fixed_shape_count(self.encoder.longest_pair, self.pad_to_multiple_of, self.batch_size)
        config.recompile_limit = max(config.recompile_limit, shapes)
        self.model = torch.compile(self.model, dynamic=False)

    def _prepared(self, model: torch.nn.Module, device: torch.device, dtype: torch.dtype | None) -> torch.nn.Module:
        model = model.eval().to(device)
        if dtype is not None:
            inner = getattr(model, "_orig_mod", model)  # the module torch.compile wraps, if compiled
            if self.options.cast_weights:
                cast_weights(inner, dtype)
            else:
                head_in_fp32(inner)
        if self.options.device_mask:
            check_device_mask(model)
        if self.options.causal_no_mask:
            check_causal_no_mask(model)
        return model

    def _autocast(self):
        if self.dtype is None or self.options.cast_weights:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def _forward(self, batch: dict[str, torch.Tensor], lengths: np.ndarray) -> torch.Tensor:
        on_device = self.options.device_mask and batch.pop("attention_mask", None) is not None  # none: no padding
        if on_device:
            batch["lengths"] = torch.from_numpy(lengths.astype(np.int64))
        if self.device.type == "cuda":
            batch = {k: v.pin_memory().to(self.device, non_blocking=True) for k, v in batch.items()}
        if on_device:
            batch["attention_mask"] = lengths_mask(batch.pop("lengths"), batch["input_ids"].shape[1])
        if self.options.causal_no_mask:
            batch["right_padded"] = True  # `padded_batch` pads on the right
        with self._autocast():
            logits = self.model(**batch).logits
        return logits[:, 0].float()

    def _batch_rows(self, index: np.ndarray, length: int) -> np.ndarray:
        if not self.options.fixed_shapes:
            return index
        return fixed_batch_rows(index, pairs_per_batch(length, self.batch_size, self.max_tokens_per_batch))

    def planned_batches(self, pairs: EncodedPairs) -> tuple[np.ndarray, list[np.ndarray]]:
        """The pairs' lengths as batched (padded to `pad_to_multiple_of`) and the index arrays of their batches."""
        padded = padded_lengths(pairs.lengths, self.pad_to_multiple_of)
        return padded, list(same_length_batches(padded, self.batch_size, self.max_tokens_per_batch,
                                                self.min_batch_pairs))  # fmt: skip

    @torch.inference_mode()
    def submit(self, pairs: EncodedPairs) -> PendingScores:
        """Queue the scoring of already encoded pairs; `.result()` of the answer gives them in input order."""
        padded, batches = self.planned_batches(pairs)
        # Scores stay on the device until the last batch: a copy per batch would make the host wait for the GPU
        # every time instead of queueing the next batch while the device computes this one.
        outputs = []
        for index in batches:
            length = int(padded[index[0]])
            rows = self._batch_rows(index, length)
            batch = pairs.padded_batch(rows, length, self.encoder.pad_token_id)
            outputs.append(self._forward(batch, pairs.lengths[rows])[: len(index)])
            self.trim_heap()
        order = np.concatenate(batches) if batches else np.empty(0, dtype=np.int64)
        return PendingScores(len(pairs), order, torch.cat(outputs) if outputs else None)

    def score_encoded(self, pairs: EncodedPairs) -> np.ndarray:
        """Score already encoded pairs; the result is in input order."""
        return self.submit(pairs).result()

    def score_pairs(self, queries: Sequence[str], titles: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Score aligned lists of queries and passages."""
        return self.score_encoded(self.encoder.encode(queries, titles, texts))
