"""Scoring throughput: our inference stage against a reference-style loop and sentence-transformers.

    python benchmarks/bench_scoring.py --model DIR --input RERANK_JSONL [--device cpu|cuda] [--limit N]
        [--repeat K] [--batch_size 128] [--chunk_size 20000] [--bf16 | --fp16] [--qrels QRELS]
        [--skip_reference] [--skip_sentence_transformers]

The same pairs are scored three ways in one process, each timed as a whole (model load included):
  ours       `reranker_inference.py` in-process: length-sorted dynamic padding, prefetching tokenizer thread,
             streaming output (and --bf16/--fp16 if given);
  reference  the Tevatron v1 loop: pairs tokenized one by one on the main thread, padded to q_max_len + p_max_len,
             input order, same batch size, fp32 (fp16 autocast on a GPU with --fp16, as the reference did);
  st         sentence-transformers `CrossEncoder(DIR, max_length=q_max_len + p_max_len).predict`, fp32.
It prints pairs/s for each, the largest score differences, MRR@10 with --qrels, and last one line
`speedup_vs_reference=X.XX speedup_vs_sentence_transformers=Y.YY`. sentence-transformers truncates pairs
`longest_first` rather than `only_first`, so its scores are compared on the pairs that need no truncation.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reranker.cli.infer import main as infer_main  # noqa: E402
from reranker.evaluation.metrics import official_mrr_at_10  # noqa: E402
from reranker.io.qrels import read_qrels  # noqa: E402
from reranker.io.rerank_input import iter_query_blocks  # noqa: E402
from reranker.io.runs import RunEntry  # noqa: E402
from reranker.model.loading import load_cross_encoder, load_tokenizer  # noqa: E402
from reranker.model.pair_encoding import PairEncoder, passage_text  # noqa: E402


def read_pairs(path: str, limit: int | None, repeat: int = 1) -> list:
    """The first `limit` candidates, `repeat` times over (later copies' query ids suffixed: each query stays whole,
    and MRR@10 is that of the first copy)."""
    candidates = list(itertools.islice((c for block in iter_query_blocks(path) for c in block.candidates), limit))
    if repeat == 1:
        return candidates
    return [c._replace(query_id=f"{c.query_id}-{copy}" if copy else c.query_id)
            for copy in range(repeat) for c in candidates]  # fmt: skip


def write_input(pairs: list, path: Path) -> None:
    with open(path, "w") as out:
        out.writelines(json.dumps(c._asdict()) + "\n" for c in pairs)


def run_ours(args, input_path: Path, workdir: Path) -> dict[tuple[str, str], float]:
    output = workdir / "ours.txt"
    flags = ["--model_name_or_path", args.model, "--encode_in_path", str(input_path), "--encoded_save_path",
             str(output), "--per_device_eval_batch_size", str(args.batch_size), "--q_max_len", str(args.q_max_len),
             "--p_max_len", str(args.p_max_len), "--device", args.device,
             "--chunk_size", str(args.chunk_size)]  # fmt: skip
    flags += ["--bf16"] if args.bf16 else ["--fp16"] if args.fp16 else []
    if infer_main(flags) != 0:
        raise SystemExit("our inference failed")
    scores = {}
    for line in output.read_text().splitlines():
        qid, docid, score = line.split("\t")
        scores[qid, docid] = float(score)
    return scores


def reference_encode(encoder: PairEncoder, candidate) -> tuple[list[int], list[int]]:
    """One pair encoded on its own, as the reference's dataset did: two tokenizer calls and a join."""
    tokenizer = encoder.tokenizer
    query = tokenizer.encode(candidate.query, add_special_tokens=False, max_length=encoder.q_max_len, truncation=True)
    text = passage_text(candidate.title, candidate.text)
    passage = tokenizer.encode(text, add_special_tokens=False, max_length=encoder.p_max_len, truncation=True)
    return encoder.join(query, passage)


def reference_pad(encoded: list[tuple[list[int], list[int]]], pad_token_id: int, length: int) -> dict:
    """Pairs right-padded to a fixed length with an attention mask, tensors filled row by row."""
    ids = torch.full((len(encoded), length), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), length), dtype=torch.long)
    types = torch.zeros((len(encoded), length), dtype=torch.long)
    for row, (seq, seq_types) in enumerate(encoded):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
        types[row, : len(seq)] = torch.tensor(seq_types, dtype=torch.long)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


@torch.inference_mode()
def run_reference(args, pairs: list) -> np.ndarray:
    device = torch.device(args.device)
    tokenizer = load_tokenizer(args.model)
    model = load_cross_encoder(args.model).eval().to(device)
    encoder = PairEncoder(tokenizer, args.q_max_len, args.p_max_len)
    on_gpu_fp16 = args.fp16 and device.type == "cuda"
    autocast = torch.autocast("cuda", torch.float16) if on_gpu_fp16 else contextlib.nullcontext()
    scores = []
    for start in range(0, len(pairs), args.batch_size):
        encoded = [reference_encode(encoder, c) for c in pairs[start : start + args.batch_size]]
        batch = reference_pad(encoded, tokenizer.pad_token_id, args.q_max_len + args.p_max_len)
        with autocast:
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
        scores.append(logits[:, 0].float().cpu().numpy())
    return np.concatenate(scores)


