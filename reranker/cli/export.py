"""`python -m reranker.export`: a checkpoint in the form another runtime serves.

- `--backend onnx|openvino [--optimize O1..O3] [--quantize int8 [--calibration_file RERANK_FILE
  --calibration_pairs N]]`: a cross-encoder for the CPU. The folder holds the model (ONNX Runtime or OpenVINO), its
  config and tokenizer, and reranker_export.json (how it was made, and the check pairs with PyTorch's scores). It is
  written only after the export scored the check pairs as the PyTorch model does; `reranker_inference.py
  --model_name_or_path OUT` then scores through it, and so do `Reranker.from_pretrained(OUT)` and
  sentence-transformers' `CrossEncoder(OUT, backend="onnx"|"openvino")`.
- `--to seq_cls`: a yes_no reranker (Qwen3-Reranker-style causal LM, a folder trained here, a LoRA adapter folder or
  a Hub name) as a one-logit `...ForSequenceClassification` whose score row is W[yes] - W[no]: the form vLLM's
  `LLM(task="score")`, TEI and infinity serve; it scores exactly as the yes_no model (same prompt, recorded with it).
"""

from __future__ import annotations

import argparse

from reranker.cli.common import exits_on_bad_input, setup_logging
from reranker.io.errors import ParameterError
from reranker.model.heads import DECODER_FLAGS
from reranker.model.prompt_template import unescape_flag

CONVERSIONS = ("seq_cls",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reranker.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model_name_or_path", required=True, help="The model folder, adapter folder or Hub name.")
    parser.add_argument("--output_dir", required=True, help="The export folder.")
    parser.add_argument("--tokenizer_name", default=None, help="Tokenizer, if the model folder has none.")
    runtime = parser.add_argument_group("CPU runtime (a cross-encoder)")
    runtime.add_argument("--backend", default=None, help="onnx (ONNX Runtime) or openvino.")
    runtime.add_argument("--optimize", default=None, help="onnx: O1, O2 (+ fusions) or O3 (+ GELU approximated).")
    runtime.add_argument("--quantize", default=None, help="int8: dynamic for onnx, static (calibrated) for openvino.")
    runtime.add_argument("--instruction_set", default=None,
                         help="onnx int8: avx512_vnni, avx512, avx2 or arm64 (default: this CPU's).")  # fmt: skip
    runtime.add_argument(
        "--calibration_file",
        default=None,
        help="openvino int8: a rerank file (prepare_rerank_file.py); its first pairs calibrate.",
    )
    runtime.add_argument("--calibration_pairs", type=int, default=300, help="Calibration pairs (default: 300).")
    runtime.add_argument("--q_max_len", type=int, default=16, help="Query tokens (calibration; default: 16).")
    runtime.add_argument("--p_max_len", type=int, default=128, help="Passage tokens (calibration; default: 128).")
    runtime.add_argument("--passage_field_separator", default=" ", help="Between a passage's title and text.")
    conversion = parser.add_argument_group("Conversion (a decoder LLM reranker)")
    conversion.add_argument("--to", choices=CONVERSIONS, default=None, help="The form to convert to.")
    for flag in DECODER_FLAGS:
        conversion.add_argument(f"--{flag}", type=unescape_flag,
                                help="For a model that records none: as train_reranker.py")  # fmt: skip
    return parser


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = build_parser().parse_args(argv)
    if (args.backend is None) == (args.to is None):
        raise ParameterError("give {0} (onnx or openvino) or {1} seq_cls", "backend", "to")
    if args.to is not None:
        from reranker.model.seq_cls_export import export_seq_cls  # imports torch: --help stays fast

        settings = {flag: getattr(args, flag) for flag in DECODER_FLAGS}
        output = export_seq_cls(args.model_name_or_path, args.output_dir, args.tokenizer_name, **settings)
        print(f"wrote the sequence-classifier export of {args.model_name_or_path} to {output}")
        return
    from reranker.inference.export import ExportSettings, export_model

    settings = ExportSettings(
        args.backend, args.optimize, args.quantize, args.instruction_set, args.calibration_file,
        args.calibration_pairs, args.q_max_len, args.p_max_len, args.passage_field_separator,
    )  # fmt: skip
    record = export_model(args.model_name_or_path, args.output_dir, settings, args.tokenizer_name)
    print(f"wrote {args.output_dir} ({record['file']}); checked against PyTorch: {record['check']['figures']}")


if __name__ == "__main__":
    raise SystemExit(main())
