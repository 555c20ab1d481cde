"""Which precision a CPU computes in: bf16 only where the CPU has it natively."""

from pathlib import Path

import pytest
import torch

from reranker.model.precision import autocast_dtype, cpu_supports_bf16

CPUINFO = Path("/proc/cpuinfo")


@pytest.mark.skipif(not CPUINFO.exists(), reason="no /proc/cpuinfo to read the CPU's instruction sets from")
def test_bf16_on_a_cpu_only_where_it_is_native():
    """oneDNN emulates bf16 on any AVX512 CPU (3x slower than fp32 on a Xeon without AVX512-BF16): not native."""
    flags = set(CPUINFO.read_text().split())
    native = bool({"avx512_bf16", "amx_bf16"} & flags)
    assert cpu_supports_bf16() == native
    assert autocast_dtype("bf16", torch.device("cpu")) == (torch.bfloat16 if native else None)
