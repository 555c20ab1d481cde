import io
import itertools
import tracemalloc

import numpy as np
import pytest

from reranker.io.errors import InputError
from reranker.io.qrels import read_qrels
from reranker.io.runs import format_score, iter_run, iter_score_blocks, read_run, write_marco_lines, write_trec_lines
from tests.conftest import TREC_EVAL_ORDER


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_trec_run(tmp_path):
    run = read_run(write(tmp_path, "r.trec", "1 Q0 a 1 9.5 bm25\n1 Q0 b 2 8.25 bm25\n2 Q0 c 1 3 bm25\n"))
    assert list(run) == ["1", "2"]
    assert [(e.docid, e.rank, e.score, e.line) for e in run["1"]] == [("a", 1, 9.5, 1), ("b", 2, 8.25, 2)]


def test_three_columns_with_ranks_are_marco(tmp_path):
    run = read_run(write(tmp_path, "r.tsv", "1\ta\t1\n1\tb\t2\n2\tc\t1\n"))
    assert [(e.docid, e.rank, e.score) for e in run["1"]] == [("a", 1, -1.0), ("b", 2, -2.0)]


def test_three_columns_with_scores_are_scores(tmp_path):
    run = read_run(write(tmp_path, "r.tsv", "1 a 12.5\n1 b 3\n2 c 1\n"))
    assert [(e.docid, e.rank, e.score) for e in run["1"]] == [("a", 1, 12.5), ("b", 2, 3.0)]
    # integers that do not count 1, 2, 3 within a query are scores too
    run = read_run(write(tmp_path, "r2.tsv", "1 a 2\n1 b 1\n"))
    assert [(e.docid, e.rank, e.score) for e in run["1"]] == [("a", 1, 2.0), ("b", 2, 1.0)]


