"""`Reranker`: the same scores as the command line, for pairs, rankings and whole files."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from reranker import Reranker
from reranker.cli.infer import main as infer_main
from reranker.inference.scoring import CPU_KERNEL_CACHES
from reranker.io.errors import ParameterError
from reranker.io.rerank_input import iter_query_blocks
from reranker.io.summary import read_summary
from reranker.model.precision import cpu_supports_bf16
from tests.conftest import write_bm25_rerank_file


@pytest.fixture(scope="module")
def dev200(tmp_path_factory, offline_data):
    """200 real dev600 pairs: the BM25 top 20 of the first 10 queries, as a rerank input file."""
    path = write_bm25_rerank_file(offline_data, tmp_path_factory.mktemp("dev200") / "dev200.rerank.jsonl", 10)
    return path


def cli_scores(model_dir, rerank_file, output, *flags) -> dict[tuple[str, str], np.float32]:
    assert infer_main(["--model_name_or_path", str(model_dir), "--encode_in_path", str(rerank_file),
                       "--encoded_save_path", str(output), *flags]) == 0  # fmt: skip
    rows = (line.split("\t") for line in output.read_text().splitlines())
    return {(qid, docid): np.float32(score) for qid, docid, score in rows}


PRECISIONS = ["fp32", pytest.param("bf16", marks=pytest.mark.skipif(not cpu_supports_bf16(), reason="no native bf16"))]


@pytest.mark.slow
@pytest.mark.parametrize("precision", PRECISIONS)
def test_predict_gives_the_numbers_the_cli_writes(minilm_cross_encoder_dir, dev200, tmp_path, precision):
    flags = ["--bf16"] if precision == "bf16" else []
    expected = cli_scores(minilm_cross_encoder_dir, dev200, tmp_path / "cli.txt", *flags)
    candidates = [c for block in iter_query_blocks(dev200) for c in block.candidates]
    assert len(candidates) == 200
    reranker = Reranker.from_pretrained(str(minilm_cross_encoder_dir), precision=precision)
    scores = reranker.predict([(c.query, c.title, c.text) for c in candidates])
    assert scores.dtype == np.float32 and scores.shape == (200,)
    assert scores.tolist() == [expected[c.query_id, c.docid] for c in candidates]  # exact, as read back
    assert len(set(scores.tolist())) > 190  # real, distinct scores, not a constant


def test_calling_forms_agree(tiny_model_dir):
    reranker = Reranker.from_pretrained(str(tiny_model_dir))
    query = "what is the capital of france"
    passages = ["Paris is the capital of France.", ("Berlin", "Berlin is the capital of Germany."), "cats purr"]
    triples = [(query, "", passages[0]), (query, *passages[1]), (query, "", passages[2])]
    as_pairs = reranker.predict([(query, passages[0]), triples[1], (query, passages[2])])
    assert as_pairs.tolist() == reranker.predict(triples).tolist()
    assert as_pairs.tolist() == reranker.predict(query, passages).tolist()
    assert as_pairs.tolist() == reranker.predict([query] * 3, passages).tolist()
    assert reranker.predict([]).shape == (0,)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda r: r.predict("a query"), "pairs must be a list of"),
        (lambda r: r.predict([("q", "p", "t", "x")]), r"pairs\[0\] must be \(query, passage\) or"),
        (lambda r: r.predict([("q", "p"), ("q", 3)]), r"pairs\[1\] must hold strings"),
        (lambda r: r.predict(["q1", "q2"], ["p"]), "queries and passages differ in length: 2 and 1"),
        (lambda r: r.rank("q", ["p"], top_k=0), "top_k must be >= 1, got 0"),
    ],
)
def test_bad_calls_name_the_parameter(tiny_model_dir, call, message):
    with pytest.raises(ParameterError, match=message):
        call(Reranker.from_pretrained(str(tiny_model_dir)))


class TokenCount(torch.nn.Module):
    """Scores a pair by its number of tokens: deterministic, with ties."""

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        return type("Output", (), {"logits": mask.sum(dim=1, keepdim=True).float()})()


def test_rank_orders_by_score_with_ties_in_input_order(tokenizer):
    reranker = Reranker(TokenCount(), tokenizer)
    passages = ["one two", "one", "one two three", "four five", ("title", "x")]  # 2 1 3 2 2 tokens
    ranking = reranker.rank("q", passages)
    assert [index for index, _ in ranking] == [2, 0, 3, 4, 1]
    assert [score for _, score in ranking] == [7.0, 6.0, 6.0, 6.0, 5.0]  # [CLS] q [SEP] p [SEP]: 4 + passage
    assert reranker.rank("q", passages, top_k=2) == ranking[:2]


@pytest.mark.slow
def test_rerank_file_is_the_cli(tiny_model_dir, dev200, tmp_path):
    cli_scores(tiny_model_dir, dev200, tmp_path / "cli.txt", "--chunk_size", "70")
    reranker = Reranker.from_pretrained(str(tiny_model_dir))
    stats = reranker.rerank_file(dev200, tmp_path / "api.txt", chunk_size=70, show_progress=False)
    assert (stats.queries, stats.candidates) == (10, 200)
    assert (tmp_path / "api.txt").read_bytes() == (tmp_path / "cli.txt").read_bytes()
    summary = read_summary(tmp_path / "api.txt")
    assert summary["stage"] == "inference" and summary["candidates"] == 200
    assert summary["job"] == read_summary(tmp_path / "cli.txt")["job"]  # the same job: the CLI would resume it
    again = reranker.rerank_file(dev200, tmp_path / "api.txt", chunk_size=70, show_progress=False)
    assert (again.candidates, again.seconds) == (200, 0.0)  # already complete: nothing scored


def test_in_memory_models_are_fingerprinted_by_their_weights(tiny_model_dir, dev200, tmp_path):
    from reranker.model.loading import load_cross_encoder, load_tokenizer

    model, tokenizer = load_cross_encoder(str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir))
    Reranker(model, tokenizer).rerank_file(dev200, tmp_path / "out.txt", show_progress=False)
    first = read_summary(tmp_path / "out.txt")["job"]
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    Reranker(model, tokenizer).rerank_file(dev200, tmp_path / "out.txt", show_progress=False)
    assert read_summary(tmp_path / "out.txt")["job"] != first  # changed weights: scored again, not skipped


def test_loading_errors_name_the_parameter(tiny_model_dir, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(tiny_model_dir, bare)
    for name in os.listdir(bare):
        if name.startswith(("tokenizer", "vocab", "special_tokens")):
            (bare / name).unlink()
    with pytest.raises(ParameterError, match=r"cannot load a tokenizer: the folder has none \(give tokenizer\)"):
        Reranker.from_pretrained(str(bare))
    assert Reranker.from_pretrained(str(bare), tokenizer=str(tiny_model_dir)).predict([("q", "p")]).shape == (1,)
    with pytest.raises(ParameterError, match="precision must be one of fp32, bf16, fp16, got 'fp8'"):
        Reranker.from_pretrained("no/such/model", precision="fp8")  # checked before anything is loaded
    with pytest.raises(ParameterError, match="q_max_len must be >= 1, got 0"):
        Reranker.from_pretrained("no/such/model", q_max_len=0)
    with pytest.raises(ParameterError, match="max_tokens_per_batch must hold at least one pair"):
        Reranker.from_pretrained("no/such/model", max_tokens_per_batch=100)


def test_loading_caps_the_cpu_kernel_caches_unless_the_user_set_them(monkeypatch, tiny_model_dir):
    for name in CPU_KERNEL_CACHES:
        monkeypatch.setenv(name, "unset")  # so that the teardown restores whatever was there before
        monkeypatch.delenv(name)
    monkeypatch.setenv("LRU_CACHE_CAPACITY", "8")
    Reranker.from_pretrained(str(tiny_model_dir))
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "16"
    assert os.environ["LRU_CACHE_CAPACITY"] == "8"
