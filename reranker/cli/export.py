"""`python -m reranker.export --model_name_or_path M --output_dir OUT --backend onnx|openvino [--optimize O1..O3]
[--quantize int8 [--calibration_file RERANK_FILE --calibration_pairs N]]`: a cross-encoder for the CPU.

The folder holds the model (ONNX Runtime or OpenVINO), its config and tokenizer, and reranker_export.json (how it
was made, and the check pairs with PyTorch's scores). It is written only after the export scored the check pairs
as the PyTorch model does; `reranker_inference.py --model_name_or_path OUT` then scores through it, and so do
`Reranker.from_pretrained(OUT)` and sentence-transformers' `CrossEncoder(OUT, backend="onnx"|"openvino")`.
"""

from __future__ import annotations

import argparse

from reranker.cli.common import exits_on_bad_input, setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reranker.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model_name_or_path", required=True, help="Cross-encoder folder or Hub name.")
    parser.add_argument("--output_dir", required=True, help="The export folder (an earlier export there is replaced).")
    parser.add_argument("--tokenizer_name", default=None, help="Tokenizer, if the model folder has none.")
    runtime = parser.add_argument_group("CPU runtime")
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
    return parser


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = build_parser().parse_args(argv)
    from reranker.inference.export import ExportSettings, export_model
    from reranker.io.errors import ParameterError

    if args.backend is None:
        raise ParameterError("{0} is required: onnx or openvino", "backend")
    settings = ExportSettings(
        args.backend, args.optimize, args.quantize, args.instruction_set, args.calibration_file,
        args.calibration_pairs, args.q_max_len, args.p_max_len, args.passage_field_separator,
    )  # fmt: skip
    record = export_model(args.model_name_or_path, args.output_dir, settings, args.tokenizer_name)
    print(f"wrote {args.output_dir} ({record['file']}); checked against PyTorch: {record['check']['figures']}")


if __name__ == "__main__":
    raise SystemExit(main())
