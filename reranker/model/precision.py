"""Choosing the compute precision: fp16/bf16 where the hardware has it, fp32 with a one-line warning otherwise."""

from __future__ import annotations

import functools
import logging

import torch

from reranker.io.errors import ParameterError, literal

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "fp16")


def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), so bf16 is faster rather than emulated.

    Not oneDNN's own test (`torch.ops.mkldnn._is_mkldnn_bf16_supported`): it says yes on any AVX512 CPU, where oneDNN
    emulates bf16 (measured on an AVX512 Xeon without AVX512-BF16: dev600 inference 3.1x slower than fp32)."""
    native = getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None)
    return torch.backends.mkldnn.is_available() and any(test is not None and test() for test in native)


def precision_name(fp16: bool, bf16: bool) -> str:
    """The precision the `--fp16`/`--bf16` flags ask for: "fp16", "bf16" or "fp32"."""
    if fp16 and bf16:
        raise ParameterError("{0} and {1} are mutually exclusive", "fp16", "bf16")
    return "fp16" if fp16 else "bf16" if bf16 else "fp32"


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ParameterError(
            f"{{0}} must be one of {', '.join(PRECISIONS)}, got {literal(repr(precision))}", "precision"
        )


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` ("fp32", "bf16" or "fp16") on `device`; None means fp32.

    On CPU, fp16 always falls back to fp32 and bf16 is kept only where the CPU supports it natively.
    """
    check_precision(precision)
    if device.type == "cuda":
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            logger.warning("bf16: this GPU has no bf16 support; computing in fp32")
            return None
        return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    if precision == "fp16":
        logger.warning("fp16 needs a CUDA GPU and none is in use; computing in fp32")
        return None
    if precision == "bf16" and not cpu_supports_bf16():
        logger.warning("bf16: no GPU and this CPU has no native bf16; computing in fp32")
        return None
    return torch.bfloat16 if precision == "bf16" else None


def _as_fp32(value):
    return value.float() if torch.is_tensor(value) and value.is_floating_point() else value


def _without_autocast(forward):
    @functools.wraps(forward)
    def fp32_forward(*args, **kwargs):
        tensors = [value for value in (*args, *kwargs.values()) if torch.is_tensor(value)]
        with torch.autocast(tensors[0].device.type if tensors else "cpu", enabled=False):
            return forward(*map(_as_fp32, args), **{name: _as_fp32(value) for name, value in kwargs.items()})

    fp32_forward.runs_in_fp32 = True
    return fp32_forward


def head_in_fp32(model: torch.nn.Module) -> torch.nn.Module:
    """Run the classification head (the model's children with parameters, beside its base model) in fp32 under
    autocast; the module names and weights stay as they are.

    Under bf16 autocast the head's output, the score, is rounded to bf16 (3 significant digits): on dev600 one
    candidate in eight then ties with another of its query and keeps its first-stage rank, which moved MRR@10 by
    +0.013 against fp32. With the head in fp32 the scores stay distinct, at no measurable cost.
    """
    base = getattr(model, "base_model", None)
    for child in model.children():
        if child is base or getattr(child.forward, "runs_in_fp32", False) or next(child.parameters(), None) is None:
            continue
        child.forward = _without_autocast(child.forward)
    return model


def cast_weights(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Store the base model's weights in `dtype` (to run without autocast, as
    `from_pretrained(..., torch_dtype=dtype)` would), the head's in fp32 (see `head_in_fp32`).

    Autocast keeps fp32 weights and computes LayerNorm, the residual stream and GELU in fp32, with a cast before
    each matrix product: on an H200, 45% of BERT-base's device time was fp32 elementwise work and 12% casts.

    Example:
        >>> cast_weights(model, torch.bfloat16)
    """
    base = getattr(model, "base_model", model)
    base.to(dtype)
    for child in model.children():
        if child is not base:
            child.float()
    return head_in_fp32(model)
