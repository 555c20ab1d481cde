"""Exports for the CPU (`python -m reranker.export`): MiniLM with a score head on ONNX Runtime and OpenVINO, fp32
and int8, scored through the inference engine and checked against PyTorch; broken exports refused."""

import dataclasses
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from reranker.api import Reranker
from reranker.cli.export import main as export_main
from reranker.cli.infer import main as infer_main
from reranker.inference.export import CHECK_PAIRS, ExportSettings, export_model, this_instruction_set
from reranker.inference.runtimes import (
    EXPORT_RECORD,
    OPENVINO_SHAPE_CACHE,
    ExportedModel,
    ExportedPairScorer,
    scores_follow,
)
from reranker.io.errors import ParameterError, UsageError
from reranker.io.rerank_input import iter_query_blocks
from reranker.io.resumable import partial_paths
from tests.cli.test_kill_resume import finish, kill_when, scored, start
from tests.conftest import write_bm25_rerank_file

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def minilm_cross_encoder(tmp_path_factory, minilm_path):
    """MiniLM's real encoder with a seeded [CLS] head whose scores spread over several units (as a trained head's
    do; the default initialization scores every pair within 0.01), saved with its tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=1)
    torch.nn.init.normal_(model.classifier.weight, std=1.0)
    folder = tmp_path_factory.mktemp("minilm_cls")
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def dev600_200(tmp_path_factory, offline_data):
    """200 real dev600 pairs: the BM25 top 20 of 10 queries."""
    return write_bm25_rerank_file(offline_data, tmp_path_factory.mktemp("dev600") / "rerank.jsonl", 10)


@pytest.fixture(scope="module")
def val_pairs(tmp_path_factory, offline_data):
    return write_bm25_rerank_file(offline_data, tmp_path_factory.mktemp("val") / "rerank.jsonl", 40, split="val")


EXPORTS = {
    "onnx": ExportSettings("onnx"),
    "openvino": ExportSettings("openvino"),
    "onnx-int8": ExportSettings("onnx", quantize="int8"),
    "openvino-int8": ExportSettings("openvino", quantize="int8", calibration_pairs=200),
}


@pytest.fixture(scope="module")
def exports(tmp_path_factory, minilm_cross_encoder, val_pairs):
    folder = tmp_path_factory.mktemp("exports")
    made = {}

    def made_export(name):
        if name not in made:
            settings = EXPORTS[name]
            if settings.backend == "openvino" and settings.quantize:
                settings = dataclasses.replace(settings, calibration_file=str(val_pairs))
            export_model(str(minilm_cross_encoder), folder / name, settings)
            made[name] = folder / name
        return made[name]

    return made_export


def pairs_of(path):
    blocks = list(iter_query_blocks(path))
    return [(b.query, c.text) for b in blocks for c in b.candidates], [len(b.candidates) for b in blocks]


def rankings(scores, sizes):
    bounds = np.cumsum([0, *sizes])
    return [np.argsort(-scores[a:b], kind="stable").tolist() for a, b in itertools.pairwise(bounds)]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_fp32_export_scores_as_torch_with_the_same_ranking(backend, exports, minilm_cross_encoder, dev600_200):
    pairs, sizes = pairs_of(dev600_200)
    expected = Reranker.from_pretrained(str(minilm_cross_encoder), device="cpu").predict(pairs)
    reranker = Reranker.from_pretrained(str(exports(backend)))
    assert isinstance(reranker.scorer, ExportedPairScorer) and reranker.scorer.model.backend == backend
    scores = reranker.predict(pairs)
    assert np.std(expected) > 0.5  # scores that spread, so that 1e-4 means something
    np.testing.assert_allclose(scores, expected, atol=1e-4, rtol=0)
    assert rankings(scores, sizes) == rankings(expected, sizes)
    record = json.loads((exports(backend) / EXPORT_RECORD).read_text())
    assert record["backend"] == backend and record["approximate"] is False and record["score_head"] == "cls"


@pytest.mark.slow
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="streams need 2 cores")
@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_an_export_runs_one_stream_per_thread_with_the_scores_of_one(backend, exports, dev600_200):
    pairs, _ = pairs_of(dev600_200)
    one = Reranker.from_pretrained(str(exports(backend)), num_threads=1)
    two = Reranker.from_pretrained(str(exports(backend)), num_threads=2)
    assert (one.scorer.model.streams, two.scorer.model.streams) == (1, 2)
    np.testing.assert_allclose(two.predict(pairs), one.predict(pairs), atol=1e-6, rtol=0)


def test_openvino_keeps_the_kernels_of_a_bounded_number_of_shapes(exports, monkeypatch):
    import openvino

    configs, compile_model = [], openvino.Core.compile_model

    def recording(core, model, device, config):
        configs.append(config)
        return compile_model(core, model, device, config)

    monkeypatch.setattr(openvino.Core, "compile_model", recording)
    Reranker.from_pretrained(str(exports("openvino")))
    # the plugin takes the key at compile time but cannot report it back: what it was given is all a test can see
    assert [c.get("CPU_RUNTIME_CACHE_CAPACITY") for c in configs] == [OPENVINO_SHAPE_CACHE]
    assert OPENVINO_SHAPE_CACHE < 5000  # the plugin's default


class SlowStreams(ExportedModel):
    """Two streams whose batches take 20 ms each; scores are the sum of a pair's token ids (padding adds 0)."""

    streams = 2

    def __init__(self):
        super().__init__("slow", ["input_ids"])
        self.running, self.most_at_once, self.lock = set(), 0, threading.Lock()

    def run(self, inputs, stream):
        with self.lock:
            assert stream not in self.running, "two batches on one stream"
            self.running.add(stream)
            self.most_at_once = max(self.most_at_once, len(self.running))
        time.sleep(0.02)
        with self.lock:
            self.running.discard(stream)
        return inputs["input_ids"].sum(axis=1, keepdims=True).astype(np.float32)


