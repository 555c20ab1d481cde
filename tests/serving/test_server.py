"""The server as users run it: a subprocess on a free port, called by the real clients (the `cohere` SDK, httpx).
Every route gives `Reranker.predict`'s scores (raw, or through the sigmoid) in `Reranker.rank`'s order; bad input
gets its status and a JSON body naming the problem and leaves the server healthy; overload is answered 429; a
client that goes away has its pairs dropped; SIGTERM answers the call in flight before the process exits."""

from __future__ import annotations

import concurrent.futures
import signal
import threading
import time

import cohere
import httpx
import numpy as np
import pytest

from reranker import Reranker
from reranker.serving.protocols import sigmoid
from tests.api.test_windows import EARLY, LATE, QUERY
from tests.serving.server_process import ServerProcess, dev600_requests, metric

pytestmark = pytest.mark.slow
HTTP = httpx.Client(timeout=300)  # the box may be busy: a slow answer is not a failure here
HEAD = ("--score_head", "segment_cosine")  # MiniLM's zero-shot head: deterministic, no random layer


@pytest.fixture(scope="module")
def requests_(offline_data, tmp_path_factory):
    return dev600_requests(offline_data, tmp_path_factory.mktemp("requests"))


@pytest.fixture(scope="module")
def reference(minilm_path):
    return Reranker.from_pretrained(minilm_path, score_head="segment_cosine")


@pytest.fixture(scope="module")
def server(minilm_path, tmp_path_factory):
    process = ServerProcess.reranker(minilm_path, *HEAD, "--max_client_batch_size", "40",
                            log=tmp_path_factory.mktemp("log") / "server.log").wait_ready()  # fmt: skip
    yield process
    process.stop()


def check_cohere_results(results, reference, query, documents, top_n=None):
    """`results` (the SDK's objects or the JSON's dicts) are `rank`'s order with sigmoid(`predict`) scores."""
    results = [r if isinstance(r, dict) else {"index": r.index, "relevance_score": r.relevance_score} for r in results]
    raw = reference.predict(query, documents)
    expected = reference.rank(query, documents, top_k=top_n)
    assert [r["index"] for r in results] == [index for index, _ in expected]
    np.testing.assert_allclose([r["relevance_score"] for r in results], sigmoid(raw)[[i for i, _ in expected]],
                               rtol=0, atol=1e-5)  # fmt: skip


def test_cohere_sdk_v2_gets_predict_scores_in_rank_order(server, reference, requests_):
    client = cohere.ClientV2(base_url=server.url, api_key="unused")
    for query, documents in requests_:
        response = client.rerank(model="minilm", query=query, documents=documents)
        check_cohere_results(response.results, reference, query, documents)
        assert response.id and response.meta.api_version.version == "2"
    query, documents = requests_[0]
    top = client.rerank(model="minilm", query=query, documents=documents, top_n=3)
    check_cohere_results(top.results, reference, query, documents, top_n=3)


def test_cohere_sdk_v1_with_document_objects_and_return_documents(server, reference, requests_):
    query, documents = requests_[1]
    client = cohere.Client(base_url=server.url, api_key="unused")
    response = client.rerank(model="minilm", query=query, documents=[{"text": d} for d in documents],
                             top_n=5, return_documents=True)  # fmt: skip
    check_cohere_results(response.results, reference, query, documents, top_n=5)
    assert [r.document.text for r in response.results] == [documents[r.index] for r in response.results]
    plain = HTTP.post(f"{server.url}/v1/rerank", json={"model": "jina", "query": query, "documents": documents})
    assert plain.status_code == 200 and plain.json()["model"] == "jina"
    assert [r["index"] for r in plain.json()["results"]] == [
        r.index for r in client.rerank(query=query, documents=documents).results
    ]


