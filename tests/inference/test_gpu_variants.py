"""The GPU speed variants of `PairScorer` (issue 37), checked on the CPU: the scores and files they change or keep."""

import threading

import numpy as np
import pytest
import torch

from reranker import Reranker
from reranker.cli.common import parse_dataclasses
from reranker.inference import score_file
from reranker.inference.arguments import ScoringArguments
from reranker.inference.score_file import rerank_file, scoring_job
from reranker.inference.scoring import (
    PairScorer,
    ScoringOptions,
    fixed_batch_rows,
    fixed_shape_count,
    lengths_mask,
    padded_lengths,
)
from reranker.io.errors import ParameterError
from reranker.io.rerank_input import iter_query_blocks
from reranker.model.loading import load_cross_encoder
from reranker.model.pair_encoding import PairEncoder
from tests.conftest import write_bm25_rerank_file

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def dev_pairs(offline_data, tmp_path_factory):
    """The BM25 top 20 of 15 dev600 queries (300 pairs), as a rerank file and as lists."""
    path = write_bm25_rerank_file(offline_data, tmp_path_factory.mktemp("dev") / "dev.rerank.jsonl", 15)
    candidates = [c for block in iter_query_blocks(str(path)) for c in block.candidates]
    return path, [c.query for c in candidates], [c.title for c in candidates], [c.text for c in candidates]


def test_partial_batches_filled_with_copies_to_a_few_sizes():
    assert fixed_batch_rows(np.array([5, 3, 9]), 64).tolist() == [5, 3, 9, 5, 5, 5, 5, 5]
    assert len(fixed_batch_rows(np.arange(9), 64)) == 16
    assert len(fixed_batch_rows(np.arange(33), 40)) == 40  # never past a full batch (max_tokens_per_batch)
    assert len(fixed_batch_rows(np.arange(64), 64)) == 64
    sizes = {len(fixed_batch_rows(np.arange(n), 1024)) for n in range(1, 1025)}
    assert sizes == {8, 16, 32, 64, 128, 256, 512, 1024}


def test_lengths_mask_is_the_padded_batch_mask():
    mask = lengths_mask(torch.tensor([3, 1, 4]), 4)
    assert mask.shape == (3, 1, 1, 4) and mask.dtype == torch.bool
    assert mask[:, 0, 0].int().tolist() == [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]]


