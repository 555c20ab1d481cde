"""Exporting a cross-encoder for the CPU: ONNX (ONNX Runtime; optimized O1-O3, dynamic int8) or OpenVINO (fp32, or
static int8 calibrated on real pairs), checked against PyTorch before the folder is written.

Made with the libraries under optimum: `torch.onnx` exports the graph, `onnxruntime.transformers.optimizer` fuses it
(optimum's O1-O3 are its levels), `onnxruntime.quantization` quantizes it, OpenVINO converts the ONNX graph and NNCF
quantizes that. optimum itself is not used: optimum-onnx 0.1.0 requires transformers < 4.58 and optimum-intel 2.2
transformers < 5.6, below this project's pins.

Example:
    >>> record = export_model("runs/minilm", "runs/minilm-openvino-int8", ExportSettings(
    ...     "openvino", quantize="int8", calibration_file="runs/val.rerank.jsonl"))
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig

from reranker.inference.runtimes import (
    EXPORT_RECORD,
    MODEL_FILES,
    ExportedPairScorer,
    load_exported_model,
    scores_follow,
)
from reranker.inference.scoring import PairScorer
from reranker.io.errors import ParameterError, UsageError, check_at_least, literal
from reranker.io.rerank_input import iter_query_blocks
from reranker.io.textio import atomic_folder
from reranker.model.backbone import (
    ScoreHead,
    is_decoder_config,
    load_scoring_model,
    pair_encoder_for,
    resolve_score_head,
)
from reranker.model.loading import load_tokenizer, model_file
from reranker.model.pair_encoding import EncodedPairs, GroupEncoder, check_max_lengths

logger = logging.getLogger(__name__)

EXPORT_BACKENDS = ("onnx", "openvino")
OPTIMIZATION_LEVELS = ("O1", "O2", "O3", "O4")
QUANTIZATIONS = ("int8",)
# optimum's AutoQuantizationConfig presets: without VNNI, int8 products of full-range weights can saturate, so
# weights use 7 bits (reduce_range)
REDUCE_RANGE = {"avx512_vnni": False, "avx512": True, "avx2": True, "arm64": False}
PACKAGES = ("torch", "transformers", "onnx", "onnxruntime", "openvino", "nncf")
# Real passages and questions (MS MARCO style), short enough to be encoded whole at any usual lengths: the
# export's scores on them are compared with PyTorch's now and on every load.
CHECK_PAIRS = (
    ("what is a lobster roll", "A lobster roll is a sandwich of lobster meat served on a grilled hot dog bun."),
    ("what is a lobster roll", "Lobsters are crustaceans that live on rocky, sandy or muddy sea floors."),
    ("why does a volcano erupt", "A volcano erupts when pressure from gases and molten rock becomes too high."),
    ("why does a volcano erupt", "The stock market fell sharply on Monday after weak earnings reports."),
    ("how long to boil an egg", "For a hard boiled egg, cook it in boiling water for about ten minutes."),
    ("how long to boil an egg", "Eggs are a good source of protein and contain all essential amino acids."),
    ("capital of australia", "Canberra is the capital city of Australia, in the Australian Capital Territory."),
    ("capital of australia", "Sydney is the largest city in Australia and is known for its opera house."),
    ("what causes tides", "Tides are caused by the gravitational pull of the moon and the sun on the oceans."),
    ("what causes tides", "A tidal wave is a popular name for a tsunami, which earthquakes cause."),
    ("symptoms of the flu", "Flu symptoms include fever, cough, sore throat, body aches and fatigue."),
    ("symptoms of the flu", "The flu vaccine is updated every year to match the circulating strains."),
    ("who wrote hamlet", "Hamlet is a tragedy written by William Shakespeare around 1600."),
    ("who wrote hamlet", "Denmark is a Nordic country with a population of about six million people."),
    ("how many bones in the human body", "An adult human body has 206 bones; babies are born with about 270."),
    ("how many bones in the human body", "Calcium and vitamin D help keep bones strong throughout life."),
)


@dataclass(frozen=True)
class ExportSettings:
    """What `export_model` makes.

    Args:
        backend: "onnx" or "openvino".
        optimize: ONNX only: "O1" (basic graph optimizations), "O2" (+ transformer fusions), "O3" (+ GELU
            approximation); "O4" (fp16) is for GPUs and refused.
        quantize: "int8": dynamic for ONNX (weights int8, activations quantized per batch), static for OpenVINO
            (calibrated on `calibration_pairs` pairs of `calibration_file`).
        instruction_set: ONNX int8: "avx512_vnni", "avx512", "avx2" or "arm64" (default: this CPU's).
        calibration_file: a rerank file (`prepare_rerank_file.py`) whose first pairs calibrate OpenVINO int8.
        calibration_pairs: how many.
        q_max_len, p_max_len, separator: how pairs are encoded for calibration (as `reranker_inference.py`).
    """

    backend: str
    optimize: str | None = None
    quantize: str | None = None
    instruction_set: str | None = None
    calibration_file: str | None = None
    calibration_pairs: int = 300
    q_max_len: int = 16
    p_max_len: int = 128
    separator: str = " "

    def check(self) -> None:
        """ParameterError for settings that cannot work together, before any model is loaded."""
        _choice("backend", self.backend, EXPORT_BACKENDS)
        _choice("optimize", self.optimize, OPTIMIZATION_LEVELS)
        _choice("quantize", self.quantize, QUANTIZATIONS)
        _choice("instruction_set", self.instruction_set, tuple(REDUCE_RANGE))
        check_at_least("calibration_pairs", self.calibration_pairs, 1)
        check_max_lengths(self.q_max_len, self.p_max_len)
        if self.optimize == "O4":
            raise ParameterError("{0} O4 is fp16 mixed precision, for GPUs; on a CPU use O3", "optimize")
        if self.optimize and self.backend != "onnx":
            raise ParameterError("{0} goes with {1} onnx (OpenVINO optimizes the graph when it loads it)",
                                 "optimize", "backend")  # fmt: skip
        if self.instruction_set and not (self.quantize and self.backend == "onnx"):
            raise ParameterError("{0} goes with {1} int8 and {2} onnx", "instruction_set", "quantize", "backend")
        static = self.quantize and self.backend == "openvino"
        if static and not self.calibration_file:
            raise ParameterError("{0} int8 with {1} openvino is calibrated on real pairs: give {2} (a rerank file)",
                                 "quantize", "backend", "calibration_file")  # fmt: skip
        if self.calibration_file and not static:
            raise ParameterError("{0} goes with {1} int8 and {2} openvino (ONNX int8 is dynamic: no calibration)",
                                 "calibration_file", "quantize", "backend")  # fmt: skip

    @property
    def approximate(self) -> bool:
        """Whether the export computes something other than the fp32 model (int8, or GELU approximated)."""
        return bool(self.quantize) or self.optimize == "O3"


def _choice(name: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise ParameterError(f"{{0}} must be one of {', '.join(choices)}, got {literal(repr(value))}", name)


def this_instruction_set() -> str:
    """The int8 preset for this CPU: arm64 on ARM, else the best of avx512_vnni, avx512, avx2 its flags list."""
    if platform.machine().lower() in ("arm64", "aarch64"):
        return "arm64"
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:  # not Linux: PyTorch's view of the CPU
        flags = {"avx512f"} if "AVX512" in torch.backends.cpu.get_cpu_capability() else {"avx2"}
    return next((name for name, flag in (("avx512_vnni", "avx512_vnni"), ("avx512", "avx512f")) if flag in flags),
                "avx2")  # fmt: skip


def export_model(
    model_name_or_path: str, output_dir: str | os.PathLike, settings: ExportSettings, tokenizer: str | None = None
) -> dict:
    """Export a cross-encoder with its score head, check that it scores `CHECK_PAIRS` as PyTorch does, and only
    then write `output_dir` (atomically: no folder under that name unless complete).

    Args:
        model_name_or_path: a cross-encoder folder or Hub name (with its score head: an encoder without one is
            refused, its scores would be noise).
        output_dir: the export folder (replaced if it holds an earlier export).
        settings: backend, optimization and quantization.
        tokenizer: the tokenizer, if the model folder has none.

    Returns:
        The record written to `output_dir/reranker_export.json`.

    Example:
        >>> export_model("runs/minilm", "runs/minilm-onnx-int8", ExportSettings("onnx", quantize="int8"))["check"]
    """
    settings.check()
    _check_output_dir(Path(output_dir))
    loaded_tokenizer = load_tokenizer(tokenizer or model_name_or_path)
    if model_file(model_name_or_path, "config.json"):  # before the head: a decoder may record none
        _refuse_decoder(AutoConfig.from_pretrained(model_name_or_path), model_name_or_path, settings.backend)
    head = resolve_score_head(model_name_or_path, loaded_tokenizer)
    _refuse_decoder(head.config, model_name_or_path, settings.backend)  # an adapter folder's base
    # eager attention exports the classic BERT graph, whose attention ONNX Runtime fuses into one kernel (the
    # SDPA graph stays unfused: O3 ran at 0.68x PyTorch with it); the scores are the same math
    model = load_scoring_model(model_name_or_path, head, attn_implementation="eager").eval()
    _refuse_missing_head(model, model_name_or_path)
    encoder = pair_encoder_for(head, loaded_tokenizer, settings.q_max_len, settings.p_max_len, settings.separator)
    static = settings.backend == "openvino" and settings.quantize
    calibration = _calibration_pairs(encoder, settings) if static else None
    queries, passages = [q for q, _ in CHECK_PAIRS], [p for _, p in CHECK_PAIRS]
    torch_scores = PairScorer(model, encoder, torch.device("cpu")).score_pairs(queries, [""] * len(queries), passages)
    instruction_set = settings.instruction_set or (this_instruction_set() if settings.quantize else None)
    with atomic_folder(output_dir) as work:
        onnx_path = work / MODEL_FILES["onnx"]
        export_onnx(model, encoder, onnx_path)
        if settings.backend == "onnx":
            if settings.optimize:
                optimize_onnx(onnx_path, settings.optimize, model.config)
            if settings.quantize:
                quantize_onnx(onnx_path, instruction_set)
        else:
            onnx_to_openvino(onnx_path, work / MODEL_FILES["openvino"], calibration)
            shutil.rmtree(onnx_path.parent)
        exported = ExportedPairScorer(load_exported_model(work, settings.backend), encoder)
        scores = exported.score_pairs(queries, [""] * len(queries), passages)
        follows, figures = scores_follow(torch_scores, scores, settings.approximate)
        if not follows:
            raise UsageError(f"{model_name_or_path}: the {settings.backend} export does not score like the PyTorch "
                             f"model ({figures}); nothing written")  # fmt: skip
        _save_config(model, work)
        loaded_tokenizer.save_pretrained(work)
        record = _record(model_name_or_path, head, settings, instruction_set, queries, passages, torch_scores, scores)
        record["check"]["figures"] = figures
        (work / EXPORT_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    logger.info("exported %s to %s (%s); its scores follow PyTorch's: %s", model_name_or_path, output_dir,
                settings.backend, figures)  # fmt: skip
    return record


def _refuse_decoder(config, name: str, backend: str) -> None:
    if is_decoder_config(config):
        raise ParameterError(f"{{0}} {backend}: {literal(name)} is a decoder LLM ({literal(config.model_type)}); "
                             "exports cover encoder cross-encoders (cls) for now", "backend")  # fmt: skip


def _check_output_dir(path: Path) -> None:
    if path.is_file() or (path.is_dir() and any(path.iterdir()) and not (path / EXPORT_RECORD).is_file()):
        raise ParameterError(f"{{0}} {literal(path)} holds something other than an export; refusing to replace it",
                             "output_dir")  # fmt: skip


def _refuse_missing_head(model: torch.nn.Module, name: str) -> None:
    """A checkpoint whose head weights are not in its files gets a random head: its export would rank nothing."""
    stored = checkpoint_weight_names(name)
    if stored is None:
        return  # not safetensors (or not reachable): the check against PyTorch is all there is
    prefix = f"{model.base_model_prefix}."
    missing = sorted(n for n, _ in model.named_parameters() if not n.startswith(prefix) and n not in stored)
    if missing:
        raise ParameterError(f"{literal(name)} has no score head ({', '.join(missing)} not in its weights): a new "
                             "head scores noise; export a trained cross-encoder", "model_name_or_path")  # fmt: skip


def checkpoint_weight_names(name: str) -> set[str] | None:
    """The weight names stored in a checkpoint's safetensors files (None when it has none)."""
    from safetensors import safe_open

    index = model_file(name, "model.safetensors.index.json")
    if index:
        return set(json.loads(index.read_text())["weight_map"])
    single = model_file(name, "model.safetensors")
    if single is None:
        return None
    with safe_open(single, "pt") as weights:
        return set(weights.keys())


def _calibration_pairs(encoder: GroupEncoder, settings: ExportSettings) -> EncodedPairs:
    """The first `calibration_pairs` pairs of the calibration file, encoded as inference encodes them."""
    queries, passages = [], []
    for block in iter_query_blocks(settings.calibration_file):
        for candidate in block.candidates[: settings.calibration_pairs - len(queries)]:
            queries.append(block.query)
            passages.append((candidate.title, candidate.text))
        if len(queries) == settings.calibration_pairs:
            break
    if len(queries) < settings.calibration_pairs:
        logger.warning("%s holds %d pairs, fewer than %d: calibrating on those", settings.calibration_file,
                       len(queries), settings.calibration_pairs)  # fmt: skip
    return encoder.encode(queries, [t for t, _ in passages], [x for _, x in passages])


def _example_batch(encoder: GroupEncoder) -> dict[str, torch.Tensor]:
    """Two pairs of different lengths, padded with a mask: every input the graph takes."""
    pairs = encoder.encode([q for q, _ in CHECK_PAIRS[:2]], ["", ""], [p for _, p in CHECK_PAIRS[:2]])
    batch = pairs.padded_batch(np.arange(2), int(pairs.lengths.max()), encoder.pad_token_id)
    if "attention_mask" not in batch:
        raise RuntimeError("internal error: the example pairs need no padding")
    return batch


def export_onnx(model: torch.nn.Module, encoder: GroupEncoder, path: Path) -> None:
    """The model as an ONNX graph (opset 17) taking batches of any size and length, its output `logits`: the
    names and shapes optimum gives, so that optimum and sentence-transformers load it."""
    batch = _example_batch(encoder)
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in batch]
    path.parent.mkdir(parents=True, exist_ok=True)
    axes = {name: {0: "batch_size", 1: "sequence_length"} for name in names}
    # The TorchScript exporter: the dynamo one needs onnxscript and gives the same graph for these encoders.
    torch.onnx.export(model, (), str(path), kwargs={name: batch[name] for name in names}, input_names=names,
                      output_names=["logits"], dynamic_axes={**axes, "logits": {0: "batch_size"}}, opset_version=17,
                      dynamo=False)  # fmt: skip