@pytest.mark.parametrize("raw_scores", [True, False])
def test_tei_route_gives_raw_or_sigmoid_scores(server, reference, requests_, raw_scores):
    query, texts = requests_[2]
    body = {"query": query, "texts": texts, "raw_scores": raw_scores, "return_text": True, "truncate": True}
    results = HTTP.post(f"{server.url}/rerank", json=body).json()
    raw = reference.predict(query, texts)
    assert [r["index"] for r in results] == [i for i, _ in reference.rank(query, texts)]
    expected = raw if raw_scores else sigmoid(raw)
    np.testing.assert_allclose([r["score"] for r in results], expected[[r["index"] for r in results]], atol=1e-5)
    assert [r["text"] for r in results] == [texts[r["index"]] for r in results]
    assert set(HTTP.post(f"{server.url}/rerank", json={"query": query, "texts": texts[:2], "truncate": True})
               .json()[0]) == {"index", "score"}  # fmt: skip


LONG = "word " * 300  # over --p_max_len 128 tokens
BAD_INPUT = [  # route, body, status, what the message must say
    ("/v2/rerank", b'{"query": "q", "documents": ["a"', 400, "Invalid JSON"),
    ("/v2/rerank", {"documents": ["a"]}, 400, "query: Field required"),
    ("/v2/rerank", {"query": "q", "documents": []}, 400, "documents must not be empty"),
    ("/v2/rerank", {"query": "q", "documents": ["a", 7]}, 400, "documents.1: Input should be a valid string"),
    ("/v2/rerank", {"query": "q", "documents": "a"}, 400, "documents: Input should be a valid array"),
    ("/v2/rerank", {"query": "", "documents": ["a"]}, 400, "query must not be empty"),
    ("/v2/rerank", {"query": "q", "documents": ["a"], "top_n": 0}, 400, "top_n must be >= 1, got 0"),
    ("/v2/rerank", {"query": "q", "documents": ["a"], "top_n": "3"}, 400, "top_n: Input should be a valid integer"),
    ("/v2/rerank", {"query": "q", "documents": ["a"] * 41}, 413, "41 documents in one call, more than 40"),
    ("/v1/rerank", {"query": "q", "documents": [{"title": "a"}]}, 400, "documents.0"),
    ("/v1/rerank", [1, 2], 400, "Input should be an object"),
    ("/rerank", b"not json", 422, "Invalid JSON"),
    ("/rerank", {"query": 5, "texts": ["a"]}, 422, "query: Input should be a valid string"),
    ("/rerank", {"query": "q", "texts": []}, 400, "texts must not be empty"),
    ("/rerank", {"query": "q", "texts": ["a"] * 41}, 413, "more than 40 (--max_client_batch_size)"),
    ("/rerank", {"query": "q", "texts": ["short", LONG]}, 422, "texts.1 is longer than the server's 128 tokens"),
    ("/rerank", {"query": "q", "texts": ["a"], "truncation_direction": "Up"}, 422, "truncation_direction"),
    ("/rerank", {"query": "q", "texts": ["a"], "truncation_direction": "Left"}, 422, "Left is not supported"),
]


@pytest.mark.parametrize(("route", "body", "status", "message"), BAD_INPUT)
def test_bad_input_gets_its_status_and_a_json_error(server, route, body, status, message):
    content = body if isinstance(body, bytes) else None
    response = HTTP.post(f"{server.url}{route}", content=content, json=None if content else body)
    assert response.status_code == status
    error = response.json()
    if route == "/rerank":
        assert set(error) == {"error", "error_type"} and message in error["error"]
    else:
        assert set(error) == {"message"} and message in error["message"]
    assert HTTP.get(f"{server.url}/health").status_code == 200


def test_tei_truncate_true_and_cohere_routes_cut_long_texts(server, reference):
    texts = ["short", LONG]
    tei = HTTP.post(f"{server.url}/rerank", json={"query": "q", "texts": texts, "truncate": True, "raw_scores": True})
    np.testing.assert_allclose(sorted(r["score"] for r in tei.json()), sorted(reference.predict("q", texts)),
                               atol=1e-5)  # fmt: skip
    assert HTTP.post(f"{server.url}/v2/rerank", json={"query": "q", "documents": texts}).status_code == 200


