"""Evaluation during training: rerank a small rerank file with the model being trained, report MRR@10 and nDCG@10."""

from __future__ import annotations

import numpy as np
import torch

from reranker.evaluation.metrics import evaluate
from reranker.inference.score_file import encode_blocks
from reranker.inference.scoring import PairScorer, ranked_run
from reranker.io.qrels import read_qrels
from reranker.io.rerank_input import iter_query_blocks
from reranker.io.runs import Run
from reranker.model.pair_encoding import GroupEncoder


class RerankEvaluator:
    """Holds the encoded pairs of a rerank file (encoded once) and its qrels, restricted to the file's queries."""

    def __init__(self, rerank_file: str, qrels_file: str, encoder: GroupEncoder, batch_size: int = 128) -> None:
        self.blocks = list(iter_query_blocks(rerank_file))
        queries = {block.query_id for block in self.blocks}
        self.qrels = {qid: judged for qid, judged in read_qrels(qrels_file).items() if qid in queries}
        self.pairs = encode_blocks(encoder, self.blocks)
        self.encoder = encoder
        self.batch_size = batch_size

    def run(self, scores: np.ndarray) -> Run:
        """The reranked run: each query's candidates by score, descending, ties in input order."""
        return ranked_run(self.blocks, scores)

    def __call__(self, model: torch.nn.Module, device: torch.device, dtype: torch.dtype | None) -> dict[str, float]:
        """Score the file with `model` (left in eval mode) and return {"mrr_at_10": ..., "ndcg_at_10": ...}."""
        scorer = PairScorer(model, self.encoder, device, dtype, self.batch_size)
        result = evaluate(self.qrels, self.run(scorer.score_encoded(self.pairs)), ["nDCG@10"])
        return {"mrr_at_10": result.mrr_at_10, "ndcg_at_10": result.metrics["nDCG@10"]}
