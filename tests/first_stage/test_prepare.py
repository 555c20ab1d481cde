import gzip
import json
import tracemalloc

import pytest

from reranker.first_stage import prepare
from reranker.first_stage.prepare import join_run_with_texts, prepare_rerank_file
from reranker.io.corpus import load_passages
from reranker.io.errors import InputError
from reranker.io.queries import read_queries
from reranker.io.runs import iter_run, read_run

CORPUS = [
    {"docid": "d1", "title": "", "text": "first passage"},
    {"docid": "d2", "title": "Title", "text": "second passage"},
    {"docid": "d3", "title": "", "text": "third passage"},
    {"docid": "d4", "title": "", "text": "never retrieved"},
]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "queries.tsv").write_text("q1\tfirst query\nq2\tsecond query\n")
    (tmp_path / "queries.jsonl").write_text('{"query_id": "q1", "query": "first query"}\n')
    with gzip.open(tmp_path / "corpus.jsonl.gz", "wt") as out:
        out.writelines(json.dumps(p) + "\n" for p in CORPUS)
    (tmp_path / "collection.tsv").write_text("d1\tfirst passage\nd2\tsecond passage\nd3\tthird passage\n")
    (tmp_path / "run.trec").write_text(
        "q2 Q0 d3 1 5.5 bm25\nq2 Q0 d1 2 4 bm25\nq1 Q0 d2 1 7 bm25\nq1 Q0 d1 2 6 bm25\n"
    )
    return tmp_path


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_query_files(files):
    assert read_queries(str(files / "queries.tsv")) == {"q1": "first query", "q2": "second query"}
    assert read_queries(str(files / "queries.jsonl")) == {"q1": "first query"}


def test_only_wanted_passages_are_kept(files):
    passages = load_passages(str(files / "corpus.jsonl.gz"), {"d2", "d3"})
    assert sorted(passages) == ["d2", "d3"] and passages["d2"].title == "Title"
    assert load_passages(str(files / "collection.tsv"), {"d1"})["d1"].text == "first passage"


def test_rerank_file_in_run_order_with_texts(files):
    out = files / "rerank.jsonl"
    run = read_run(files / "run.trec")
    stats = join_run_with_texts(
        read_queries(str(files / "queries.tsv")), run, "run.trec", str(files / "corpus.jsonl.gz"), str(out)
    )
    assert (stats.queries, stats.candidates, stats.skipped_missing) == (2, 4, 0)
    assert out.read_text().splitlines()[0] == (
        '{"query_id": "q2", "query": "second query", "docid": "d3", "title": "", '
        '"text": "third passage", "score": 5.5}'
    )
    assert [(r["query_id"], r["docid"], r["title"], r["score"]) for r in lines(out)] == [
        ("q2", "d3", "", 5.5), ("q2", "d1", "", 4.0), ("q1", "d2", "Title", 7.0), ("q1", "d1", "", 6.0),
    ]  # fmt: skip


def test_depth_and_tsv_corpus(files):
    out = files / "rerank.jsonl"
    run = read_run(files / "run.trec", depth=1)
    join_run_with_texts(read_queries(str(files / "queries.tsv")), run, "run", str(files / "collection.tsv"), str(out))
    assert [(r["query_id"], r["docid"], r["text"]) for r in lines(out)] == [
        ("q2", "d3", "third passage"), ("q1", "d2", "second passage"),
    ]  # fmt: skip


def test_missing_query_and_passage_are_errors_and_leave_no_file(files):
    out = files / "rerank.jsonl"
    run = read_run(files / "run.trec")
    with pytest.raises(InputError, match=r"run\.trec:1: query 'q2' is not in the query set"):
        join_run_with_texts({"q1": "first query"}, run, "run.trec", str(files / "corpus.jsonl.gz"), str(out))
    (files / "run2.trec").write_text("q1 Q0 d2 1 7 bm25\nq1 Q0 d9 2 6 bm25\n")
    run2 = read_run(files / "run2.trec")
    queries = read_queries(str(files / "queries.tsv"))
    with pytest.raises(InputError, match=r"run2\.trec:2: passage 'd9' is not in the corpus"):
        join_run_with_texts(queries, run2, "run2.trec", str(files / "corpus.jsonl.gz"), str(out))
    assert not out.exists() and list(files.glob(".rerank.jsonl*")) == []
    stats = join_run_with_texts(
        queries, run2, "run2.trec", str(files / "corpus.jsonl.gz"), str(out), skip_missing=True
    )
    assert (stats.candidates, stats.skipped_missing) == (1, 1)
    assert [r["docid"] for r in lines(out)] == ["d2"]


