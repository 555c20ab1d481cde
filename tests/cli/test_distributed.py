"""torchrun on this CPU (gloo, 2 processes): DDP training with resume, and sharded inference merged into the
same file as a single process writes."""

import contextlib
import gzip
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from reranker.training.driver import newest_complete_checkpoint
from tests.conftest import ROOT, write_bm25_rerank_file

pytestmark = pytest.mark.slow  # subprocesses: the stage scripts, kills, torchrun


TIMEOUT = 600  # seconds a command may take here; a hung rank fails the test instead of stalling CI


def torchrun(*args, wait=True):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    # --standalone: a free port each run, so that two suites on one machine do not meet on the default 29500
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *map(str, args)]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)  # fmt: skip
    if not wait:
        return process
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        kill_job(process)
        output, _ = process.communicate()  # what was printed before the kill
        pytest.fail(f"torchrun did not finish in {TIMEOUT} s:\n{output[-4000:]}")
    assert process.returncode == 0, output[-4000:]
    return output


def kill_job(process):
    """SIGKILL torchrun and its workers, as a crash of the machine would: torchrun starts each worker in a session
    of its own, so killing torchrun's process group alone leaves them running (and writing the same folder)."""
    workers = [int(pid) for pid in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()]
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):  # a worker that has just exited
            os.killpg(pid, signal.SIGKILL)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.time() + 60
    while any(Path(f"/proc/{pid}").exists() and not zombie(pid) for pid in workers):
        assert time.time() < deadline, f"workers {workers} outlived SIGKILL"
        time.sleep(0.05)


def zombie(pid) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def single(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, *map(str, args)], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=TIMEOUT)  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]


@pytest.fixture(scope="module")
def rerank_input(tmp_path_factory, offline_data):
    """The real BM25 top-20 of 40 dev600 queries, with passage texts."""
    return write_bm25_rerank_file(offline_data, tmp_path_factory.mktemp("dist") / "rerank.jsonl", 40)


def test_torchrun_and_machine_shards_give_the_single_process_file(rerank_input, tiny_model_dir, tmp_path):
    def flags(output, *extra):
        return ("reranker_inference.py", "--model_name_or_path", tiny_model_dir, "--encode_in_path", rerank_input,
                "--encoded_save_path", output, "--chunk_size", "100", *extra)  # fmt: skip

    single(*flags(tmp_path / "single.txt"))
    torchrun(*flags(tmp_path / "ranks.txt"))
    assert (tmp_path / "ranks.txt").read_bytes() == (tmp_path / "single.txt").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ranks.txt", "ranks.txt.summary.json", "single.txt",
                                                          "single.txt.summary.json"]  # fmt: skip
    # two "machines": shard 0 on 2 torchrun ranks, shard 1 in one process; merged with reranker.merge_scores
    torchrun(*flags(tmp_path / "shard0.txt", "--encode_num_shard", "2", "--encode_shard_index", "0"))
    single(*flags(tmp_path / "shard1.txt", "--encode_num_shard", "2", "--encode_shard_index", "1"))
    single("-m", "reranker.merge_scores", "--inputs", tmp_path / "shard0.txt", tmp_path / "shard1.txt",
           "--output", tmp_path / "merged.txt")  # fmt: skip
    assert (tmp_path / "merged.txt").read_bytes() == (tmp_path / "single.txt").read_bytes()


def test_ddp_training_saves_once_and_resumes(offline_data, tiny_model_dir, tmp_path):
    train = tmp_path / "train.jsonl"
    with gzip.open(offline_data / "train.jsonl.gz", "rt") as rows:
        train.write_text("".join(itertools.islice(rows, 16)))

    def flags(output):
        return ("train_reranker.py", "--model_name_or_path", tiny_model_dir, "--dataset_name", train, "--output_dir",
                output, "--per_device_train_batch_size", "2", "--train_n_passages", "4", "--max_steps", "8",
                "--save_steps", "2", "--logging_steps", "1", "--learning_rate", "1e-3", "--p_max_len", "64",
                "--disable_tqdm", "true")  # fmt: skip

    torchrun(*flags(tmp_path / "a"))
    history = json.loads((tmp_path / "a" / "trainer_state.json").read_text())["log_history"]
    # 16 queries, 2 ranks x 2 groups = 4 groups a step: a quarter epoch per step
    assert [h["epoch"] for h in history if "loss" in h] == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    process = torchrun(*flags(tmp_path / "b"), wait=False)
    deadline = time.time() + 300
    while newest_complete_checkpoint(tmp_path / "b") is None:
        assert process.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.02)
    kill_job(process)
    assert not (tmp_path / "b" / "model.safetensors").exists()
    assert "resuming from" in torchrun(*flags(tmp_path / "b"))
    a = AutoModelForSequenceClassification.from_pretrained(tmp_path / "a").state_dict()
    b = AutoModelForSequenceClassification.from_pretrained(tmp_path / "b").state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=1e-5, msg=name)
    # the same command once more: resumes from the final checkpoint, trains no step, exits cleanly on every rank
    assert "resuming from" in torchrun(*flags(tmp_path / "b"))