def test_the_batches_of_a_call_run_on_every_stream_at_once_and_come_back_in_input_order(minilm_cross_encoder):
    encoder = Reranker.from_pretrained(str(minilm_cross_encoder)).scorer.encoder
    model = SlowStreams()
    passages = [" ".join(["word"] * n) for n in range(1, 41)]  # 40 lengths: 3 batches of 16 pairs at most
    pairs = encoder.encode(["a query"] * 40, [""] * 40, passages)
    scores = ExportedPairScorer(model, encoder, batch_size=16).score_encoded(pairs)
    assert model.most_at_once == 2
    assert scores.tolist() == [float(sum(pairs[i][0])) for i in range(40)]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["onnx-int8", "openvino-int8"])
def test_int8_export_reranks_a_file_end_to_end_and_resumes_after_a_kill(
    name, exports, minilm_cross_encoder, offline_data, tmp_path
):
    source = write_bm25_rerank_file(offline_data, tmp_path / "rerank.jsonl", 20)  # 400 pairs

    def command(output):
        return ("reranker_inference.py", "--model_name_or_path", exports(name), "--encode_in_path", source,
                "--encoded_save_path", output, "--chunk_size", "100", "--num_threads", "1")  # fmt: skip

    clean, output = tmp_path / "clean.txt", tmp_path / "scores.txt"
    finish(start(*command(clean)))
    partial, progress = partial_paths(output)
    process = start(*command(output))
    kill_when(process, lambda: scored(progress) >= 200)
    assert not output.exists() and partial.exists()
    assert "resuming after input line" in finish(start(*command(output)))
    assert output.read_bytes() == clean.read_bytes()
    pairs, _ = pairs_of(source)
    fp32 = Reranker.from_pretrained(str(minilm_cross_encoder), device="cpu").predict(pairs)
    keys = [(b.query_id, c.docid) for b in iter_query_blocks(source) for c in b.candidates]
    int8 = {tuple(line.split("\t")[:2]): float(line.split("\t")[2]) for line in output.read_text().splitlines()}
    assert sorted(int8) == sorted(keys)
    assert np.corrcoef([int8[key] for key in keys], fp32)[0, 1] > 0.98  # int8 follows fp32
    assert json.loads((exports(name) / EXPORT_RECORD).read_text())["approximate"] is True


ST_PREDICT = """
import json, sys
from sentence_transformers import CrossEncoder
folder, backend, pairs = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
print(json.dumps(CrossEncoder(folder, backend=backend).predict(pairs).tolist()))
"""