def test_depth_keeps_the_first_entries_per_query(tmp_path):
    run = read_run(write(tmp_path, "r.tsv", "1 a 1\n1 b 2\n1 c 3\n2 d 1\n"), depth=2)
    assert [e.docid for e in run["1"]] == ["a", "b"] and [e.docid for e in run["2"]] == ["d"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("1 Q0 a 1 9.5 bm25\n1 a 2\n", r"r\.txt:2: expected 6 columns like line 1, got 3"),
        ("1 a\n", r"r\.txt:1: expected 3 or 6 columns, got 2"),
        ("1 Q0 a x 9.5 bm25\n", r"r\.txt:1: rank must be an integer, got 'x'"),
        ("1 Q0 a 1 nan bm25\n", r"r\.txt:1: score must be finite"),
        ("1 a 1\n1 a 2\n", r"r\.txt:2: duplicate candidate 'a' for query '1'"),
        ("1 Q0 a 1 2 t\n1 Q0 a 2 1 t\n", r"r\.txt:2: duplicate candidate 'a' for query '1'"),
        ("", r"r\.txt: file is empty"),
    ],
)
def test_bad_runs(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        read_run(write(tmp_path, "r.txt", text))


@pytest.mark.parametrize(
    "text, message",
    [
        ("1 a 1\n1 b 1\n", r"r\.txt:2: rank 1 appears twice for query '1'"),
        ("1 a 0\n", r"r\.txt:1: rank must be >= 1, got 0"),
    ],
)
def test_marco_rank_column_is_the_order_so_it_must_be_one(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        read_run(write(tmp_path, "r.txt", text), "marco")


def test_trec_runs_without_a_usable_rank_column_are_read_as_trec_eval_reads_them(tied_rank_run):
    """BEIR's rank 0 on every line, or repeated ranks: ordered by score, ties by docid descending, ranked 1..n."""
    run = read_run(tied_rank_run)
    assert {qid: [e.docid for e in entries] for qid, entries in run.items()} == TREC_EVAL_ORDER
    assert all([e.rank for e in entries] == [1, 2, 3] for entries in run.values())
    scores = [[e.score for e in entries] for entries in run.values()]
    assert all(query == sorted(query, reverse=True) for query in scores)
    # depth keeps the best of that order, not the first lines of the file
    assert {qid: [e.docid for e in entries] for qid, entries in read_run(tied_rank_run, depth=2).items()} == {
        "q1": ["d3", "d2"], "q2": ["d5", "d4"],
    }  # fmt: skip


def test_a_trec_rank_column_is_the_order_where_it_orders_its_query(tmp_path):
    """Query 1's ranks order it (against its scores): kept. Query 2 repeats rank 1: its scores decide, as
    trec_eval's, and its ranks become 1..n."""
    text = "1 Q0 a 1 1.0 t\n1 Q0 b 3 9.0 t\n1 Q0 c 2 5 t\n2 Q0 x 1 1.0 t\n2 Q0 y 1 3.0 t\n"
    run = read_run(write(tmp_path, "r.trec", text))
    assert [(e.docid, e.rank, e.score, e.line) for e in run["1"]] == [("a", 1, 1.0, 1), ("c", 2, 5.0, 3),
                                                                        ("b", 3, 9.0, 2)]  # fmt: skip
    assert [(e.docid, e.rank, e.score) for e in run["2"]] == [("y", 1, 3.0), ("x", 2, 1.0)]


def test_writers_exact_lines():
    out = io.StringIO()
    assert write_marco_lines(out, "7", ["b", "a"]) == 2
    assert write_trec_lines(out, "7", [("b", 2.5), ("a", np.float32(0.1))], tag="x") == 2
    assert out.getvalue() == "7\tb\t1\n7\ta\t2\n7 Q0 b 1 2.5 x\n7 Q0 a 2 0.1 x\n"


def test_format_score_round_trips_float32():
    for value in [0.1, -3.14159265, 1e-8, 123456.789, 0.0]:
        text = format_score(value)
        assert np.float32(float(text)) == np.float32(value)


def test_score_blocks_must_be_contiguous(tmp_path):
    path = write(tmp_path, "s.txt", "1\ta\t0.5\n1\tb\t0.7\n2\tc\t1\n")
    assert list(iter_score_blocks(path)) == [("1", [("a", 0.5), ("b", 0.7)]), ("2", [("c", 1.0)])]
    with pytest.raises(InputError, match=r"s2\.txt:3: query '1' appears again"):
        list(iter_score_blocks(write(tmp_path, "s2.txt", "1\ta\t0.5\n2\tc\t1\n1\tb\t0.7\n")))


def test_qrels_trec_marco_and_three_columns(tmp_path):
    assert read_qrels(write(tmp_path, "q.txt", "1 0 a 1\n1 0 b 0\n2 0 c 2\n")) == {
        "1": {"a": 1, "b": 0},
        "2": {"c": 2},
    }
    assert read_qrels(write(tmp_path, "q.tsv", "1\t0\ta\t1\n")) == {"1": {"a": 1}}
    assert read_qrels(write(tmp_path, "q3.tsv", "1\ta\t1\n")) == {"1": {"a": 1}}
    with pytest.raises(InputError, match=r"q4\.txt:1: relevance must be an integer"):
        read_qrels(write(tmp_path, "q4.txt", "1 0 a yes\n"))


def test_a_run_streams_one_query_at_a_time(tmp_path):
    blocks = iter_run(write(tmp_path, "r.tsv", "1 a 1\n1 b 2\n2 c 1\n2 d 2\n3 e 1\n"))  # marco, known at line 1
    qid, entries = next(blocks)
    assert (qid, [(e.docid, e.rank, e.score) for e in entries]) == ("1", [("a", 1, -1.0), ("b", 2, -2.0)])
    assert [qid for qid, _ in blocks] == ["2", "3"]
    # the format pass reads on until a line shows a score file: here the last, so every line is a score
    scores = dict(iter_run(write(tmp_path, "s.tsv", "1 a 1\n1 b 2\n2 c 1\n2 d 3\n")))
    assert [e.score for e in scores["2"]] == [1.0, 3.0]


def test_a_run_in_any_order_is_grouped_by_query_its_checks_naming_the_lines_of_the_file(tmp_path):
    run = iter_run(write(tmp_path, "i.trec", "1 Q0 a 1 9 t\n2 Q0 b 1 9 t\n1 Q0 c 2 8 t\n3 Q0 d 1 1 t\n2 Q0 e 2 3 t\n"))
    assert [(qid, [(e.docid, e.rank, e.line) for e in entries]) for qid, entries in run] == [
        ("1", [("a", 1, 1), ("c", 2, 3)]), ("2", [("b", 1, 2), ("e", 2, 5)]), ("3", [("d", 1, 4)]),
    ]  # fmt: skip
    # three columns: the first pass tells ranks from scores per query, whatever the order
    marco = read_run(write(tmp_path, "i.tsv", "1\ta\t1\n2\tb\t1\n1\tc\t2\n"))
    assert {qid: [e.docid for e in entries] for qid, entries in marco.items()} == {"1": ["a", "c"], "2": ["b"]}
    with pytest.raises(InputError, match=r"d\.trec:4: duplicate candidate 'a' for query '1'"):
        read_run(write(tmp_path, "d.trec", "1 Q0 a 1 9 t\n2 Q0 b 1 9 t\n1 Q0 c 2 8 t\n1 Q0 a 3 1 t\n"))
    with pytest.raises(InputError, match=r"r\.trec:4: rank must be an integer"):
        read_run(write(tmp_path, "r.trec", "1 Q0 a 1 9 t\n2 Q0 b 1 9 t\n1 Q0 c 2 8 t\n1 Q0 e x 1 t\n"))


def test_grouping_a_run_on_disk_holds_one_query_not_the_run(tmp_path):
    peaks = []
    for queries in (50, 500):  # every query's lines scattered over the whole file
        lines = (f"q{q} Q0 d{r} {r} {1000 - r} t\n" for r in range(1, 101) for q in range(queries))
        path = write(tmp_path, f"{queries}.trec", "".join(lines))
        tracemalloc.start()
        blocks = iter_run(path)
        assert [(qid, len(entries)) for qid, entries in itertools.islice(blocks, 2)] == [("q0", 100), ("q1", 100)]
        assert sum(len(entries) for _, entries in blocks) == 100 * (queries - 2)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # 10x the lines (90,000 more): the peak grows by the one integer per query of the grouping's order (under 300
    # bytes for each of the 450 more queries), not by the lines, which SQLite holds on disk (its cache is bounded)
    assert peaks[1] - peaks[0] < 300 * 450, peaks


def test_streaming_a_run_holds_one_query_not_the_run(tmp_path):
    peaks = []
    for queries in (50, 500):
        lines = (f"q{q} Q0 d{r} {r} {1000 - r} t\n" for q in range(queries) for r in range(1, 201))
        path = write(tmp_path, f"{queries}.trec", "".join(lines))
        tracemalloc.start()
        assert sum(len(entries) for _, entries in iter_run(path)) == 200 * queries
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0], peaks  # 10x the lines, about the same peak