def optimize_onnx(path: Path, level: str, config) -> None:
    """Optimize the graph in place as optimum's O1-O3 do: ONNX Runtime's basic (O1) or extended (O2) graph
    optimizations with its transformer fusions (O2, O3), GELU replaced by its tanh approximation (O3)."""
    logging.disable(logging.INFO)  # the optimizer logs every node it fuses
    try:
        _optimize_quietly(path, level, config)
    finally:
        logging.disable(logging.NOTSET)


def _optimize_quietly(path: Path, level: str, config) -> None:
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_gelu_approximation = level == "O3"
    fused = level != "O1"
    optimized = optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads if fused else 0,
                               hidden_size=config.hidden_size if fused else 0, optimization_options=options,
                               opt_level=1 if level == "O1" else 2, only_onnxruntime=not fused)  # fmt: skip
    optimized.save_model_to_file(str(path))


def quantize_onnx(path: Path, instruction_set: str) -> None:
    """Dynamic int8 in place: int8 weights (per channel), activations quantized batch by batch (uint8), the
    preset of optimum's AutoQuantizationConfig for `instruction_set`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = path.with_name("model_int8.onnx")
    quantize_dynamic(path, quantized, per_channel=True, reduce_range=REDUCE_RANGE[instruction_set],
                     weight_type=QuantType.QInt8)  # fmt: skip
    os.replace(quantized, path)


def onnx_to_openvino(onnx_path: Path, path: Path, calibration: EncodedPairs | None = None) -> None:
    """The ONNX graph as an OpenVINO model with fp32 weights; with `calibration`, statically quantized to int8
    by NNCF (the transformer preset: activations' ranges measured on those pairs, one pair at a time)."""
    import openvino

    model = openvino.convert_model(onnx_path)
    if calibration is not None:
        import nncf

        names = [port.get_any_name() for port in model.inputs]
        items = [_single_pair_inputs(calibration, i, names) for i in range(len(calibration))]
        model = nncf.quantize(model, nncf.Dataset(items), model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(items))  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    openvino.save_model(model, path, compress_to_fp16=False)  # fp16 weights would change fp32 scores


def _single_pair_inputs(pairs: EncodedPairs, i: int, names: list[str]) -> dict[str, np.ndarray]:
    ids, types = pairs[i]
    inputs = {"input_ids": np.array([ids], np.int64), "attention_mask": np.ones((1, len(ids)), np.int64),
              "token_type_ids": np.array([types if types is not None else [0] * len(ids)], np.int64)}  # fmt: skip
    return {name: inputs[name] for name in names}


def _save_config(model: torch.nn.Module, folder: Path) -> None:
    """The model's config, telling sentence-transformers' CrossEncoder to give raw logits, as we do (its default
    for one label is a sigmoid)."""
    model.config.sentence_transformers = {"activation_fn": "torch.nn.modules.linear.Identity"}
    model.config.save_pretrained(folder)


def _record(name, head: ScoreHead, settings: ExportSettings, instruction_set, queries, passages, torch_scores, scores):
    made_with = {}
    for package in PACKAGES:
        try:
            made_with[package] = version(package)
        except PackageNotFoundError:
            pass
    return {
        "source": os.path.abspath(name) if Path(name).exists() else name,
        "backend": settings.backend,
        "file": MODEL_FILES[settings.backend],
        "settings": asdict(settings),
        "instruction_set": instruction_set,
        "approximate": settings.approximate,
        "score_head": head.name or "cls",
        "lengths": {"q_max_len": settings.q_max_len, "p_max_len": settings.p_max_len, "separator": settings.separator},
        "made_with": made_with,
        "check": {"queries": queries, "passages": passages, "torch_scores": [float(s) for s in torch_scores],
                  "export_scores": [float(s) for s in scores]},
    }  # fmt: skip
