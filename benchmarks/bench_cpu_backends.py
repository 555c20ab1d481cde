"""CPU backends side by side: our PyTorch fp32 against our ONNX Runtime and OpenVINO exports (fp32, O3, int8) and
sentence-transformers' `CrossEncoder.predict` with its own exports of the same model.

    python benchmarks/bench_cpu_backends.py --model DIR --input RERANK_JSONL --qrels QRELS \\
        --calibration_file VAL_RERANK_JSONL [--limit N] [--parts N] [--workdir DIR] [--st_python PYTHON]

Every variant scores the same pairs in this run, its scoring and its model load timed apart: ours through
`reranker_inference.py` in-process (its exports made first with `python -m reranker.export`, the export time printed
apart); sentence-transformers' through `CrossEncoder(export, backend=...).predict` (raw logits, max_length q_max_len +
p_max_len) after its own helpers made the exports. The pairs are cut into `--parts` parts (whole queries), and each
part is scored by every variant in turn (the order rotated part by part) before the next part: a CPU whose speed
drifts over minutes (a VM's did by a third) slows every variant alike instead of the ones that ran last.

sentence-transformers' ONNX backend needs optimum-onnx, which needs transformers < 4.58 and so cannot be installed
beside sentence-transformers 6 (transformers >= 5); its OpenVINO backend needs optimum-intel (transformers < 5.6):
give `--st_python`, the Python of a venv with `sentence-transformers[openvino]`, to run its side there (this script
again, with `--st_side`). Prints pairs/s, MRR@10 and the ratios against our torch fp32 and against
sentence-transformers' best.
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


ST_VARIANTS = {"st openvino-qint8": "openvino/openvino_model_qint8_quantized.xml"}


def st_side(args) -> None:
    """In a venv with sentence-transformers[openvino]: `export` with its helpers (calibrated on the first 300
    pairs' passages), or `score` the pairs with `predict` and write the scores and the time."""
    import torch

    torch.set_num_threads(args.num_threads)
    pairs = json.loads(Path(args.pairs).read_text())
    folder = Path(args.workdir) / "st-openvino"
    if args.st_side == "export":
        st_export(args, pairs, folder)
    else:
        st_score(args, pairs, folder)


def st_export(args, pairs: list, folder: Path) -> None:
    from optimum.intel import OVQuantizationConfig
    from sentence_transformers import CrossEncoder, export_static_quantized_openvino_model

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
    print(f"st openvino-qint8: exported in {time.perf_counter() - started:.1f}s")


def st_score(args, pairs: list, folder: Path) -> None:
    import torch
    from sentence_transformers import CrossEncoder

    results = {}
    for name, file_name in ST_VARIANTS.items():
        started = time.perf_counter()
        kwargs = {"file_name": file_name, "ov_config": {"INFERENCE_NUM_THREADS": args.num_threads}}
        model = CrossEncoder(str(folder), backend="openvino", max_length=args.max_length, model_kwargs=kwargs,
                             activation_fn=torch.nn.Identity())  # fmt: skip
        loaded = time.perf_counter()
        scores = model.predict(pairs, batch_size=args.batch_size, show_progress_bar=False)
        results[name] = {"load": loaded - started, "scoring": time.perf_counter() - loaded,
                         "scores": [float(s) for s in scores]}  # fmt: skip
    Path(args.output).write_text(json.dumps(results))


def run_ours(args, name: str, model: str, input_path: Path, output: Path) -> tuple[dict, dict]:
    """Our inference on one part: its times (`scoring`, from its summary; `load`: the rest of the call, the model
    load most of it) and scores."""
    from reranker.cli.infer import main as infer_main
    from reranker.io.summary import read_summary

    output.unlink(missing_ok=True)  # a finished output from an earlier run would be kept, not scored again
    started = time.perf_counter()
    flags = ["--model_name_or_path", model, "--encode_in_path", str(input_path), "--encoded_save_path", str(output),
             "--per_device_eval_batch_size", str(args.batch_size), "--q_max_len", str(args.q_max_len),
             "--p_max_len", str(args.p_max_len), "--device", "cpu",
             "--num_threads", str(args.num_threads), *INFERENCE_FLAGS.get(name, [])]  # fmt: skip
    if infer_main(flags) != 0:
        raise SystemExit(f"{name}: our inference failed")
    scoring = read_summary(output)["seconds"]
    rows = (line.split("\t") for line in output.read_text().splitlines())
    return {"scoring": scoring, "load": time.perf_counter() - started - scoring}, {
        (qid, docid): float(score) for qid, docid, score in rows
    }


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
    parser.add_argument(
        "--parts",
        type=int,
        default=6,
        help="Parts the pairs are cut into, scored by every variant in turn (default: 6).",
    )
    parser.add_argument("--st_side", choices=["export", "score"], help=argparse.SUPPRESS)
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
    from reranker.io.rerank_input import iter_query_blocks

    workdir.mkdir(parents=True, exist_ok=True)
    candidates = [c for block in iter_query_blocks(args.input) for c in block.candidates][: args.limit]
    parts = write_parts(candidates, args.parts, workdir)
    print(f"{len(candidates)} pairs in {len(parts)} parts; {args.num_threads} thread(s) for every variant")
    models = {name: args.model if flags is None else str(workdir / name) for name, flags in OURS.items()}
    for name, flags in OURS.items():
        if flags is not None:
            print(f"{name}: exported in {export(args, name, flags, Path(models[name])):.1f}s")
    names = list(OURS)
    if args.st_python and st_run(args, workdir, "export", candidates, workdir / "st_export.json"):
        names += list(ST_VARIANTS)
    seconds = {name: {"scoring": 0.0, "load": 0.0} for name in names}
    scores: dict[str, dict] = {name: {} for name in names}
    for k, part in enumerate(parts):
        for name in names[k % len(names) :] + names[: k % len(names)]:
            if name in OURS:
                taken, by_key = run_ours(args, name, models[name], part["input"], workdir / f"{name}.{k}.txt")
            else:
                taken, by_key = st_part(args, workdir, name, part, k)
            for kind in ("scoring", "load"):
                seconds[name][kind] += taken[kind]
            scores[name].update(by_key)
        print(f"part {k + 1}/{len(parts)}: " + ", ".join(f"{n} {seconds[n]['scoring']:.0f}s" for n in names),
              flush=True)  # fmt: skip
    for times in seconds.values():
        times["load"] /= len(parts)  # one load: the mean of the parts'
    table(args, candidates, seconds, {name: np.array([by_key[c.query_id, c.docid] for c in candidates], np.float32)
                                      for name, by_key in scores.items()})  # fmt: skip


def write_parts(candidates: list, count: int, workdir: Path) -> list[dict]:
    """`candidates` cut into at most `count` parts of whole queries (a query goes to the part its first pair falls
    in), each written as a rerank file: [{"input": path, "candidates": [...]}]."""
    parts: list[list] = [[] for _ in range(count)]
    first = 0
    for i, c in enumerate(candidates):
        if c.query_id != candidates[first].query_id:
            first = i
        parts[first * count // len(candidates)].append(c)
    written = []
    for k, part in enumerate(p for p in parts if p):
        path = workdir / f"input.{k}.jsonl"
        path.write_text("".join(json.dumps(c._asdict()) + "\n" for c in part))
        written.append({"input": path, "candidates": part})
    return written


def st_run(args, workdir: Path, side: str, candidates: list, output: Path) -> bool:
    """sentence-transformers' side in its venv on `candidates` (`side`: export or score); False if it failed."""
    from reranker.model.pair_encoding import passage_text

    pairs_path = workdir / "st_pairs.json"
    pairs_path.write_text(json.dumps([[c.query, passage_text(c.title, c.text)] for c in candidates]))
    done = subprocess.run([args.st_python, __file__, "--st_side", side, "--model", args.model, "--input", args.input,
                           "--workdir", str(workdir), "--pairs", str(pairs_path), "--output", str(output),
                           "--max_length", str(args.q_max_len + args.p_max_len), "--batch_size",
                           str(args.batch_size), "--num_threads", str(args.num_threads)])  # fmt: skip
    if done.returncode != 0:
        print(f"the sentence-transformers side ({side}) failed (exit status {done.returncode}); its rows are left out")
    return done.returncode == 0


def st_part(args, workdir: Path, name: str, part: dict, k: int) -> tuple[dict, dict]:
    output = workdir / f"st_scores.{k}.json"
    if not st_run(args, workdir, "score", part["candidates"], output):
        raise SystemExit(f"{name}: sentence-transformers failed on part {k + 1}")
    result = json.loads(output.read_text())[name]
    return {"scoring": result["scoring"], "load": result["load"]}, {
        (c.query_id, c.docid): s for c, s in zip(part["candidates"], result["scores"], strict=True)
    }


def table(args, candidates: list, seconds: dict, scores: dict) -> None:
    """The results: pairs/s of scoring (the ratios are of these), and of a whole run: scoring plus one load
    (`seconds[name]`: total scoring, mean load)."""
    from reranker.io.qrels import read_qrels

    qrels = read_qrels(args.qrels) if args.qrels else None
    scoring = {name: times["scoring"] for name, times in seconds.items()}
    base, st_names = scoring["torch fp32"], [n for n in seconds if n.startswith("st ")]
    print("\n| variant | pairs/s scoring | x torch fp32 | x best sentence-transformers | pairs/s with one load "
          "| load s | MRR@10 | max abs diff vs torch |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
    for name, times in seconds.items():
        vs_st = f"{min(scoring[n] for n in st_names) / scoring[name]:.2f}" if st_names else "n/a"
        mrr = f"{mrr_at_10(qrels, candidates, scores[name]):.4f}" if qrels else "-"
        diff = np.max(np.abs(scores[name] - scores["torch fp32"]))
        print(f"| {name} | {len(candidates) / scoring[name]:.1f} | {base / scoring[name]:.2f} | {vs_st} "
              f"| {len(candidates) / (scoring[name] + times['load']):.1f} | {times['load']:.1f} | {mrr} "
              f"| {diff:.2e} |")  # fmt: skip


if __name__ == "__main__":
    main()
