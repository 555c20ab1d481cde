"""Batching across requests (a tiny random BERT): windows hold many requests and a request may span windows, within
the token budget; every request gets the scores it would get alone; a cancelled request's waiting pairs are dropped,
not scored. And the application's status while the model loads, and when it fails to load."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient

from reranker import Reranker
from reranker.serving.app import ServerSettings, create_app
from reranker.serving.batcher import CrossRequestBatcher

QUERIES = ["what is a lobster roll", "why does a volcano erupt", "who shot franz ferdinand"]
PASSAGES = ["A lobster roll is a sandwich of lobster meat on a grilled bun.", "Bread.",
            "Magma reaches the surface.", "Gavrilo Princip shot him in Sarajevo in 1914.", "x y z"]  # fmt: skip


@pytest.fixture(scope="module")
def reranker(tiny_model_dir):
    return Reranker.from_pretrained(str(tiny_model_dir))


def encoded(reranker, query):
    return reranker.scorer.encoder.encode_groups([query], [[("", p) for p in PASSAGES]])


def score_together(reranker, jobs, **settings):
    """Submit `jobs` (encoded pairs) at once to a fresh batcher; their scores and the windows it made."""
    windows = []
    batcher = CrossRequestBatcher(reranker.scorer, on_window=windows.append, **settings)
    batcher.start()

    async def submit():
        return await asyncio.gather(*(batcher.score(pairs) for pairs in jobs))

    try:
        return asyncio.run(submit()), windows
    finally:
        batcher.close()


def alone(reranker, pairs):
    return reranker.scorer.score_encoded(pairs)


def test_one_window_holds_many_requests(reranker):
    jobs = [encoded(reranker, q) for q in QUERIES]
    scores, windows = score_together(reranker, jobs, max_wait_ms=2000)
    assert [(w.pairs, w.requests) for w in windows] == [(15, 3)]
    assert windows[0].tokens == sum(int(job.offsets[-1]) for job in jobs)
    for job, got in zip(jobs, scores, strict=True):
        np.testing.assert_allclose(got, alone(reranker, job), atol=1e-6)


def test_a_request_spans_windows_within_the_token_budget(reranker):
    job = encoded(reranker, QUERIES[0])
    budget = int(job.lengths[:2].sum())  # two pairs a window, then what is left
    scores, windows = score_together(reranker, [job], max_batch_tokens=budget, max_wait_ms=0)
    assert sum(w.pairs for w in windows) == 5 and len(windows) >= 3
    assert all(w.tokens <= budget or w.pairs == 1 for w in windows)
    np.testing.assert_allclose(scores[0], alone(reranker, job), atol=1e-6)


def test_max_batch_requests_1_scores_requests_one_by_one(reranker):
    jobs = [encoded(reranker, q) for q in QUERIES]
    scores, windows = score_together(reranker, jobs, max_wait_ms=2000, max_batch_requests=1)
    assert [(w.pairs, w.requests) for w in windows] == [(5, 1)] * 3
    for job, got in zip(jobs, scores, strict=True):
        np.testing.assert_allclose(got, alone(reranker, job), atol=1e-6)


def test_a_cancelled_request_has_its_waiting_pairs_dropped(reranker):
    windows, dropped = [], []
    batcher = CrossRequestBatcher(reranker.scorer, on_window=windows.append, on_dropped=dropped.append)

    async def cancel_then_score():
        waiting = asyncio.ensure_future(batcher.score(encoded(reranker, QUERIES[0])))
        await asyncio.sleep(0.05)  # queued; the scoring thread has not started
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        batcher.start()
        return await batcher.score(encoded(reranker, QUERIES[1]))

    try:
        asyncio.run(cancel_then_score())
    finally:
        batcher.close()
    assert dropped == [5] and [w.pairs for w in windows] == [5]


SETTINGS = ServerSettings("tiny", 10, 4, 16384, 2.0, None, False)


def test_health_is_503_while_the_model_loads_then_200(reranker):
    loaded = threading.Event()

    def load():
        loaded.wait(60)
        return reranker

    with TestClient(create_app(load, SETTINGS, on_load_failure=lambda: None)) as client:
        assert (client.get("/health").status_code, client.get("/health").json()) == (503, {"status": "loading"})
        cohere = client.post("/v2/rerank", json={"query": "q", "documents": ["a"]})
        tei = client.post("/rerank", json={"query": "q", "texts": ["a"]})
        assert (cohere.status_code, cohere.json()) == (503, {"message": "the server is loading"})
        assert (tei.status_code, tei.json()) == (503, {"error": "the server is loading", "error_type": "Unhealthy"})
        assert client.get("/info").json()["status"] == "loading"
        loaded.set()
        for _ in range(600):
            if client.get("/health").status_code == 200:
                break
            threading.Event().wait(0.05)
        assert client.get("/health").json() == {"status": "ready"}
        assert client.post("/v2/rerank", json={"query": "q", "documents": ["a"]}).status_code == 200


def test_a_model_that_fails_to_load_stops_the_server():
    stopped = threading.Event()

    def load():
        raise ValueError("no such model folder: nowhere")

    with TestClient(create_app(load, SETTINGS, on_load_failure=stopped.set)) as client:
        assert stopped.wait(60)
        assert (client.get("/health").status_code, client.get("/health").json()) == (503, {"status": "failed"})