def test_beir_and_repeated_rank_runs_are_prepared_in_trec_eval_order(tied_rank_run, beir_folder, tmp_path):
    """Rank 0 on every line (BEIR's runs) or repeated ranks: each query's best 2 by score, ties by docid descending."""
    out = tmp_path / "rerank.jsonl"
    stats = prepare_rerank_file(
        str(beir_folder / "queries.jsonl"), str(beir_folder / "corpus.jsonl"), str(tied_rank_run), str(out), depth=2
    )
    assert (stats.queries, stats.candidates, stats.skipped_missing) == (2, 4, 0)
    rows = lines(out)
    assert [(r["query_id"], r["docid"]) for r in rows] == [("q1", "d3"), ("q1", "d2"), ("q2", "d5"), ("q2", "d4")]
    assert {r["query"] for r in rows[:2]} == {"what is in a lobster roll sandwich"}
    assert [(r["docid"], r["title"]) for r in rows[:2]] == [("d3", "Bread"), ("d2", "Lobsters")]


def test_the_join_holds_neither_the_run_nor_the_passages(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "PASSAGE_BATCH", 500)  # what it holds of the corpus: one batch
    peaks = []
    for queries in (20, 200):
        folder = tmp_path / str(queries)
        folder.mkdir()
        (folder / "collection.tsv").write_text("".join(f"p{i}\tpassage number {i} " + "word " * 40 + "\n"
                                                       for i in range(queries * 100)))  # fmt: skip
        (folder / "run.trec").write_text("".join(f"q{q} Q0 p{q * 100 + r} {r + 1} {-r} t\n"
                                                 for q in range(queries) for r in range(100)))  # fmt: skip
        queries_text = {f"q{q}": f"query {q}" for q in range(queries)}
        tracemalloc.start()
        stats = join_run_with_texts(queries_text, iter_run(folder / "run.trec"), "run.trec",
                                    str(folder / "collection.tsv"), str(folder / "rerank.jsonl"))  # fmt: skip
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert (stats.queries, stats.candidates) == (queries, queries * 100)
    assert lines(tmp_path / "200" / "rerank.jsonl")[-1]["text"].startswith("passage number 19999 ")
    assert peaks[1] < 1.5 * peaks[0], peaks  # 10x the run and the corpus, about the same peak


def test_scores_are_written_as_the_run_gives_them_negative_zero_included(files):
    (files / "zero.trec").write_text("q1 Q0 d2 1 -0.0 t\nq1 Q0 d1 2 -1.5 t\n")
    out = files / "rerank.jsonl"
    join_run_with_texts({"q1": "first query"}, iter_run(files / "zero.trec"), "zero.trec",
                        str(files / "collection.tsv"), str(out))  # fmt: skip
    assert [line.rsplit('"score": ', 1)[1] for line in out.read_text().splitlines()] == ["-0.0}", "-1.5}"]


LONG = {"docid": "L", "title": "Lobster", "text": "one two three four five six seven"}


@pytest.fixture
def long_files(files):
    with gzip.open(files / "corpus.jsonl.gz", "wt") as out:
        out.writelines(json.dumps(p) + "\n" for p in [*CORPUS, LONG])
    (files / "long.trec").write_text("q1 Q0 L 1 7 bm25\nq1 Q0 d1 2 6 bm25\n")
    return files


def prepare_cli(files, *flags, run="long.trec"):
    from reranker.cli.prepare import main

    return main(["--query_data_name", str(files / "queries.tsv"), "--corpus", str(files / "corpus.jsonl.gz"),
                 "--retrieval", str(files / run), "--output_path", str(files / "w.jsonl"), *flags])  # fmt: skip


def test_windows_a_line_each_with_the_window_index_title_on_the_first(long_files):
    assert prepare_cli(long_files, "--window_tokens", "3", "--window_stride", "2") == 0
    rows = lines(long_files / "w.jsonl")
    assert [(r["docid"], r["title"], r["text"], r["score"]) for r in rows] == [
        ("L#0", "Lobster", "one two three ", 7.0), ("L#1", "", "three four five ", 7.0),
        ("L#2", "", "five six seven", 7.0), ("d1#0", "", "first passage", 6.0),  # a document that fits: one window
    ]  # fmt: skip
    summary = json.loads((long_files / "w.jsonl.summary.json").read_text())
    assert (summary["candidates"], summary["windows"]) == (2, 4)
    assert prepare_cli(long_files, "--window_tokens", "3", "--window_prepend_title") == 0
    rows = lines(long_files / "w.jsonl")
    assert [(r["docid"], r["title"], r["text"]) for r in rows[:3]] == [
        ("L#0", "Lobster", "one two three "), ("L#1", "Lobster", "four five six "), ("L#2", "Lobster", "seven")
    ]  # fmt: skip
    assert "".join(r["text"] for r in rows[:3]) == LONG["text"]


