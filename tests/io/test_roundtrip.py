"""Property-based: writing records in each file format and reading them back gives the same records."""

import io
import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reranker.io.corpus import Passage, format_passage_line, iter_corpus_file
from reranker.io.qrels import format_qrels_line, read_qrels
from reranker.io.queries import format_query_line, read_queries
from reranker.io.rerank_input import RerankCandidate, format_candidate, iter_query_blocks
from reranker.io.runs import format_score_line, iter_score_blocks, read_run, write_marco_lines, write_trec_lines
from reranker.io.textio import iter_lines
from reranker.io.train_rows import check_train_row, format_train_row

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ids = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=8)
# free text: any Unicode except the separators of the formats (tab, line breaks) and lone surrogates
text = st.text(st.characters(codec="utf-8", exclude_characters="\t\n\r"), min_size=1, max_size=40).filter(str.strip)
json_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40).filter(str.strip)
scores = st.floats(-1e6, 1e6, allow_nan=False, width=32)


def unique_by_first(items):
    return st.lists(items, min_size=1, max_size=6, unique_by=lambda x: x[0])


def save(tmp_path_factory, name, content):
    path = tmp_path_factory.mktemp("rt") / name
    path.write_text(content, encoding="utf-8")
    return path


@SETTINGS
@given(unique_by_first(st.tuples(ids, text)))
def test_queries_tsv(tmp_path_factory, rows):
    path = save(tmp_path_factory, "q.tsv", "".join(format_query_line(q, t) for q, t in rows))
    assert read_queries(str(path)) == dict(rows)


@SETTINGS
@given(unique_by_first(st.tuples(ids, json_text, json_text)))
def test_corpus_jsonl(tmp_path_factory, rows):
    passages = [Passage(*row) for row in rows]
    path = save(tmp_path_factory, "c.jsonl", "".join(map(format_passage_line, passages)))
    assert [p for _, p in iter_corpus_file(path)] == passages


@SETTINGS
@given(unique_by_first(st.tuples(ids, text)))
def test_corpus_tsv(tmp_path_factory, rows):
    path = save(tmp_path_factory, "c.tsv", "".join(f"{d}\t{t}\n" for d, t in rows))
    assert [p for _, p in iter_corpus_file(path)] == [Passage(d, "", t) for d, t in rows]


@SETTINGS
@given(
    unique_by_first(st.tuples(ids, st.lists(st.tuples(ids, scores), min_size=1, max_size=5, unique_by=lambda x: x[0])))
)
def test_runs_trec_marco_and_scores(tmp_path_factory, queries):
    trec, marco, score_file = io.StringIO(), io.StringIO(), io.StringIO()
    for qid, scored in queries:
        write_trec_lines(trec, qid, scored, tag="t")
        write_marco_lines(marco, qid, (d for d, _ in scored))
        score_file.writelines(format_score_line(qid, d, s) for d, s in scored)
    from_trec = read_run(save(tmp_path_factory, "r.trec", trec.getvalue()))
    from_marco = read_run(save(tmp_path_factory, "r.marco", marco.getvalue()))
    blocks = list(iter_score_blocks(save(tmp_path_factory, "s.txt", score_file.getvalue())))
    for qid, scored in queries:
        assert [(e.docid, e.rank, np.float32(e.score)) for e in from_trec[qid]] == [
            (d, r, np.float32(s)) for r, (d, s) in enumerate(scored, 1)
        ]
        assert [(e.docid, e.rank) for e in from_marco[qid]] == [(d, r) for r, (d, _) in enumerate(scored, 1)]
    assert [(q, [(d, np.float32(s)) for d, s in b]) for q, b in blocks] == [
        (q, [(d, np.float32(s)) for d, s in scored]) for q, scored in queries
    ]


@SETTINGS
@given(unique_by_first(st.tuples(ids, st.dictionaries(ids, st.integers(0, 3), min_size=1, max_size=4))))
def test_qrels(tmp_path_factory, queries):
    content = "".join(format_qrels_line(q, d, g) for q, judged in queries for d, g in judged.items())
    assert read_qrels(save(tmp_path_factory, "qrels.txt", content)) == dict(queries)


@SETTINGS
@given(unique_by_first(st.tuples(ids, json_text, st.lists(st.tuples(ids, json_text, json_text, scores), min_size=1,
                                                          max_size=4, unique_by=lambda x: x[0]))))  # fmt: skip
def test_rerank_jsonl(tmp_path_factory, queries):
    candidates = [RerankCandidate(q, query, d, title, body, float(s)) for q, query, cands in queries
                  for d, title, body, s in cands]  # fmt: skip
    path = save(tmp_path_factory, "r.jsonl", "".join(map(format_candidate, candidates)))
    assert [c for block in iter_query_blocks(path) for c in block.candidates] == candidates


TRAIN_PASSAGES = st.lists(st.tuples(ids, st.text(max_size=5), json_text, scores), min_size=1, max_size=3)


@SETTINGS
@given(st.lists(st.tuples(ids, json_text, st.booleans(), TRAIN_PASSAGES), min_size=1, max_size=4))
def test_train_jsonl(tmp_path_factory, rows):
    def passage(docid, title, text, score, with_score):
        return {"docid": docid, "title": title, "text": text, **({"score": score} if with_score else {})}

    records = [{"query_id": q, "query": query,
                "positive_passages": [passage(*p, with_scores) for p in passages],
                "negative_passages": [passage(*p, with_scores) for p in reversed(passages)]}
               for q, query, with_scores, passages in rows]  # fmt: skip
    path = save(tmp_path_factory, "train.jsonl", "".join(map(format_train_row, records)))
    checked = [check_train_row(json.loads(line), path, n) for n, line in iter_lines(path)]
    for record in records:  # every passage comes back with a score: the teacher's, or None; no instruction: None
        record["instruction"] = None
        for key in ("positive_passages", "negative_passages"):
            record[key] = [{**p, "score": p.get("score")} for p in record[key]]
    assert checked == records
