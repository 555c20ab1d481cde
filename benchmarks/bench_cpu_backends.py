"""CPU backends side by side: our PyTorch fp32 against our ONNX Runtime and OpenVINO exports (fp32, O3, int8) and
sentence-transformers' `CrossEncoder.predict` with its own exports of the same model.

    python benchmarks/bench_cpu_backends.py --model DIR --input RERANK_JSONL --qrels QRELS \\
        --calibration_file VAL_RERANK_JSONL [--limit N] [--workdir DIR] [--st_python PYTHON]

Every variant scores the same pairs in this run, one after another, each timed as a whole (model load included):
ours through `reranker_inference.py` in-process (its exports made first with `python -m reranker.export`, the
export time printed apart); sentence-transformers' through `CrossEncoder(export, backend=...).predict` (raw logits,
max_length q_max_len + p_max_len) after its own helpers made the exports. Its ONNX backend needs optimum-onnx,
which needs transformers < 4.58 and so cannot be installed beside sentence-transformers 6 (transformers >= 5);
its OpenVINO backend needs optimum-intel (transformers < 5.6): give `--st_python`, the Python of a venv with
`sentence-transformers[openvino]`, to run its side there (this script again, with `--st_side`). Prints pairs/s,
MRR@10 and the ratios against our torch fp32 and against sentence-transformers' best.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OURS = {  # name: export flags (None: the PyTorch model itself)
    "torch fp32": None,
    "torch bf16": None,
    "onnx": ["--backend", "onnx"],
    "onnx-O3": ["--backend", "onnx", "--optimize", "O3"],
    "onnx-int8": ["--backend", "onnx", "--quantize", "int8"],
    "openvino": ["--backend", "openvino"],
    "openvino-int8": ["--backend", "openvino", "--quantize", "int8"],
}
# `--bf16`: bf16 autocast where the CPU has AVX512-BF16 or AMX, else fp32 (with a warning)
INFERENCE_FLAGS = {"torch bf16": ["--bf16"]}


def st_side(args) -> None:
    """In a venv with sentence-transformers[openvino]: export with its helpers, time `predict`, write scores."""
    import torch
    from optimum.intel import OVQuantizationConfig
    from sentence_transformers import CrossEncoder, export_static_quantized_openvino_model

    torch.set_num_threads(args.num_threads)
    pairs = json.loads(Path(args.pairs).read_text())
    folder = Path(args.workdir) / "st-openvino"
    calibration = Path(args.workdir) / "st-calibration"
    calibration.mkdir(exist_ok=True)  # a local dataset (the Hub's glue/sst2 default is unreachable offline)
    (calibration / "train.jsonl").write_text("".join(json.dumps({"sentence": p}) + "\n" for _, p in pairs[:300]))
    started = time.perf_counter()
    model = CrossEncoder(args.model, backend="openvino")
    model.save_pretrained(folder)
    model = CrossEncoder(str(folder), backend="openvino")
    export_static_quantized_openvino_model(model, OVQuantizationConfig(num_samples=300), str(folder),
                                           dataset_name=str(calibration), dataset_config_name="default",
                                           dataset_split="train", column_name="sentence")  # fmt: skip
    print(f"st export: {time.perf_counter() - started:.1f}s", file=sys.stderr)
    results = {}
    for name, file_name in (("st openvino-qint8", "openvino/openvino_model_qint8_quantized.xml"),):
        started = time.perf_counter()
        kwargs = {"file_name": file_name, "ov_config": {"INFERENCE_NUM_THREADS": args.num_threads}}
        model = CrossEncoder(str(folder), backend="openvino", max_length=args.max_length, model_kwargs=kwargs,
                             activation_fn=torch.nn.Identity())  # fmt: skip
        scores = model.predict(pairs, batch_size=args.batch_size, show_progress_bar=False)
        results[name] = {"seconds": time.perf_counter() - started, "scores": [float(s) for s in scores]}
    Path(args.output).write_text(json.dumps(results))


def run_ours(args, name: str, model: str, input_path: Path, output: Path) -> tuple[float, dict]:
    from reranker.cli.infer import main as infer_main

    started = time.perf_counter()
    flags = ["--model_name_or_path", model, "--encode_in_path", str(input_path), "--encoded_save_path", str(output),
             "--per_device_eval_batch_size", str(args.batch_size), "--q_max_len", str(args.q_max_len),
             "--p_max_len", str(args.p_max_len), "--device", "cpu",
             "--num_threads", str(args.num_threads), *INFERENCE_FLAGS.get(name, [])]  # fmt: skip
    if infer_main(flags) != 0:
        raise SystemExit(f"{name}: our inference failed")
    seconds = time.perf_counter() - started
    rows = (line.split("\t") for line in output.read_text().splitlines())
    return seconds, {(qid, docid): float(score) for qid, docid, score in rows}


def export(args, name: str, flags: list[str], folder: Path) -> float:
    from reranker.cli.export import main as export_main

    if flags[-1] == "int8" and "openvino" in flags:
        flags = [*flags, "--calibration_file", args.calibration_file]
    started = time.perf_counter()
    if export_main(["--model_name_or_path", args.model, "--output_dir", str(folder), *flags]) != 0:
        raise SystemExit(f"{name}: export failed")
    return time.perf_counter() - started


def mrr_at_10(qrels, candidates, scores: np.ndarray) -> float:
    from reranker.evaluation.metrics import official_mrr_at_10
    from reranker.io.runs import RunEntry

    run: dict[str, list] = {}
    for c, score in zip(candidates, scores, strict=True):
        run.setdefault(c.query_id, []).append((c.docid, float(score)))
    ranked = {q: [RunEntry(q, d, r, s) for r, (d, s) in enumerate(sorted(v, key=lambda x: -x[1]), 1)]
              for q, v in run.items()}  # fmt: skip
    return official_mrr_at_10({q: qrels[q] for q in run if q in qrels}, ranked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="A trained cross-encoder folder (PyTorch).")
    parser.add_argument("--input", required=True, help="Rerank file (dev600: 12,000 pairs).")
    parser.add_argument("--qrels", default=None)
    parser.add_argument("--calibration_file", help="OpenVINO int8 calibration pairs (a rerank file, e.g. val).")
    parser.add_argument("--limit", type=int, default=None, help="Score only the first N pairs (whole queries).")
    parser.add_argument("--workdir", default=None, help="Where exports and scores go (default: a temporary folder).")
    parser.add_argument("--st_python", default=None, help="Python of a venv with sentence-transformers[openvino].")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--num_threads", type=int, default=1, help="CPU threads of every variant (default: 1).")
    parser.add_argument("--q_max_len", type=int, default=16)
    parser.add_argument("--p_max_len", type=int, default=128)
    parser.add_argument("--st_side", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pairs", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--max_length", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.st_side:
        return st_side(args)
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        compare(args, Path(args.workdir or tmp))


def compare(args, workdir: Path) -> None:
    from reranker.io.qrels import read_qrels
    from reranker.io.rerank_input import iter_query_blocks
    from reranker.model.pair_encoding import passage_text

    workdir.mkdir(parents=True, exist_ok=True)
    candidates = [c for block in iter_query_blocks(args.input) for c in block.candidates][: args.limit]
    input_path = workdir / "input.jsonl"
    input_path.write_text("".join(json.dumps(c._asdict()) + "\n" for c in candidates))
    print(f"{len(candidates)} pairs; {args.num_threads} thread(s) for every variant")
    scores, seconds = {}, {}
    for name, flags in OURS.items():
        model = args.model
        if flags is not None:
            model = str(workdir / name)
            print(f"{name}: exported in {export(args, name, flags, Path(model)):.1f}s")
        seconds[name], by_key = run_ours(args, name, model, input_path, workdir / f"{name}.txt")
        scores[name] = np.array([by_key[c.query_id, c.docid] for c in candidates], np.float32)
        print(f"{name}: {len(candidates) / seconds[name]:.1f} pairs/s ({seconds[name]:.1f}s)")
    if args.st_python:
        pairs_path, output = workdir / "st_pairs.json", workdir / "st_scores.json"
        pairs_path.write_text(json.dumps([[c.query, passage_text(c.title, c.text)] for c in candidates]))
        side = subprocess.run([args.st_python, __file__, "--st_side", "--model", args.model, "--input", args.input,
                               "--workdir", str(workdir), "--pairs", str(pairs_path), "--output", str(output),
                               "--max_length", str(args.q_max_len + args.p_max_len), "--batch_size",
                               str(args.batch_size), "--num_threads", str(args.num_threads)])  # fmt: skip
        if side.returncode != 0:
            print(f"the sentence-transformers side failed (exit status {side.returncode}); its rows are left out")
        for name, result in (json.loads(output.read_text()) if side.returncode == 0 else {}).items():
            seconds[name], scores[name] = result["seconds"], np.array(result["scores"], np.float32)
            print(f"{name}: {len(candidates) / seconds[name]:.1f} pairs/s ({seconds[name]:.1f}s)")
    qrels = read_qrels(args.qrels) if args.qrels else None
    base, st_names = seconds["torch fp32"], [n for n in seconds if n.startswith("st ")]
    print("\n| variant | pairs/s | x torch fp32 | x best sentence-transformers | MRR@10 | max abs diff vs torch |")
    print("|---|---|---|---|---|---|")
    for name in seconds:
        rate = len(candidates) / seconds[name]
        vs_st = f"{min(seconds[n] for n in st_names) / seconds[name]:.2f}" if st_names else "n/a"
        mrr = f"{mrr_at_10(qrels, candidates, scores[name]):.4f}" if qrels else "-"
        diff = np.max(np.abs(scores[name] - scores["torch fp32"]))
        print(f"| {name} | {rate:.1f} | {base / seconds[name]:.2f} | {vs_st} | {mrr} | {diff:.2e} |")


if __name__ == "__main__":
    main()
