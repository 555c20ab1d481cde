"""Scoring encoded pairs with a cross-encoder: length-sorted, dynamically padded batches, fp32 scores."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from reranker.collators import pad_pairs
from reranker.pair_encoding import PairEncoder


def length_sorted_batches(
    lengths: Sequence[int], batch_size: int, max_tokens: int | None = None, pad_to_multiple_of: int = 8
) -> Iterator[np.ndarray]:
    """Yield index arrays of batches, longest pairs first, each of at most `batch_size` pairs and (if given)
    at most `max_tokens` padded tokens."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    start = 0
    while start < len(order):
        padded = -(-lengths[order[start]] // pad_to_multiple_of) * pad_to_multiple_of  # the longest comes first
        size = batch_size if max_tokens is None else max(1, min(batch_size, max_tokens // padded))
        yield order[start : start + size]
        start += size


def ranked_order(scores: np.ndarray) -> np.ndarray:
    """Indices by score, descending; ties keep input order (a stable sort)."""
    return np.argsort(-scores, kind="stable")


class PairScorer:
    """Scores (query, passage) pairs with a sequence-classification model; returns fp32 numpy scores."""

    def __init__(
        self,
        model: torch.nn.Module,
        encoder: PairEncoder,
        device: torch.device,
        dtype: torch.dtype | None = None,
        batch_size: int = 128,
        max_tokens_per_batch: int | None = None,
    ) -> None:
        self.model = model.eval().to(device)
        self.encoder = encoder
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.max_tokens_per_batch = max_tokens_per_batch

    def _autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def _forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.device.type == "cuda":
            batch = {k: v.pin_memory().to(self.device, non_blocking=True) for k, v in batch.items()}
        with self._autocast():
            logits = self.model(**batch).logits
        return logits[:, 0].float().cpu()

    @torch.inference_mode()
    def score_encoded(self, input_ids: Sequence[list[int]], token_type_ids: Sequence[list[int]] | None) -> np.ndarray:
        """Score already encoded pairs; the result is in input order."""
        scores = np.empty(len(input_ids), dtype=np.float32)
        lengths = [len(ids) for ids in input_ids]
        for index in length_sorted_batches(lengths, self.batch_size, self.max_tokens_per_batch):
            batch = pad_pairs(
                [input_ids[i] for i in index],
                None if token_type_ids is None else [token_type_ids[i] for i in index],
                self.encoder.tokenizer.pad_token_id,
            )
            scores[index] = self._forward(batch).numpy()
        return scores

    def score_pairs(self, queries: Sequence[str], titles: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Score aligned lists of queries and passages."""
        input_ids, token_type_ids = self.encoder.encode(queries, titles, texts)
        return self.score_encoded(input_ids, token_type_ids if self.encoder.uses_token_types else None)