def python_with(module):
    """A Python that imports `module`: this one, or $RERANKER_ST_PYTHON (a venv with sentence-transformers' backend
    extra: optimum-onnx and optimum-intel cannot be installed beside this project's transformers 5); else skip."""
    for python in (sys.executable, os.environ.get("RERANKER_ST_PYTHON")):
        if python and subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0:
            return python
    pytest.skip(f"no Python with {module} (set RERANKER_ST_PYTHON to one)")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["onnx", "openvino", "openvino-int8"])
def test_sentence_transformers_loads_the_export_and_gives_our_scores(name, exports, dev600_200, tmp_path):
    backend = name.split("-")[0]
    python = python_with("optimum.onnxruntime" if backend == "onnx" else "optimum.intel")
    pairs, _ = pairs_of(dev600_200)
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    ours = Reranker.from_pretrained(str(exports(name)), q_max_len=64, p_max_len=448).predict(pairs)  # untruncated
    command = [python, "-c", ST_PREDICT, str(exports(name)), backend, str(tmp_path / "pairs.json")]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    theirs = np.array(json.loads(result.stdout.splitlines()[-1]))  # raw logits: the export's config says Identity
    if name.endswith("int8"):  # int8 activations differ with the padding of its batches (it pads to the longest)
        assert np.max(np.abs(theirs - ours)) < 0.1 and np.corrcoef(theirs, ours)[0, 1] > 0.995
    else:
        np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=0)


def headless_onnx(minilm_cross_encoder, path):
    """The encoder without its head, exported as feature extraction is: its output is every token's state."""
    from transformers import AutoModelForSequenceClassification

    class Headless(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = AutoModelForSequenceClassification.from_pretrained(minilm_cross_encoder).bert.eval()

        def forward(self, input_ids, attention_mask):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    batch = (torch.tensor([[101, 2054, 102]]), torch.ones(1, 3, dtype=torch.long))
    axes = {name: {0: "batch", 1: "length"} for name in ("input_ids", "attention_mask")}
    torch.onnx.export(Headless(), batch, str(path), input_names=list(axes), output_names=["logits"],
                      dynamic_axes=axes, opset_version=17, dynamo=False)  # fmt: skip


def swap_onnx_model(export, path, backend):
    if backend == "onnx":
        shutil.copy(path, export / "onnx" / "model.onnx")
    else:
        import openvino

        openvino.save_model(openvino.convert_model(path), export / "openvino" / "openvino_model.xml")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_an_export_whose_head_was_removed_is_refused(backend, exports, minilm_cross_encoder, dev600_200, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(exports(backend), broken)
    headless_onnx(minilm_cross_encoder, tmp_path / "headless.onnx")
    swap_onnx_model(broken, tmp_path / "headless.onnx", backend)
    with pytest.raises(UsageError, match="not one relevance logit per pair .* it has no score head"):
        Reranker.from_pretrained(str(broken))
    output = tmp_path / "scores.txt"
    argv = ["--model_name_or_path", broken, "--encode_in_path", dev600_200, "--encoded_save_path", output]
    assert infer_main([str(arg) for arg in argv]) == 2
    assert not output.exists() and not any(p.exists() for p in partial_paths(output))


@pytest.mark.slow
def test_an_export_whose_scores_changed_is_refused(exports, tmp_path):
    import onnx
    from onnx import numpy_helper

    broken = tmp_path / "broken"
    shutil.copytree(exports("onnx"), broken)
    graph = onnx.load(broken / "onnx" / "model.onnx")
    head = next(t for t in graph.graph.initializer if t.name == "classifier.weight")
    head.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(head), head.name))  # a head that ranks backwards
    onnx.save(graph, broken / "onnx" / "model.onnx")
    with pytest.raises(UsageError, match="does not give the scores it was checked with .*export the model again"):
        Reranker.from_pretrained(str(broken))


@pytest.mark.slow
def test_an_export_that_does_not_follow_torch_is_not_written(minilm_cross_encoder, monkeypatch, tmp_path, capsys):
    import reranker.inference.export as export

    real_export = export.export_onnx

    def without_the_trained_head(model, encoder, path):
        torch.nn.init.normal_(model.classifier.weight)  # another head than the one PyTorch scored with
        real_export(model, encoder, path)

    monkeypatch.setattr(export, "export_onnx", without_the_trained_head)
    out = tmp_path / "out"
    assert export_main(["--model_name_or_path", str(minilm_cross_encoder), "--output_dir", str(out), "--backend",
                        "onnx"]) == 2  # fmt: skip
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the weights' loading bar
    assert error.startswith("error: ") and "does not score like the PyTorch model" in error
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its work folder