def test_max_tokens_per_doc_cuts_each_document(server, reference):
    documents = ["marathon " * 50 + "a race of 42.195 km", "a race of 42.195 km"]
    results = HTTP.post(f"{server.url}/v2/rerank", json={"query": "how long is a marathon", "documents": documents,
                                                        "max_tokens_per_doc": 20}).json()["results"]  # fmt: skip
    cut = ["marathon " * 19 + "marathon", documents[1]]  # 20 tokens of each
    expected = sigmoid(reference.predict("how long is a marathon", cut))
    np.testing.assert_allclose(sorted(r["relevance_score"] for r in results), sorted(expected), atol=1e-5)


def test_cohere_routes_read_long_documents_in_windows_and_take_the_best(server, reference):
    """As Cohere's rerank: a document is read up to max_tokens_per_doc tokens, in windows of --p_max_len, scored by
    its best window; TEI's route cuts it at --p_max_len, so the late answer is never read there."""
    documents = [EARLY, LATE]
    cohere_v2 = HTTP.post(f"{server.url}/v2/rerank", json={"query": QUERY, "documents": documents}).json()
    expected = reference.rank(QUERY, documents, max_tokens_per_doc=128)  # windows of 128 tokens, maxp
    assert [r["index"] for r in cohere_v2["results"]] == [i for i, _ in expected] == [1, 0]
    np.testing.assert_allclose([r["relevance_score"] for r in cohere_v2["results"]],
                               sigmoid(np.array([score for _, score in expected])), atol=1e-5)  # fmt: skip
    tei = HTTP.post(f"{server.url}/rerank", json={"query": QUERY, "texts": documents, "truncate": True}).json()
    assert [r["index"] for r in tei] == [i for i, _ in reference.rank(QUERY, documents)] == [0, 1]
    cut = HTTP.post(f"{server.url}/v1/rerank", json={"query": QUERY, "documents": documents,
                                                    "max_tokens_per_doc": 128}).json()  # fmt: skip
    assert [r["index"] for r in cut["results"]] == [0, 1]  # the answer lies past the first 128 tokens


def test_health_info_and_metrics(server):
    assert HTTP.get(f"{server.url}/health").json() == {"status": "ready"}
    info = HTTP.get(f"{server.url}/info").json()
    assert (info["score_head"], info["dtype"], info["device"], info["q_max_len"], info["p_max_len"]) == (
        "segment_cosine", "fp32", "cpu", 16, 128)  # fmt: skip
    assert info["max_client_batch_size"] == 40 and info["versions"]["reranker"]
    before = metric(server.url, "reranker_pairs_scored_total")
    HTTP.post(f"{server.url}/v2/rerank", json={"query": "q", "documents": ["a", "b", "c"]})
    text = HTTP.get(f"{server.url}/metrics").text
    assert metric(server.url, "reranker_pairs_scored_total") == before + 3
    assert 'reranker_requests_total{route="/v2/rerank",status="200"}' in text
    assert 'reranker_requests_total{route="/v2/rerank",status="413"}' in text
    for name in ("reranker_request_duration_seconds_bucket", "reranker_batch_pairs_bucket",
                 "reranker_batch_tokens_bucket", "reranker_queue_pairs", "reranker_pairs_dropped_total"):  # fmt: skip
        assert name in text


@pytest.fixture(scope="module")
def narrow_server(minilm_path, tmp_path_factory):
    """One call in flight at most, one call per scoring window, small windows: calls queue behind each other."""
    flags = ("--max_concurrent_requests", "1", "--max_batch_requests", "1", "--max_batch_tokens", "512")
    process = ServerProcess.reranker(minilm_path, *HEAD, *flags, log=tmp_path_factory.mktemp("log") / "narrow.log")
    yield process.wait_ready()
    process.stop()


