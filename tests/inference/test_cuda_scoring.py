"""The scorer on a CUDA GPU (batches padded to a multiple of 8 with a mask, pinned copies, autocast with the head in
fp32) gives the CPU's scores (exact-length batches, no mask)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reranker import Reranker
from reranker.inference.scoring import PairScorer, ScoringOptions, ranked_run
from reranker.io.rerank_input import QueryBlock, RerankCandidate
from reranker.model.loading import load_cross_encoder
from reranker.model.pair_encoding import PairEncoder
from reranker.model.random_model import save_random_bert, save_random_decoder

pytestmark = pytest.mark.cuda

WORDS = ("the capital of france is paris a city on the seine with museums bridges and old streets where people walk "
         "along the river at night").split()  # fmt: skip
# 64 pairs of 11 to 80 tokens: many lengths, so batches differ between the CPU (one length each) and the GPU (one
# multiple of 8 each, masked)
QUERIES = [" ".join(WORDS[i % 7 : i % 7 + 3 + i % 5]) for i in range(64)]
PASSAGES = [" ".join((WORDS * 6)[i : i + 5 + 3 * i % 70]) for i in range(64)]


@pytest.fixture(scope="module")
def spread_model(tmp_path_factory, tokenizer):
    """A random 2-layer BERT whose scores spread (~0.1), so that differences between devices show."""
    return save_random_bert(tmp_path_factory.mktemp("spread_bert"), tokenizer.name_or_path, layers=2, hidden=128,
                            heads=2, intermediate=256, initializer_range=0.1)  # fmt: skip


def scores(model_dir, tokenizer, device: torch.device, dtype: torch.dtype | None, batch_size: int = 16,
           options: ScoringOptions | None = None):  # fmt: skip
    scorer = PairScorer(load_cross_encoder(str(model_dir)), PairEncoder(tokenizer, 16, 64), device, dtype,
                        batch_size=batch_size, options=options)  # fmt: skip
    return scorer.score_pairs(QUERIES, [""] * len(QUERIES), PASSAGES)


def deviation(scores: np.ndarray, reference: np.ndarray) -> float:
    """|scores - reference| over the spread of the reference (a scale-free error)."""
    return float(np.linalg.norm(scores - reference) / np.linalg.norm(reference - reference.mean()))


def test_fp32_on_cuda_gives_the_cpu_scores(spread_model, tokenizer, cuda_device):
    cpu = scores(spread_model, tokenizer, torch.device("cpu"), None)
    cuda = scores(spread_model, tokenizer, cuda_device, None)
    print(f"fp32 max |cuda - cpu| = {np.max(np.abs(cuda - cpu)):.2e} (score spread {np.ptp(cpu):.3f})")
    assert np.ptp(cpu) > 0.1  # the scores spread: a difference would show
    np.testing.assert_allclose(cuda, cpu, rtol=0, atol=1e-5)


def test_bf16_on_cuda_is_as_close_to_fp32_as_bf16_on_the_cpu(spread_model, tokenizer, cuda_device):
    """bf16 itself moves scores by a few percent of their spread (0.15 on a trained model's dev600 scores): the GPU
    must add nothing to that. Compared: GPU bf16 and CPU bf16 (emulated where the CPU has none) against CPU fp32."""
    fp32 = scores(spread_model, tokenizer, torch.device("cpu"), None)
    cpu_bf16 = scores(spread_model, tokenizer, torch.device("cpu"), torch.bfloat16)
    cuda_bf16 = scores(spread_model, tokenizer, cuda_device, torch.bfloat16)
    print(f"bf16 max |cuda - cpu bf16| = {np.max(np.abs(cuda_bf16 - cpu_bf16)):.2e}; against fp32: cuda "
          f"{deviation(cuda_bf16, fp32):.4f}, cpu {deviation(cpu_bf16, fp32):.4f} of the spread")  # fmt: skip
    assert len(np.unique(cuda_bf16)) == len(np.unique(fp32))  # the fp32 head: no bf16-rounded ties
    assert deviation(cuda_bf16, fp32) <= max(1.5 * deviation(cpu_bf16, fp32), 1e-3)
    assert deviation(cuda_bf16, fp32) <= 0.1


def test_ties_on_cuda_keep_input_order(spread_model, tokenizer, cuda_device):
    """Eight copies of one pair among others score exactly alike and rank in input order."""
    texts = [PASSAGES[5], PASSAGES[9], *[PASSAGES[20]] * 8, PASSAGES[31]]
    candidates = [RerankCandidate("q", QUERIES[0], f"d{i}", "", text, 0.0) for i, text in enumerate(texts)]
    scorer = PairScorer(load_cross_encoder(str(spread_model)), PairEncoder(tokenizer, 16, 64), cuda_device,
                        torch.bfloat16, batch_size=64)  # fmt: skip
    result = scorer.score_pairs([c.query for c in candidates], [""] * len(texts), texts)
    assert len(set(result[2:10].tolist())) == 1
    ranked = [entry.docid for entry in ranked_run([QueryBlock("q", QUERIES[0], candidates, len(texts))], result)["q"]]
    copies = [docid for docid in ranked if docid in {f"d{i}" for i in range(2, 10)}]
    assert copies == [f"d{i}" for i in range(2, 10)]


def test_gpu_variants_on_cuda_keep_the_scores(spread_model, tokenizer, cuda_device):
    """Issue 37's variants on the GPU: fixed shapes and the device mask within fp32 rounding of today's scores;
    bf16 weights as close to fp32 as autocast (the bound of tests/inference/test_gpu_variants.py)."""
    today = scores(spread_model, tokenizer, cuda_device, None)
    variants = ScoringOptions(fixed_shapes=True, device_mask=True, queue_ahead=True)
    fast = scores(spread_model, tokenizer, cuda_device, None, options=variants)
    print(f"fp32 max |variants - today| on cuda = {np.max(np.abs(fast - today)):.2e}")
    np.testing.assert_allclose(fast, today, rtol=0, atol=1e-5)
    autocast = scores(spread_model, tokenizer, cuda_device, torch.bfloat16)
    cast = scores(spread_model, tokenizer, cuda_device, torch.bfloat16, options=ScoringOptions(cast_weights=True))
    print(f"bf16 deviation from fp32 on cuda: autocast {deviation(autocast, today):.4f}, weights cast "
          f"{deviation(cast, today):.4f}")  # fmt: skip
    assert deviation(cast, today) <= 2.5 * deviation(autocast, today)


@pytest.fixture(scope="module")
def tiny_decoder(tmp_path_factory, tokenizer):
    """A random 2-layer Qwen3 of the test tokenizer's vocabulary (the GPU machine has that tokenizer, no corpus)."""
    return save_random_decoder(tmp_path_factory.mktemp("qwen3"), tokenizer, "qwen3")


def decoder_scores(path, head: str, device: torch.device, precision: str, options: ScoringOptions | None = None):
    torch.manual_seed(0)  # the last_token head's `score` layer is new: the same one every load
    reranker = Reranker.from_pretrained(str(path), score_head=head, template_suffix="[SEP]", q_max_len=16,
                                        p_max_len=64, device=device, precision=precision, batch_size=16,
                                        options=options)  # fmt: skip
    return reranker.predict(QUERIES, PASSAGES)


@pytest.mark.parametrize("head", ["yes_no", "last_token"])
def test_causal_no_mask_on_cuda_keeps_a_decoders_scores(tiny_decoder, cuda_device, head):
    """Issue 37's mask-free decoder on the GPU (SDPA's causal kernel instead of a masked one, batches padded to a
    multiple of 8): fp32 within 1e-5 of the masked scores; bf16 as close to fp32 as the masked bf16 scores."""
    no_mask = ScoringOptions(causal_no_mask=True)
    fp32 = decoder_scores(tiny_decoder, head, cuda_device, "fp32")
    fp32_no_mask = decoder_scores(tiny_decoder, head, cuda_device, "fp32", no_mask)
    bf16 = decoder_scores(tiny_decoder, head, cuda_device, "bf16")
    bf16_no_mask = decoder_scores(tiny_decoder, head, cuda_device, "bf16", no_mask)
    print(f"{head}: max |no mask - masked| on cuda: fp32 {np.max(np.abs(fp32_no_mask - fp32)):.2e}, bf16 "
          f"{np.max(np.abs(bf16_no_mask - bf16)):.2e}; bf16 against fp32: masked {deviation(bf16, fp32):.4f}, "
          f"no mask {deviation(bf16_no_mask, fp32):.4f} of the spread")  # fmt: skip
    assert np.ptp(fp32) > 0.05  # the scores spread: a difference would show
    np.testing.assert_allclose(fp32_no_mask, fp32, rtol=0, atol=1e-5)
    assert deviation(bf16_no_mask, fp32) <= max(1.5 * deviation(bf16, fp32), 1e-3)
