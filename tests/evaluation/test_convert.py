import pytest

from reranker.cli.convert import main as convert
from reranker.evaluation.convert import convert_scores
from reranker.io.errors import InputError
from reranker.io.runs import read_run, trec_eval_order


def test_marco_output_sorted_by_score_ties_in_input_order(tmp_path):
    scores = tmp_path / "scores.txt"
    scores.write_text("9\ta\t0.5\n9\tb\t2.5\n9\tc\t0.5\n9\td\t-1\n3\tx\t1\n")
    stats = convert_scores(str(scores), str(tmp_path / "run.marco"))
    assert (stats.queries, stats.lines) == (2, 5)
    assert (tmp_path / "run.marco").read_text() == "9\tb\t1\n9\ta\t2\n9\tc\t3\n9\td\t4\n3\tx\t1\n"


def test_trec_output(tmp_path):
    scores = tmp_path / "scores.txt"
    scores.write_text("9\ta\t0.5\n9\tb\t2.5\n")
    convert_scores(str(scores), str(tmp_path / "run.trec"), "trec", tag="mono")
    assert (tmp_path / "run.trec").read_text() == "9 Q0 b 1 2.5 mono\n9 Q0 a 2 0.5 mono\n"


def test_split_query_block_is_an_error_and_writes_nothing(tmp_path):
    scores = tmp_path / "scores.txt"
    scores.write_text("9\ta\t0.5\n3\tx\t1\n9\tb\t2.5\n")
    with pytest.raises(InputError, match=r"scores\.txt:3: query '9' appears again"):
        convert_scores(str(scores), str(tmp_path / "run.marco"))
    assert not (tmp_path / "run.marco").exists()


def test_trec_ties_are_written_in_trec_evals_order_so_it_reads_our_ranks(tmp_path):
    """trec_eval re-sorts a query by score, ties by docid descending, whatever the rank column says: ties written
    in that order are read with the ranks written (a marco run keeps ties in input order: its ranks are read)."""
    scores = tmp_path / "scores.txt"
    scores.write_text("9\ta\t0.5\n9\tc\t0.5\n9\tb\t0.5\n9\td\t2\n")
    convert_scores(str(scores), str(tmp_path / "run.trec"), "trec", tag="t")
    assert (tmp_path / "run.trec").read_text() == ("9 Q0 d 1 2.0 t\n9 Q0 c 2 0.5 t\n9 Q0 b 3 0.5 t\n9 Q0 a 4 0.5 t\n")
    run = read_run(tmp_path / "run.trec")["9"]
    assert [(e.docid, e.rank) for e in run] == [(e.docid, e.rank) for e in trec_eval_order(run)]
    convert_scores(str(scores), str(tmp_path / "run.marco"))
    assert (tmp_path / "run.marco").read_text() == "9\td\t1\n9\ta\t2\n9\tc\t3\n9\tb\t4\n"


WINDOW_SCORES = "1\ta#2\t3.5\n1\tb#0\t2\n1\tc#1\t1.25\n1\ta#0\t1\n1\tb#1\t0.5\n1\tc#0\t-1\n1\ta#1\t-2\n2\tz#0\t1\n"


@pytest.mark.parametrize(
    "aggregate, marco",
    [
        ("firstp", "1\tb\t1\n1\ta\t2\n1\tc\t3\n"),  # a 1, b 2, c -1
        ("maxp", "1\ta\t1\n1\tb\t2\n1\tc\t3\n"),  # a 3.5, b 2, c 1.25
        ("sump", "1\ta\t1\n1\tb\t2\n1\tc\t3\n"),  # a 2.5, b 2.5, c 0.25: a and b tie, a's window came first
        ("meanp", "1\tb\t1\n1\ta\t2\n1\tc\t3\n"),  # a 0.833, b 1.25, c 0.125
        ("kmaxavg:2", "1\ta\t1\n1\tb\t2\n1\tc\t3\n"),  # a 2.25, b 1.25, c 0.125
    ],
)
def test_window_scores_aggregated_per_document(tmp_path, aggregate, marco):
    scores = tmp_path / "scores.txt"
    scores.write_text(WINDOW_SCORES)
    assert convert(["--input", str(scores), "--output", str(tmp_path / "run"), "--aggregate", aggregate]) == 0
    assert (tmp_path / "run").read_text() == marco + "2\tz\t1\n"


def test_aggregated_trec_scores_are_the_aggregates(tmp_path):
    scores = tmp_path / "scores.txt"
    scores.write_text(WINDOW_SCORES)
    convert_scores(str(scores), str(tmp_path / "run.trec"), "trec", tag="t", aggregate="meanp")
    assert (tmp_path / "run.trec").read_text().splitlines()[:3] == [
        "1 Q0 b 1 1.25 t", "1 Q0 a 2 0.8333333 t", "1 Q0 c 3 0.125 t"
    ]  # fmt: skip


@pytest.mark.parametrize(
    "text, flags, message",
    [
        (WINDOW_SCORES, ["--aggregate", "max"], "--aggregate must be one of firstp, maxp, sump, meanp, kmaxavg:K "
         "(K >= 1), got 'max'"),
        (WINDOW_SCORES, ["--aggregate", "kmaxavg:0"], "--aggregate must be one of firstp, maxp, sump, meanp, "
         "kmaxavg:K (K >= 1), got 'kmaxavg:0'"),
        ("1\ta#0\t1\n1\tb\t2\n", ["--aggregate", "maxp"], "{input}:2: 'b' is not a window id (DOCID#N): score a "
         "rerank file prepared with --window_tokens or --window_sentences"),
    ],
)  # fmt: skip
def test_bad_aggregation_is_one_line_and_no_output(tmp_path, capsys, text, flags, message):
    scores = tmp_path / "scores.txt"
    scores.write_text(text)
    assert convert(["--input", str(scores), "--output", str(tmp_path / "run"), *flags]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]  # tqdm's bar aside
    assert errors == [f"error: {message.format(input=scores)}"]
    assert list(tmp_path.iterdir()) == [scores]
