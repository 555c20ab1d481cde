import gc
import itertools
import json
from types import SimpleNamespace

import pytest
import torch

from reranker.inference.chunks import Sharding
from reranker.inference.heap import SCORING_GC_THRESHOLD
from reranker.inference.merge import merge_score_files
from reranker.inference.score_file import rerank_file
from reranker.inference.scoring import PairScorer
from reranker.io.errors import InputError, UsageError
from reranker.io.rerank_input import summarize_rerank_file
from reranker.io.resumable import partial_paths
from reranker.io.summary import read_summary, summary_path
from reranker.model.pair_encoding import PairEncoder


class LengthModel(torch.nn.Module):
    """Scores a pair by its number of tokens: deterministic, with ties."""

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return SimpleNamespace(logits=attention_mask.sum(dim=1, keepdim=True).float())


def write_rerank(path, queries):
    with open(path, "w") as out:
        for qid, texts in queries:
            for i, text in enumerate(texts):
                record = {"query_id": qid, "query": f"query {qid}", "docid": f"{qid}-{i}", "title": "", "text": text}
                out.write(json.dumps({**record, "score": float(-i)}) + "\n")


@pytest.fixture
def scorer(tokenizer):
    return PairScorer(LengthModel(), PairEncoder(tokenizer, 16, 128), torch.device("cpu"), batch_size=2)


QUERIES = [
    ("a", ["one", "one two three", "one two", "four five"]),  # token counts 1, 3, 2, 2 -> "one two" ties "four five"
    ("b", ["x y", "x"]),
    ("c", ["p q r s", "p", "p q"]),
]


def test_scores_sorted_descending_ties_in_input_order(tmp_path, scorer):
    write_rerank(tmp_path / "in.jsonl", QUERIES)
    progress = rerank_file(scorer, str(tmp_path / "in.jsonl"), str(tmp_path / "out.txt"), chunk_size=3)
    assert (progress.queries, progress.candidates) == (3, 9)
    # length of "[CLS] query a [SEP] ... [SEP]" = 5 + passage tokens
    assert (tmp_path / "out.txt").read_text().splitlines() == [
        "a\ta-1\t8.0", "a\ta-2\t7.0", "a\ta-3\t7.0", "a\ta-0\t6.0",
        "b\tb-0\t7.0", "b\tb-1\t6.0",
        "c\tc-0\t9.0", "c\tc-2\t7.0", "c\tc-1\t6.0",
    ]  # fmt: skip
    assert not any(path.exists() for path in partial_paths(tmp_path / "out.txt"))


def test_sharding_deals_out_chunks():
    assert [c for c in range(8) if Sharding(((2, 1),)).owns(c)] == [1, 3, 5, 7]
    # shard 1 of 2, then rank 0 of 2 within it: chunks 1, 5 (every other chunk of that shard)
    assert [c for c in range(8) if Sharding(((2, 1), (2, 0))).owns(c)] == [1, 5]
    assert all(Sharding().owns(c) for c in range(3))


@pytest.mark.parametrize("num_shards", [2, 3, 5])
def test_shards_merge_into_the_single_process_file(tmp_path, scorer, num_shards):
    write_rerank(tmp_path / "in.jsonl", QUERIES)
    rerank_file(scorer, str(tmp_path / "in.jsonl"), str(tmp_path / "full.txt"), chunk_size=3)
    shards = [tmp_path / f"s{i}.txt" for i in range(num_shards)]
    for i, shard in enumerate(shards):
        rerank_file(
            scorer, str(tmp_path / "in.jsonl"), str(shard), chunk_size=3, sharding=Sharding(((num_shards, i),))
        )
    # chunks of >= 3 pairs: [a] [b c]; shard 0 has [a], shard 1 [b c], the rest nothing
    assert {line.split("\t")[0] for line in shards[1].read_text().splitlines()} == {"b", "c"}
    assert merge_score_files(shards, tmp_path / "merged.txt") == (3, 9)
    assert (tmp_path / "merged.txt").read_bytes() == (tmp_path / "full.txt").read_bytes()
    assert read_summary(tmp_path / "merged.txt")["fingerprint"] == read_summary(tmp_path / "full.txt")["fingerprint"]


