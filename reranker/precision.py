"""Choosing the compute precision: fp16/bf16 where the hardware has it, fp32 with a one-line warning otherwise."""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)


def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), so bf16 is faster rather than emulated."""
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast_dtype(fp16: bool, bf16: bool, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `--fp16`/`--bf16` on `device`; None means fp32.

    On CPU, fp16 always falls back to fp32 and bf16 is kept only where the CPU supports it natively.
    """
    if fp16 and bf16:
        raise ValueError("--fp16 and --bf16 are mutually exclusive")
    if device.type == "cuda":
        if bf16 and not torch.cuda.is_bf16_supported():
            logger.warning("--bf16: this GPU has no bf16 support; computing in fp32")
            return None
        return torch.float16 if fp16 else torch.bfloat16 if bf16 else None
    if fp16:
        logger.warning("--fp16 needs a CUDA GPU and none is in use; computing in fp32")
        return None
    if bf16 and not cpu_supports_bf16():
        logger.warning("--bf16: no GPU and this CPU has no native bf16; computing in fp32")
        return None
    return torch.bfloat16 if bf16 else None