@pytest.fixture(scope="module")
def caching_runs(offline_data, tiny_model_without_dropout, tmp_path_factory):
    """The folder of two DDP runs, 2 optimizer steps of 2 micro-batches each, without (`plain`) and with (`cached`)
    gradient caching, their gradient all-reduces counted (`NAME.counts.RANK`)."""
    folder = tmp_path_factory.mktemp("caching")
    train = folder / "train.jsonl"
    with gzip.open(offline_data / "train.jsonl.gz", "rt") as rows:
        train.write_text("".join(itertools.islice(rows, 8)))

    def flags(name, *more):
        return ("-m", "tests.cli.count_allreduces", folder / f"{name}.counts", "--model_name_or_path",
                tiny_model_without_dropout, "--dataset_name", train, "--output_dir", folder / name,
                "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "2", "--train_n_passages", "8",
                "--max_steps", "2", "--optim", "sgd", "--learning_rate", "0.05", "--p_max_len", "48",
                "--save_strategy", "no", "--disable_tqdm", "true", *more)  # fmt: skip

    torchrun(*flags("plain"))
    torchrun(*flags("cached", "--pairs_per_forward", "3"))  # 16 pairs a rank a micro-batch, 3 a sub-batch at most
    return folder


def test_ddp_training_with_gradient_caching_equals_without(caching_runs):
    a = AutoModelForSequenceClassification.from_pretrained(caching_runs / "plain").state_dict()
    b = AutoModelForSequenceClassification.from_pretrained(caching_runs / "cached").state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=1e-5, msg=name)


def test_ddp_training_with_gradient_caching_all_reduces_once_an_optimizer_step(caching_runs):
    """Each sub-batch but a micro-batch's last runs in `no_sync` (and every sub-batch of a micro-batch the Trainer
    accumulates without syncing): the cached run all-reduces the gradients once an optimizer step, as the plain run
    does; without `no_sync` it would all-reduce after every sub-batch."""
    steps = json.loads((caching_runs / "cached" / "trainer_state.json").read_text())["global_step"]
    assert steps == 2
    for rank in (0, 1):
        plain, cached = (
            json.loads((caching_runs / f"{run}.counts.{rank}").read_text()) for run in ("plain", "cached")
        )
        assert plain["rounds"] == steps and plain["buckets"] >= steps
        assert cached == plain


def test_ddp_trains_a_lora_decoder_and_saves_one_adapter(tiny_decoders, train_file, tmp_path):
    from reranker import Reranker

    output = tmp_path / "lora"
    log = torchrun("train_reranker.py", "--model_name_or_path", tiny_decoders["llama"], "--score_head", "last_token",
                   "--dataset_name", train_file, "--output_dir", output, "--per_device_train_batch_size", "2",
                   "--train_n_passages", "4", "--max_steps", "2", "--lora_r", "4", "--lora_alpha", "8",
                   "--p_max_len", "48", "--save_strategy", "no", "--logging_steps", "1",
                   "--disable_tqdm", "true")  # fmt: skip
    history = json.loads((output / "trainer_state.json").read_text())["log_history"]
    # 8 queries, 2 ranks x 2 groups = 4 groups a step: half an epoch per step
    assert [h["epoch"] for h in history if "loss" in h] == [0.5, 1.0], log[-2000:]
    assert {"adapter_config.json", "adapter_model.safetensors", "reranker_head.json"} <= {
        p.name for p in output.iterdir()
    }
    assert not (output / "model.safetensors").exists()
    scores = Reranker.from_pretrained(str(output)).predict([("a query", "a passage"), ("a query", "another one")])
    assert np.isfinite(scores).all()
