"""Where scoring time goes on a GPU: the model alone on pre-encoded pairs, by batch size, then torch.profiler.

    python benchmarks/profile_scoring.py --model DIR --input RERANK_JSONL [--device cuda] [--bf16]
        [--pairs 20000] [--batch_sizes 256 512 1024 2048] [--profile_batches 8] [--trace OUT.json]
        [--cast_weights] [--no_cudnn_attention]

The first `--pairs` pairs of the input are encoded once, ahead (no tokenizing in the timings), and scored by
`PairScorer` at each batch size (after one warm-up pass): pairs/s, and the model FLOP/s these imply from the padded
lengths actually run (2 x the non-embedding weights per token, plus 4 x length x hidden per token per layer for
attention). Then `--profile_batches` batches of the first batch size run under torch.profiler, which prints the
top kernels by device time and the device-busy share of the wall time (well below 1: the device waits for the
host).

Variants: `--cast_weights` stores the encoder's weights in bf16 and runs without autocast (the head stays fp32), as
`CrossEncoder(..., model_kwargs={"torch_dtype": torch.bfloat16})` would, instead of autocast's fp32 weights and
fp32 LayerNorm and residual stream; `--no_cudnn_attention` keeps SDPA off its cuDNN kernel.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reranker.inference.scoring import PairScorer, padded_lengths  # noqa: E402
from reranker.io.rerank_input import iter_query_blocks  # noqa: E402
from reranker.model.loading import load_cross_encoder, load_tokenizer  # noqa: E402
from reranker.model.pair_encoding import PairEncoder  # noqa: E402
from reranker.model.precision import cast_weights  # noqa: E402


def forward_flops(model: torch.nn.Module, lengths: np.ndarray) -> float:
    """Forward FLOPs of a BERT-style encoder over pairs of these (padded) lengths."""
    config = model.config
    embedding = sum(p.numel() for name, p in model.named_parameters() if "embeddings" in name)
    weights = sum(p.numel() for p in model.parameters()) - embedding
    tokens = lengths.astype(np.float64)
    attention = 4 * tokens * config.hidden_size * config.num_hidden_layers
    return float(np.sum(tokens * (2 * weights + attention)))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--pairs", type=int, default=20000)
    parser.add_argument("--q_max_len", type=int, default=16)
    parser.add_argument("--p_max_len", type=int, default=128)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[512, 256, 1024, 2048])
    parser.add_argument("--profile_batches", type=int, default=8)
    parser.add_argument("--trace", default=None, help="Write the profile as a Chrome trace here.")
    parser.add_argument("--cast_weights", action="store_true", help="bf16 weights, no autocast (with --bf16).")
    parser.add_argument("--no_cudnn_attention", action="store_true")
    args = parser.parse_args()
    if args.no_cudnn_attention:
        torch.backends.cuda.enable_cudnn_sdp(False)

    device = torch.device(args.device)
    candidates = list(itertools.islice((c for b in iter_query_blocks(args.input) for c in b.candidates), args.pairs))
    encoder = PairEncoder(load_tokenizer(args.model), args.q_max_len, args.p_max_len)
    pairs = encoder.encode([c.query for c in candidates], [c.title for c in candidates], [c.text for c in candidates])
    model = load_cross_encoder(args.model)
    dtype = torch.bfloat16 if args.bf16 else None
    if args.cast_weights and dtype is not None:
        cast_weights(model, dtype)
        dtype = None
    print(f"{len(pairs)} pairs encoded ahead, mean length {pairs.lengths.mean():.1f}; device {device}; "
          f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}; weights "
          f"{next(model.base_model.parameters()).dtype}, autocast {dtype}")  # fmt: skip
    for batch_size in args.batch_sizes:
        scorer = PairScorer(model, encoder, device, dtype, batch_size=batch_size)
        scorer.score_encoded(pairs)  # warm-up: kernels chosen, memory pooled
        synchronize(device)
        started = time.perf_counter()
        scorer.score_encoded(pairs)
        synchronize(device)
        seconds = time.perf_counter() - started
        flops = forward_flops(model, padded_lengths(pairs.lengths, scorer.pad_to_multiple_of))
        print(
            f"batch {batch_size:5d}: {len(pairs) / seconds:9.1f} pairs/s, {flops / seconds / 1e12:6.1f} TFLOP/s "
            f"({flops / len(pairs) / 1e9:.1f} GFLOP a pair, padded to multiples of {scorer.pad_to_multiple_of})"
        )

    if args.profile_batches:
        few = candidates[: args.profile_batches * args.batch_sizes[0]]
        profile_batches(PairScorer(model, encoder, device, dtype, batch_size=args.batch_sizes[0]), few, args.trace)


def profile_batches(scorer: PairScorer, candidates: list, trace: str | None) -> None:
    """Score `candidates` under torch.profiler (after a warm-up at their shapes) and print the top operations."""
    device = scorer.device
    pairs = scorer.encoder.encode([c.query for c in candidates], [c.title for c in candidates],
                                  [c.text for c in candidates])  # fmt: skip
    scorer.score_encoded(pairs)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as profiler:
        started = time.perf_counter()
        scorer.score_encoded(pairs)
        synchronize(device)
        wall = time.perf_counter() - started
    sort_key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(profiler.key_averages().table(sort_by=sort_key, row_limit=15, max_name_column_width=60))
    if device.type == "cuda":
        busy = sum(e.self_device_time_total for e in profiler.key_averages()) / 1e6
        print(f"device busy {busy:.3f} s of {wall:.3f} s wall ({busy / wall:.0%}) for {len(pairs)} pairs")
    if trace:
        profiler.export_chrome_trace(trace)


if __name__ == "__main__":
    main()