def test_fixed_shapes_keep_the_scores_and_use_few_shapes(tokenizer, tiny_model_dir, dev_pairs, monkeypatch):
    model = load_cross_encoder(str(tiny_model_dir))
    encoder = PairEncoder(tokenizer, 16, 128)
    _, queries, titles, texts = dev_pairs
    exact = PairScorer(model, encoder, CPU, batch_size=32).score_pairs(queries, titles, texts)
    same_lengths = PairScorer(model, encoder, CPU, batch_size=32, pad_to_multiple_of=32)
    fixed = PairScorer(model, encoder, CPU, batch_size=32, options=ScoringOptions(fixed_shapes=True))
    shapes = []
    forward = fixed.model.forward
    monkeypatch.setattr(fixed.model, "forward", lambda **batch: shapes.append(batch["input_ids"].shape) or
                        forward(**batch))  # fmt: skip
    scores = fixed.score_pairs(queries, titles, texts)
    monkeypatch.undo()
    assert fixed.pad_to_multiple_of == 32
    # only the batch's number of rows differs from padding to 32 alone: the real rows' scores stay
    padded = same_lengths.score_pairs(queries, titles, texts)
    print("fixed shapes: max |difference| against padding alone", np.abs(scores - padded).max(),
          "against exact lengths", np.abs(scores - exact).max())  # fmt: skip
    np.testing.assert_allclose(scores, padded, rtol=0, atol=1e-6)
    np.testing.assert_allclose(scores, exact, rtol=0, atol=1e-5)  # a mask instead of exact lengths: fp32 rounding
    for query in range(0, len(scores), 20):  # each query's ranking, ties in input order
        group = slice(query, query + 20)
        assert (np.argsort(-scores[group], kind="stable") == np.argsort(-padded[group], kind="stable")).all()
    # 8, 16 or 32 rows, or a full batch of long pairs (4096 tokens at most on a CPU: 25 of 160 tokens)
    assert all(rows in (8, 16, min(32, 4096 // length)) and length % 32 == 0 for rows, length in shapes)
    assert len(set(shapes)) <= 3 * 5


def test_device_mask_gives_the_same_scores_and_files(tokenizer, tiny_model_dir, dev_pairs, tmp_path):
    model = load_cross_encoder(str(tiny_model_dir))
    encoder = PairEncoder(tokenizer, 16, 128)
    path, queries, titles, texts = dev_pairs
    masked = PairScorer(model, encoder, CPU, batch_size=32, pad_to_multiple_of=8)
    on_device = PairScorer(model, encoder, CPU, batch_size=32, pad_to_multiple_of=8,
                           options=ScoringOptions(device_mask=True, queue_ahead=True))  # fmt: skip
    expected = masked.score_pairs(queries, titles, texts)
    np.testing.assert_array_equal(on_device.score_pairs(queries, titles, texts), expected)
    rerank_file(masked, str(path), str(tmp_path / "today.txt"), chunk_size=100, show_progress=False)
    rerank_file(on_device, str(path), str(tmp_path / "variant.txt"), chunk_size=100, show_progress=False)
    assert (tmp_path / "variant.txt").read_bytes() == (tmp_path / "today.txt").read_bytes()
    # neither changes the scores, so neither changes the job (a run resumes across them)
    assert scoring_job(path, {}, on_device) == scoring_job(path, {}, masked)


def test_device_mask_skips_transformers_padding_check(tokenizer, tiny_model_dir, dev_pairs, monkeypatch):
    """The check that waits for the GPU once a batch (`padding_mask.all()`) runs for 2D masks, never for ours."""
    from transformers import masking_utils  # noqa: PLC0415

    checked, check = [], masking_utils._ignore_bidirectional_mask_sdpa
    monkeypatch.setattr(masking_utils, "_ignore_bidirectional_mask_sdpa",
                        lambda padding_mask, *args: checked.append(padding_mask is not None) or
                        check(padding_mask, *args))  # fmt: skip
    model = load_cross_encoder(str(tiny_model_dir))
    encoder = PairEncoder(tokenizer, 16, 128)
    _, queries, titles, texts = dev_pairs
    PairScorer(model, encoder, CPU, batch_size=32, pad_to_multiple_of=8).score_pairs(queries, titles, texts)
    assert sum(checked) >= 5  # once a padded batch, and a layer
    checked.clear()
    PairScorer(model, encoder, CPU, batch_size=32, pad_to_multiple_of=8,
               options=ScoringOptions(device_mask=True)).score_pairs(queries, titles, texts)  # fmt: skip
    assert not any(checked)


def test_device_mask_refuses_models_it_would_score_wrongly(tokenizer, tiny_model_dir):
    model = load_cross_encoder(str(tiny_model_dir))
    model.config._attn_implementation = "eager"  # eager attention adds the mask: a boolean one would be wrong
    with pytest.raises(ParameterError, match="device_mask"):
        PairScorer(model, PairEncoder(tokenizer, 16, 128), CPU, options=ScoringOptions(device_mask=True))


def test_queue_ahead_writes_from_a_thread_and_resumes(tokenizer, tiny_model_dir, dev_pairs, tmp_path, monkeypatch):
    model = load_cross_encoder(str(tiny_model_dir))
    encoder = PairEncoder(tokenizer, 16, 128)
    path = str(dev_pairs[0])
    rerank_file(PairScorer(model, encoder, CPU), path, str(tmp_path / "today.txt"), chunk_size=60,
                show_progress=False)  # fmt: skip
    ahead = PairScorer(model, encoder, CPU, options=ScoringOptions(queue_ahead=True))
    submitting, writing, real, ranked_lines = set(), set(), ahead.submit, score_file._ranked_lines
    monkeypatch.setattr(ahead, "submit", lambda pairs: submitting.add(threading.get_ident()) or real(pairs))
    record = lambda chunk, scores: writing.add(threading.get_ident()) or ranked_lines(chunk, scores)  # noqa: E731
    monkeypatch.setattr(score_file, "_ranked_lines", record)
    stats = rerank_file(ahead, path, str(tmp_path / "ahead.txt"), chunk_size=60, show_progress=False)
    assert (tmp_path / "ahead.txt").read_bytes() == (tmp_path / "today.txt").read_bytes()
    assert stats.candidates == 300
    # chunks are queued from a thread of their own while this one writes
    assert writing == {threading.get_ident()} and len(submitting) == 1 and not submitting & writing
    # killed while the third chunk is queued: the same command finishes the file byte for byte
    calls = []
    monkeypatch.setattr(ahead, "submit", lambda pairs: calls.append(1) or (len(calls) == 3 and _kill()) or real(pairs))
    out = tmp_path / "killed.txt"
    with pytest.raises(KeyboardInterrupt):
        rerank_file(ahead, path, str(out), chunk_size=60, show_progress=False)
    assert not out.exists()
    monkeypatch.setattr(ahead, "submit", real)
    rerank_file(ahead, path, str(out), chunk_size=60, show_progress=False)
    assert out.read_bytes() == (tmp_path / "today.txt").read_bytes()


def _kill():
    raise KeyboardInterrupt("killed")


# fp16 holds the 1.5x; bf16 weights keep the residual stream in bf16 where autocast keeps it in fp32: 1.9x
# autocast's largest error here and on MiniLM (mean 1.5x), so bf16 is bounded at 2.5x (see BENCHMARKS.md)
@pytest.mark.parametrize(("dtype", "bound"), [(torch.bfloat16, 2.5), (torch.float16, 1.5)])
def test_cast_weights_error_within_autocast_bound(tokenizer, tiny_model_dir, dev_pairs, dtype, bound):
    """Weights in bf16/fp16 instead of autocast: the error against fp32 bounded by autocast's; the head in fp32."""
    encoder = PairEncoder(tokenizer, 16, 128)
    queries, titles, texts = (pairs[:120] for pairs in dev_pairs[1:])
    fp32 = PairScorer(load_cross_encoder(str(tiny_model_dir)), encoder, CPU).score_pairs(queries, titles, texts)
    autocast = PairScorer(load_cross_encoder(str(tiny_model_dir)), encoder, CPU, dtype)
    cast_model = load_cross_encoder(str(tiny_model_dir))
    cast = PairScorer(cast_model, encoder, CPU, dtype, options=ScoringOptions(cast_weights=True))
    assert cast_model.bert.encoder.layer[0].attention.self.query.weight.dtype == dtype
    assert cast_model.classifier.weight.dtype == torch.float32
    cast_scores = cast.score_pairs(queries, titles, texts)
    autocast_error = np.abs(autocast.score_pairs(queries, titles, texts) - fp32).max()
    cast_error = np.abs(cast_scores - fp32).max()
    print(f"{dtype}: max |error| against fp32: autocast {autocast_error:.3g}, weights cast {cast_error:.3g}")
    assert 0 < cast_error <= bound * autocast_error
    rounded = torch.from_numpy(cast_scores).to(dtype).float().numpy()
    assert cast_scores.dtype == np.float32 and (rounded != cast_scores).mean() > 0.9  # not rounded by a 16-bit head
    assert scoring_job("x", {}, cast) != scoring_job("x", {}, autocast)  # other scores, another job


@pytest.mark.slow
def test_reranker_inference_flags_reach_the_scorer(run_script, tiny_model_dir, dev_pairs, tmp_path):
    """The command's flags: device mask, queue-ahead and encoding in worker processes (spawned from the script)
    write today's file byte for byte (as a GPU run would be checked); a model they cannot score is one error line
    naming the flag, exit status 2."""
    common = ["--model_name_or_path", tiny_model_dir, "--encode_in_path", dev_pairs[0], "--pad_to_multiple_of", "8",
              "--chunk_size", "100", "--device", "cpu"]  # fmt: skip
    run_script("reranker_inference.py", *common, "--encoded_save_path", tmp_path / "today.txt")
    variants = run_script("reranker_inference.py", *common, "--encoded_save_path", tmp_path / "variants.txt",
                          "--device_mask", "--queue_ahead", "--encode_workers", "2")  # fmt: skip
    assert "tokenizing " + str(dev_pairs[0]) + " in 2 worker processes" in variants.stderr
    assert (tmp_path / "variants.txt").read_bytes() == (tmp_path / "today.txt").read_bytes()
    failed = run_script("reranker_inference.py", *common, "--encoded_save_path", tmp_path / "eager.txt",
                        "--device_mask", "--attn_implementation", "eager", check=False)  # fmt: skip
    assert failed.returncode == 2 and not (tmp_path / "eager.txt").exists()
    assert failed.stderr.strip().splitlines()[-1].startswith("error: --device_mask needs an encoder")


def assert_same_rankings(scores: np.ndarray, expected: np.ndarray, group: int = 20) -> None:
    """Each query's candidates (`group` a query, in order) rank alike; ties in input order."""
    for start in range(0, len(scores), group):
        part = slice(start, start + group)
        assert (np.argsort(-scores[part], kind="stable") == np.argsort(-expected[part], kind="stable")).all()


@pytest.mark.parametrize("head", ["yes_no", "last_token"])
def test_causal_no_mask_keeps_a_decoders_scores(tiny_decoders, dev_pairs, head, monkeypatch):
    """A decoder's backbone without the padding mask (right-padded batches: causal attention alone keeps the real
    tokens from the pads): within 1e-5 of the masked scores (equal on this CPU), each query's ranking unchanged."""
    reranker = Reranker.from_pretrained(str(tiny_decoders["qwen3"]), score_head=head, q_max_len=32, p_max_len=128,
                                        batch_size=32, pad_to_multiple_of=64)  # fmt: skip
    masked = reranker.scorer
    no_mask = PairScorer(masked.model, masked.encoder, CPU, batch_size=32, pad_to_multiple_of=64,
                         options=ScoringOptions(causal_no_mask=True))  # fmt: skip
    _, queries, titles, texts = dev_pairs
    lengths = masked.encoder.encode(queries, titles, texts).lengths
    assert (padded_lengths(lengths, 64) > lengths).mean() > 0.9 and np.ptp(lengths) > 64  # nearly all padded
    expected = masked.score_pairs(queries, titles, texts)
    backbone, masks = masked.model.model, []
    forward = backbone.forward
    monkeypatch.setattr(backbone, "forward", lambda **inputs: masks.append(inputs["attention_mask"]) or
                        forward(**inputs))  # fmt: skip
    scores = no_mask.score_pairs(queries, titles, texts)
    assert masks and all(mask is None for mask in masks)  # the backbone ran without its mask
    print(f"{head}: max |no mask - masked| = {np.abs(scores - expected).max():.2e} (spread {np.ptp(expected):.3f})")
    assert np.ptp(expected) > 0.05  # the scores spread: a wrong token read or a pad attended to would show
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5)
    assert_same_rankings(scores, expected)
    assert scoring_job("x", {}, no_mask) != scoring_job("x", {}, masked)  # another kernel on a GPU: another job


@pytest.mark.parametrize("head", ["yes_no", "last_token"])
def test_decoder_forward_keeps_the_mask_of_left_padded_batches(tiny_decoders, dev_pairs, head):
    """A transformers user's batch, padded on the left: each pair scores as alone, since the forward keeps the mask
    unless its caller says the batch is right-padded (a left-padded pair without its mask scores otherwise)."""
    reranker = Reranker.from_pretrained(str(tiny_decoders["qwen3"]), score_head=head, q_max_len=32, p_max_len=128)
    model, encoder = reranker.scorer.model, reranker.scorer.encoder
    pairs = encoder.encode(*(column[:8] for column in dev_pairs[1:]))
    ids = [pairs[i][0] for i in range(len(pairs))]
    width = max(map(len, ids))
    input_ids = torch.tensor([[encoder.pad_token_id] * (width - len(row)) + row for row in ids])
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in ids])
    assert (mask == 0).sum(dim=1).min() == 0 and (mask == 0).sum(dim=1).max() > 16
    with torch.inference_mode():
        alone = torch.cat([model(input_ids=torch.tensor([row])).logits[:, 0] for row in ids]).numpy()
        batched = model(input_ids=input_ids, attention_mask=mask).logits[:, 0].numpy()
        unmasked = model(input_ids=input_ids, attention_mask=mask, right_padded=True).logits[:, 0].numpy()
    np.testing.assert_allclose(batched, alone, rtol=0, atol=1e-5)
    assert np.abs(unmasked - alone).max() > 1e-3  # the mask matters here: the test can fail