def test_more_calls_than_allowed_are_answered_429_and_none_5xx(narrow_server, requests_):
    query, documents = requests_[0]

    def call(_) -> int:
        return HTTP.post(f"{narrow_server.url}/v2/rerank", json={"query": query, "documents": documents},
                          timeout=120).status_code  # fmt: skip

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(call, range(8)))
    assert set(statuses) == {200, 429}
    overloaded = HTTP.get(f"{narrow_server.url}/metrics").text
    assert f'reranker_requests_total{{route="/v2/rerank",status="429"}} {statuses.count(429)}.0' in overloaded
    assert HTTP.post(f"{narrow_server.url}/rerank", json={"query": "q", "texts": ["a"]}).status_code == 200
    assert HTTP.get(f"{narrow_server.url}/health").status_code == 200


def test_a_client_that_goes_away_has_its_pairs_dropped(narrow_server, requests_):
    query, documents = requests_[3]
    documents = documents * 20  # 400 pairs: seconds of scoring on a CPU
    scored, dropped = (metric(narrow_server.url, f"reranker_pairs_{name}_total") for name in ("scored", "dropped"))
    with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes the connection
        HTTP.post(f"{narrow_server.url}/v2/rerank", json={"query": query, "documents": documents}, timeout=1.0)
    deadline = time.monotonic() + 60
    while metric(narrow_server.url, "reranker_queue_pairs") and time.monotonic() < deadline:
        time.sleep(0.1)
    now_scored = metric(narrow_server.url, "reranker_pairs_scored_total") - scored
    now_dropped = metric(narrow_server.url, "reranker_pairs_dropped_total") - dropped
    assert now_dropped > 0 and now_scored + now_dropped == len(documents)
    assert 'status="499"' in HTTP.get(f"{narrow_server.url}/metrics").text


def test_sigterm_answers_the_call_in_flight_then_exits(minilm_path, reference, requests_, tmp_path):
    process = ServerProcess.reranker(
        minilm_path, *HEAD, "--max_batch_tokens", "512", log=tmp_path / "log"
    ).wait_ready()
    query = requests_[4][0]
    documents = [d for _, texts in requests_[2:] for d in texts]  # 60 distinct pairs, in windows of 512 tokens
    answer = {}
    call = threading.Thread(target=lambda: answer.update(response=HTTP.post(
        f"{process.url}/v2/rerank", json={"query": query, "documents": documents})))  # fmt: skip
    call.start()
    while not metric(process.url, "reranker_queue_pairs"):  # the call is accepted and waits to be scored
        time.sleep(0.01)
    process.process.send_signal(signal.SIGTERM)
    call.join()
    process.process.wait(timeout=60)
    process.stop()
    assert process.process.returncode in (0, -signal.SIGTERM), process.output()[-2000:]
    response = answer["response"]
    assert response.status_code == 200
    check_cohere_results(response.json()["results"], reference, query, documents)
    with pytest.raises(httpx.ConnectError):
        HTTP.get(f"{process.url}/health")


def test_a_yes_no_lora_decoder_is_served_with_its_probability_of_yes(tiny_decoders, train_file, tmp_path):
    from tests.training.test_decoder_training import lora_run

    adapter = lora_run(tiny_decoders["qwen3"], train_file, tmp_path / "adapter", "yes_no")
    flags = ("--q_max_len", "32", "--p_max_len", "64")
    process = ServerProcess.reranker(adapter, *flags, log=tmp_path / "log").wait_ready()
    try:
        reference = Reranker.from_pretrained(str(adapter), q_max_len=32, p_max_len=64)
        query = "what is a lobster roll"
        documents = ["A lobster roll is a sandwich of lobster meat.", "Bread.", "Lobsters live in the sea."]
        results = cohere.ClientV2(base_url=process.url, api_key="unused").rerank(
            model="m", query=query, documents=documents).results  # fmt: skip
        check_cohere_results(results, reference, query, documents)
        tei = HTTP.post(f"{process.url}/rerank", json={"query": query, "texts": documents, "raw_scores": True,
                                                        "truncate": True}).json()  # fmt: skip
        np.testing.assert_allclose([r["score"] for r in tei], reference.predict(query, documents)[
            [r["index"] for r in tei]], atol=1e-5)  # fmt: skip
        assert HTTP.get(f"{process.url}/info").json()["score_head"] == "yes_no"
    finally:
        process.stop()
