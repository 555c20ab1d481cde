"""The SQLite store of wanted passages that the prepare stage and the teacher-triples import share."""

import pytest
from tqdm import tqdm

from reranker.io.corpus import Passage
from reranker.io.errors import InputError
from reranker.io.passage_store import add_wanted, copy_wanted_passages, open_passage_store, passage_texts


def corpus(n):
    return [(line, Passage(f"p{line}", "" if line % 2 else f"T{line}", f"text {line}")) for line in range(1, n + 1)]


def test_only_wanted_passages_are_copied_batch_after_batch_through_a_progress_bar(tmp_path):
    db = open_passage_store(tmp_path / "s.sqlite", durable=False)
    add_wanted(db, ["p3", "p998", "p3", "p7", "absent"])
    batches = []
    copy_wanted_passages(db, tqdm(corpus(1000), disable=True), "c.tsv", 300, batches.append)
    assert batches == [300, 300, 300, 100]  # every passage read once, none lost between batches
    assert db.execute("SELECT COUNT(*) FROM passages").fetchone() == (3,)
    wanted = [f"p{i}" for i in range(1, 1200)]  # more ids than one statement takes
    assert passage_texts(db, wanted) == {"p3": ("", "text 3"), "p7": ("", "text 7"), "p998": ("T998", "text 998")}


@pytest.mark.parametrize("batch", [2, 100])  # the repeat in the same batch as the first, or in a later one
def test_a_wanted_id_twice_in_the_corpus_is_an_error_naming_the_second_line(tmp_path, batch):
    db = open_passage_store(tmp_path / "s.sqlite", durable=False)
    add_wanted(db, ["p2"])
    rows = corpus(4) + [(5, Passage("p1", "", "unwanted twice is fine")), (6, Passage("p2", "", "again"))]
    with pytest.raises(InputError, match=r"c\.tsv:6: duplicate passage id 'p2'"):
        copy_wanted_passages(db, rows, "c.tsv", batch)