def test_token_windows_count_the_models_tokens(long_files, minilm_path):
    assert prepare_cli(long_files, "--window_tokens", "4", "--tokenizer_name", str(minilm_path)) == 0
    assert [r["text"] for r in lines(long_files / "w.jsonl")][:2] == ["one two three four ", "five six seven"]
    (long_files / "long.trec").write_text("q1 Q0 d2 1 7 bm25\n")
    assert prepare_cli(long_files, "--window_tokens", "1", "--tokenizer_name", str(minilm_path)) == 0
    rows = lines(long_files / "w.jsonl")
    assert [(r["docid"], r["text"]) for r in rows] == [("d2#0", "second "), ("d2#1", "passage")]


def test_without_window_flags_the_output_is_unchanged(long_files):
    assert prepare_cli(long_files) == 0
    assert [(r["docid"], r["text"]) for r in lines(long_files / "w.jsonl")] == [("L", LONG["text"]),
                                                                               ("d1", "first passage")]  # fmt: skip


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--window_tokens", "4", "--window_stride", "5"],
         "--window_stride (5) must not be larger than --window_tokens (4): the units between windows would never be "
         "scored"),
        (["--window_tokens", "0"], "--window_tokens must be >= 1, got 0"),
        (["--window_tokens", "600", "--tokenizer_name", "MINILM"], "--window_tokens (600) does not fit the model: "
         "512 tokens hold the query (0) and the special tokens, leaving 509"),
        (["--window_stride", "2"], "--window_stride needs --window_tokens"),
        (["--window_tokens", "4", "--window_sentences", "2"], "give --window_tokens or --window_sentences, not both"),
        (["--tokenizer_name", "MINILM"], "--window_prepend_title and --tokenizer_name need --window_tokens"),
        (["--window_sentences", "2", "--tokenizer_name", "MINILM"], "--tokenizer_name counts tokens for "
         "--window_tokens, not for --window_sentences"),
        (["--window_sentences", "2", "--window_stride_sentences", "3"], "--window_stride_sentences (3) must not be "
         "larger than --window_sentences (2): the units between windows would never be scored"),
    ],
)  # fmt: skip
def test_bad_window_flags_are_one_line_and_no_output(long_files, minilm_path, capsys, flags, message):
    flags = [str(minilm_path) if flag == "MINILM" else flag for flag in flags]
    assert prepare_cli(long_files, *flags) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (long_files / "w.jsonl").exists()


def test_a_run_in_any_order_is_prepared_as_its_grouped_copy(files):
    """trec_eval and the reference's prepare read a run in any order: the queries interleaved are grouped, each in
    the order of its first line."""
    grouped = lines(files / "w.jsonl") if prepare_cli(files, run="run.trec") == 0 else None
    (files / "mixed.trec").write_text("q2 Q0 d3 1 5.5 bm25\nq1 Q0 d2 1 7 bm25\nq2 Q0 d1 2 4 bm25\nq1 Q0 d1 2 6 bm25\n")
    assert prepare_cli(files, run="mixed.trec") == 0
    assert lines(files / "w.jsonl") == grouped
    (files / "dup.trec").write_text("q2 Q0 d3 1 5.5 bm25\nq1 Q0 d2 1 7 bm25\nq2 Q0 d3 2 4 bm25\n")
    with pytest.raises(InputError, match=r"dup\.trec:3: duplicate candidate 'd3' for query 'q2'"):
        prepare_rerank_file({"q1": "a", "q2": "b"}, str(files / "corpus.jsonl.gz"), str(files / "dup.trec"),
                            str(files / "x.jsonl"))  # fmt: skip
    (files / "missing.trec").write_text("q2 Q0 d3 1 5.5 bm25\nq1 Q0 d2 1 7 bm25\nq2 Q0 d9 2 4 bm25\n")
    with pytest.raises(InputError, match=r"missing\.trec:3: passage 'd9' is not in the corpus"):
        prepare_rerank_file({"q1": "a", "q2": "b"}, str(files / "corpus.jsonl.gz"), str(files / "missing.trec"),
                            str(files / "x.jsonl"))  # fmt: skip
    assert not (files / "x.jsonl").exists()


def test_sentence_windows_with_the_title_on_each(files):
    doc = {"docid": "S", "title": "Maine", "text": "Lobsters live long. They moult often.  Nobody knows. The end."}
    with gzip.open(files / "corpus.jsonl.gz", "wt") as out:
        out.writelines(json.dumps(p) + "\n" for p in [*CORPUS, doc])
    (files / "s.trec").write_text("q1 Q0 S 1 7 bm25\n")
    assert prepare_cli(files, "--window_sentences", "2", "--window_stride_sentences", "1", "--window_prepend_title",
                       run="s.trec") == 0  # fmt: skip
    assert [(r["docid"], r["title"], r["text"]) for r in lines(files / "w.jsonl")] == [
        ("S#0", "Maine", "Lobsters live long. They moult often.  "),
        ("S#1", "Maine", "They moult often.  Nobody knows. "),
        ("S#2", "Maine", "Nobody knows. The end."),
    ]  # fmt: skip
