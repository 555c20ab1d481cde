"""LoRA through peft (imported when used: --help stays fast): adapters on a reranker's attention and feed-forward
layers, its score layer trained in full.

A trained adapter folder holds `adapter_config.json` (with the base model's name), the adapter weights and the
`score` layer; `load_adapter` puts it back on its base model, merged by default (one set of weights: the same
scores as the adapter, faster).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from transformers import PretrainedConfig

from reranker.io.errors import ParameterError, literal

ADAPTER_CONFIG = "adapter_config.json"
# Llama, Mistral, Qwen2/3, Gemma: every attention and MLP projection, as Tevatron's RankLLaMA command adapts
DECODER_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ENCODER_TARGETS = {
    "bert": ("query", "key", "value", "dense"),
    "roberta": ("query", "key", "value", "dense"),
    "xlm-roberta": ("query", "key", "value", "dense"),
    "electra": ("query", "key", "value", "dense"),
    "distilbert": ("q_lin", "k_lin", "v_lin", "out_lin"),
}
logger = logging.getLogger(__name__)


def lora_target_modules(config: PretrainedConfig, given: str | None, decoder: bool, name: str) -> list[str]:
    """The module names LoRA adapts: `given` (comma-separated), else the family's defaults; a ParameterError for a
    family with none known (before any weights are read)."""
    if given:
        return [module.strip() for module in given.split(",") if module.strip()]
    targets = DECODER_TARGETS if decoder else ENCODER_TARGETS.get(config.model_type)
    if targets is None:
        raise ParameterError(
            f"{{0}}: no default LoRA target modules for {literal(name)} ({literal(config.model_type)}); give {{1}}",
            "lora_r", "lora_target_modules",
        )  # fmt: skip
    return list(targets)


def add_lora(
    model: torch.nn.Module, r: int, alpha: float, dropout: float, targets: list[str], score_head: str | None
) -> torch.nn.Module:
    """`model` with LoRA adapters of rank `r` on the `targets` modules; everything else frozen except the score
    layer (`score` of last_token, `classifier` of a [CLS] head; yes_no reads the frozen LM head).

    Returns:
        The peft model (its trainable parameters: adapters and score layer).
    """
    from peft import LoraConfig, TaskType, get_peft_model

    if score_head == "segment_cosine":
        raise ParameterError("{0} does not go with {1} segment_cosine (its head is not a module peft can train)",
                             "lora_r", "score_head")  # fmt: skip
    head = {"last_token": ["score"], "yes_no": None}.get(score_head, ["classifier"])
    task = TaskType.CAUSAL_LM if score_head == "yes_no" else TaskType.SEQ_CLS
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets,
                        modules_to_save=head, task_type=task)  # fmt: skip
    try:
        return get_peft_model(model, config)
    except ValueError as err:
        first = str(err).strip().splitlines()[0]
        raise ParameterError(f"{{0}} {literal(','.join(targets))}: {literal(first)}", "lora_target_modules") from None


def adapter_base(name_or_path: str, config_file: Path | None) -> str | None:
    """The base model of an adapter folder (`config_file`: its adapter_config.json, or None: not an adapter)."""
    if config_file is None:
        return None
    base = json.loads(config_file.read_text()).get("base_model_name_or_path")
    if not base:
        raise ParameterError(f"{{0}} {literal(name_or_path)}: {ADAPTER_CONFIG} names no base model",
                             "model_name_or_path")  # fmt: skip
    return base


def load_adapter(model: torch.nn.Module, folder: str, merge: bool = True) -> torch.nn.Module:
    """The adapter in `folder` on `model` (its base, loaded once), merged into it unless `merge` is False."""
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(model, folder)
    return peft_model.merge_and_unload() if merge else peft_model


def save_merged(model, output_dir: str | Path) -> torch.nn.Module:
    """Replace the adapter files in `output_dir` with the merged model's weights and config; return the model."""
    merged = model.merge_and_unload()
    for name in (ADAPTER_CONFIG, "adapter_model.safetensors", "adapter_model.bin"):
        (Path(output_dir) / name).unlink(missing_ok=True)
    merged.save_pretrained(output_dir)
    return merged