def run_sentence_transformers(args, pairs: list) -> np.ndarray:
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(args.model, max_length=args.q_max_len + args.p_max_len, device=args.device,
                         activation_fn=torch.nn.Identity())  # fmt: skip
    inputs = [(c.query, passage_text(c.title, c.text)) for c in pairs]
    return model.predict(inputs, batch_size=args.batch_size, show_progress_bar=False)


def fits_untruncated(tokenizer, candidate, args) -> bool:
    """Whether a pair needs no truncation, so that every truncation strategy encodes it alike."""
    query = tokenizer.encode(candidate.query, add_special_tokens=False)
    passage = tokenizer.encode(passage_text(candidate.title, candidate.text), add_special_tokens=False)
    return (
        len(query) <= args.q_max_len
        and len(passage) <= args.p_max_len
        and len(query) + len(passage) + 3 <= (args.q_max_len + args.p_max_len)
    )


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def mrr(qrels, pairs: list, scores: np.ndarray) -> float:
    run: dict[str, list] = {}
    for c, score in zip(pairs, scores, strict=True):
        run.setdefault(c.query_id, []).append((c.docid, score))
    ranked = {q: [RunEntry(q, d, r, s) for r, (d, s) in enumerate(sorted(v, key=lambda x: -x[1]), 1)]
              for q, v in run.items()}  # fmt: skip
    return official_mrr_at_10({q: qrels[q] for q in run if q in qrels}, ranked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="Score the input this many times over (GPU timing).")
    parser.add_argument("--chunk_size", type=int, default=20000, help="Our inference's --chunk_size.")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--q_max_len", type=int, default=16)
    parser.add_argument("--p_max_len", type=int, default=128)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--qrels", default=None)
    parser.add_argument("--skip_sentence_transformers", action="store_true")
    parser.add_argument("--skip_reference", action="store_true", help="Time ours alone (large GPU inputs).")
    args = parser.parse_args()

    pairs = read_pairs(args.input, args.limit, args.repeat)
    tokenizer = load_tokenizer(args.model)
    encoder = PairEncoder(tokenizer, args.q_max_len, args.p_max_len)
    lengths = encoder.encode([c.query for c in pairs], [c.title for c in pairs], [c.text for c in pairs]).lengths
    fixed = args.q_max_len + args.p_max_len
    print(f"{len(pairs)} pairs, mean length {np.mean(lengths):.1f} tokens (fixed padding: {fixed}); "
          f"device {args.device}; torch threads {torch.get_num_threads()}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        write_input(pairs, workdir / "input.jsonl")
        by_key, ours_time = timed(run_ours, args, workdir / "input.jsonl", workdir)
    ours = np.array([by_key[c.query_id, c.docid] for c in pairs], dtype=np.float32)
    rates = {"ours": len(pairs) / ours_time}
    print(f"ours:      {rates['ours']:9.1f} pairs/s ({ours_time:.1f}s)")
    if not args.skip_reference:
        reference, reference_time = timed(run_reference, args, pairs)
        rates["reference"] = len(pairs) / reference_time
        print(f"reference: {rates['reference']:9.1f} pairs/s ({reference_time:.1f}s)")
        print(f"max |ours - reference| = {np.max(np.abs(ours - reference)):.2e}")
    if not args.skip_sentence_transformers:
        st, st_time = timed(run_sentence_transformers, args, pairs)
        rates["st"] = len(pairs) / st_time
        print(f"sentence-transformers: {rates['st']:9.1f} pairs/s ({st_time:.1f}s)")
        untruncated = np.array([fits_untruncated(tokenizer, c, args) for c in pairs])
        diff = np.abs(ours - st)
        print(f"max |ours - st| = {np.max(diff[untruncated]):.2e} on the {untruncated.sum()} pairs needing no "
              f"truncation, {np.max(diff):.2e} on all")  # fmt: skip
    if args.qrels:
        qrels = read_qrels(args.qrels)
        reference_mrr = f" reference {mrr(qrels, pairs, reference):.4f}" if "reference" in rates else ""
        print(f"MRR@10 ours {mrr(qrels, pairs, ours):.4f}{reference_mrr}")
    ratio = {name: f"{rates['ours'] / rates[name]:.2f}" if name in rates else "n/a" for name in ("reference", "st")}
    print(f"speedup_vs_reference={ratio['reference']} speedup_vs_sentence_transformers={ratio['st']}")


if __name__ == "__main__":
    main()
