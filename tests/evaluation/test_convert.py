import pytest

from reranker.evaluation.convert import convert_scores
from reranker.io.errors import InputError


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