def test_causal_no_mask_refuses_encoders(tokenizer, tiny_model_dir):
    """An encoder's tokens attend to the pads after them: without its mask it would score wrongly."""
    with pytest.raises(ParameterError, match="^causal_no_mask needs a decoder"):
        PairScorer(load_cross_encoder(str(tiny_model_dir)), PairEncoder(tokenizer, 16, 128), CPU,
                   options=ScoringOptions(causal_no_mask=True))  # fmt: skip
    arguments = parse_dataclasses((ScoringArguments,), ["--causal_no_mask"])[0]
    assert arguments.options == ScoringOptions(causal_no_mask=True)


# Inductor compiling takes its time on a CPU: 2 cores, an empty cache, ~28 s dynamic, ~32 s static (7 graphs);
# ~12 s each once inductor's cache holds the kernels
@pytest.mark.slow
@pytest.mark.parametrize("fixed_shapes", [False, True], ids=["dynamic", "static"])
def test_torch_compile_gives_the_eager_scores(tiny_model_dir, dev_pairs, fixed_shapes, monkeypatch, fresh_dynamo):
    """torch.compile within 1e-5 of eager fp32 on 100 real pairs: dynamic shapes, one graph for all batches; with
    fixed shapes, static, one graph per batch shape (dynamo's recompile limit raised to their number)."""
    from torch._dynamo.utils import counters  # noqa: PLC0415

    pairs = list(zip(*(column[:100] for column in dev_pairs[1:]), strict=True))
    eager = Reranker.from_pretrained(str(tiny_model_dir), batch_size=32).predict(pairs)
    counters.clear()
    options = ScoringOptions(fixed_shapes=fixed_shapes)
    with torch._dynamo.config.patch(recompile_limit=8):  # the default, whatever ran before
        reranker = Reranker.from_pretrained(str(tiny_model_dir), batch_size=32, options=options, torch_compile=True)
        scorer, shapes = reranker.scorer, []
        forward = scorer._forward
        monkeypatch.setattr(scorer, "_forward", lambda batch, lengths: shapes.append(
            (*batch["input_ids"].shape, "attention_mask" in batch)) or forward(batch, lengths))  # fmt: skip
        scores = reranker.predict(pairs)
        limit = torch._dynamo.config.recompile_limit
    graphs = counters["stats"]["unique_graphs"]
    print(f"compiled ({'static' if fixed_shapes else 'dynamic'}): max |compiled - eager| "
          f"{np.abs(scores - eager).max():.2e}, {graphs} graphs, {len(set(shapes))} batch shapes")  # fmt: skip
    assert isinstance(scorer.model, torch._dynamo.eval_frame.OptimizedModule)
    np.testing.assert_allclose(scores, eager, rtol=0, atol=1e-5)
    assert_same_rankings(scores, eager)
    if fixed_shapes:
        assert graphs == len(set(shapes)) > 2  # one static graph a shape
        assert len(set(shapes)) <= fixed_shape_count(scorer.encoder.longest_pair, 32, 32) <= limit
    else:
        assert graphs <= 2 < len(set(shapes))  # one graph for all shapes, with a mask and without