@pytest.mark.slow
def test_a_checkpoint_without_a_score_head_is_not_exported(minilm_path, tmp_path, capsys):
    out = tmp_path / "out"
    assert export_main(["--model_name_or_path", str(minilm_path), "--output_dir", str(out), "--backend", "onnx"]) == 2
    assert "has no score head (classifier.bias, classifier.weight not in its weights)" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_a_decoder_llm_is_a_clear_error(tiny_decoders, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--model_name_or_path", str(tiny_decoders["qwen3"]), "--output_dir", str(out), "--backend", "openvino"]
    assert export_main(argv) == 2
    assert "error: --backend openvino: " in capsys.readouterr().err and not out.exists()
    with pytest.raises(ParameterError, match=r"is a decoder LLM \(qwen3\); exports cover encoder cross-encoders"):
        export_model(str(tiny_decoders["qwen3"]), out, ExportSettings("onnx"))


@pytest.mark.parametrize(
    "flags, message",
    [
        ([], "give --backend (onnx or openvino) or --to seq_cls"),
        (["--backend", "tensorrt"], "--backend must be one of onnx, openvino, got 'tensorrt'"),
        (["--backend", "onnx", "--optimize", "O4"], "--optimize O4 is fp16 mixed precision, for GPUs"),
        (["--backend", "openvino", "--optimize", "O3"], "--optimize goes with --backend onnx"),
        (["--backend", "openvino", "--quantize", "int8"], "give --calibration_file"),
        (["--backend", "onnx", "--quantize", "int4"], "--quantize must be one of int8"),
        (["--backend", "onnx", "--calibration_file", "x.jsonl"], "--calibration_file goes with --quantize int8"),
        (["--backend", "onnx", "--instruction_set", "avx2"], "--instruction_set goes with --quantize int8"),
    ],
)
def test_bad_export_flags_are_one_line_errors(flags, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert export_main(["--model_name_or_path", "nowhere", "--output_dir", str(out), *flags]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not out.exists()


def test_an_output_dir_with_other_files_is_not_replaced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ParameterError, match="holds something other than an export"):
        export_model("nowhere", tmp_path, ExportSettings("onnx"))
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_backend_settings_that_cannot_work_are_refused(tiny_model_dir):
    with pytest.raises(ParameterError, match="backend onnx: .* is not an export .* python -m reranker.export"):
        Reranker.from_pretrained(str(tiny_model_dir), backend="onnx")
    with pytest.raises(ParameterError, match="backend must be one of torch, onnx, openvino"):
        Reranker.from_pretrained(str(tiny_model_dir), backend="tensorrt")
    with pytest.raises(ParameterError, match="num_threads must be >= 1"):
        Reranker.from_pretrained(str(tiny_model_dir), num_threads=0)


@pytest.mark.slow
def test_an_export_refuses_torch_settings(exports):
    folder = str(exports("onnx"))
    with pytest.raises(ParameterError, match=r"backend torch: .* is an export for onnx \(its PyTorch weights"):
        Reranker.from_pretrained(folder, backend="torch")
    with pytest.raises(ParameterError, match="precision bf16 goes with the torch backend"):
        Reranker.from_pretrained(folder, precision="bf16")
    with pytest.raises(ParameterError, match="torch_compile goes with the torch backend"):
        Reranker.from_pretrained(folder, torch_compile=True)


def test_scores_follow_exactly_or_by_correlation():
    reference = np.array([1.0, -2.0, 0.5, 3.0])
    assert scores_follow(reference, reference + 5e-4, approximate=False)[0]
    assert not scores_follow(reference, reference + 2e-3, approximate=False)[0]
    assert scores_follow(reference, 0.8 * reference + 0.3, approximate=True)[0]
    assert not scores_follow(reference, -reference, approximate=True)[0]
    assert not scores_follow(reference, np.zeros(4), approximate=True)[0]  # a constant: no head at all


def test_the_check_pairs_are_real_text_and_the_instruction_set_is_this_cpus():
    assert len(CHECK_PAIRS) >= 8 and len({q for q, _ in CHECK_PAIRS}) >= 4
    flags = set(open("/proc/cpuinfo").read().split())
    expected = "avx512_vnni" if "avx512_vnni" in flags else "avx512" if "avx512f" in flags else "avx2"
    assert this_instruction_set() == expected