def test_merge_checks_shards(tmp_path, scorer):
    write_rerank(tmp_path / "in.jsonl", QUERIES * 1)
    shards = [tmp_path / f"s{i}.txt" for i in range(2)]
    for i, shard in enumerate(shards):
        rerank_file(scorer, str(tmp_path / "in.jsonl"), str(shard), chunk_size=2, sharding=Sharding(((2, i),)))
    with pytest.raises(InputError, match="expected \\[\\(2, 0\\)\\]: give each shard once, in order"):
        merge_score_files(shards[::-1], tmp_path / "m.txt")
    with pytest.raises(InputError, match="expected \\[\\(1, 0\\)\\]"):
        merge_score_files(shards[:1], tmp_path / "m.txt")
    for shard in shards:
        summary_path(shard).unlink()
    with pytest.raises(UsageError, match="give chunk_size"):
        merge_score_files(shards, tmp_path / "m.txt")
    assert merge_score_files(shards, tmp_path / "m.txt", chunk_size=2) == (3, 9)
    with pytest.raises(InputError, match="query 'a' is in more than one shard"):
        merge_score_files([shards[0], shards[0]], tmp_path / "m2.txt", chunk_size=2)
    with pytest.raises(InputError, match="shard ended early"):
        merge_score_files([shards[1], shards[0]], tmp_path / "m2.txt", chunk_size=2)
    assert not (tmp_path / "m2.txt").exists()


def killed_at_call(function, call: int):
    """`function`, but its `call`-th call raises KeyboardInterrupt, as a kill stops a run there."""
    calls = itertools.count(1)

    def wrapped(*args):
        if next(calls) == call:
            raise KeyboardInterrupt("killed")
        return function(*args)

    return wrapped


def test_resume_after_a_crash_gives_identical_output(tmp_path, scorer, monkeypatch):
    write_rerank(tmp_path / "in.jsonl", QUERIES)
    rerank_file(scorer, str(tmp_path / "in.jsonl"), str(tmp_path / "clean.txt"), chunk_size=3)
    real = scorer.submit
    monkeypatch.setattr(scorer, "submit", killed_at_call(real, 2))
    out = tmp_path / "out.txt"
    with pytest.raises(KeyboardInterrupt):
        rerank_file(scorer, str(tmp_path / "in.jsonl"), str(out), chunk_size=3)
    partial, progress = partial_paths(out)
    assert not out.exists() and partial.exists()
    assert json.loads(progress.read_text())["candidates"] == 4  # query a done
    monkeypatch.setattr(scorer, "submit", real)
    resumed = rerank_file(scorer, str(tmp_path / "in.jsonl"), str(out), chunk_size=3)
    assert resumed.candidates == 9
    assert out.read_bytes() == (tmp_path / "clean.txt").read_bytes()


def test_scoring_collects_garbage_rarely_and_restores_the_collector_after(tmp_path, scorer, monkeypatch):
    write_rerank(tmp_path / "in.jsonl", QUERIES)
    before, seen = gc.get_threshold(), []
    real = scorer.submit

    def record_threshold(*args):
        seen.append(gc.get_threshold())
        if len(seen) == 2:
            raise KeyboardInterrupt("killed")
        return real(*args)

    monkeypatch.setattr(scorer, "submit", record_threshold)
    with pytest.raises(KeyboardInterrupt):
        rerank_file(scorer, str(tmp_path / "in.jsonl"), str(tmp_path / "out.txt"), chunk_size=3)
    assert seen == [(SCORING_GC_THRESHOLD, *before[1:])] * 2
    assert gc.get_threshold() == before


def rec(qid="1", docid="d", **fields):
    return json.dumps({"query_id": qid, "query": "q", "docid": docid, "text": "t", **fields})


@pytest.mark.parametrize(
    "lines, message",
    [
        ([rec(), '{"query_id": "2", "query": "q", "docid": "d"}'], r"in\.jsonl:2: missing field 'text'"),
        ([rec(), rec(text="u")], r"in\.jsonl:2: duplicate candidate 'd' for query '1'"),
        ([rec(), rec("2"), rec("1", "e")], r"in\.jsonl:3: query '1' appears again"),
        ([rec(query_id=1)], r"in\.jsonl:1: field 'query_id' must be a string"),
        ([rec(query="  ")], r"in\.jsonl:1: field 'query' is empty"),
        ([rec(), rec("1", "e", query="other")], r"in\.jsonl:2: query '1' has a different text"),
        (["{not json"], r"in\.jsonl:1: malformed JSON"),
    ],
)
def test_bad_rerank_input_fails_before_any_output(tmp_path, scorer, lines, message):
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=message):
        rerank_file(scorer, str(tmp_path / "in.jsonl"), str(tmp_path / "out.txt"))
    assert not (tmp_path / "out.txt").exists()


def test_summary_counts(tmp_path):
    write_rerank(tmp_path / "in.jsonl", QUERIES)
    summary = summarize_rerank_file(tmp_path / "in.jsonl")
    assert (summary.queries, summary.candidates, summary.min_depth, summary.max_depth) == (3, 9, 2, 4)
