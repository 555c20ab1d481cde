"""The HTTP application: Cohere's and TEI's rerank routes, `/health`, `/info` and `/metrics`, over one
`CrossRequestBatcher`.

The model loads in a thread after the server has started, so that `/health` answers 503 while it loads (and while
the server drains after SIGTERM) and 200 once a probe pair has been scored. A call is refused at once (429) when
`max_concurrent_requests` calls are in flight: no unbounded queue. A client that disconnects has its pairs that are
still waiting dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from reranker.api import Reranker
from reranker.io.summary import package_versions
from reranker.io.window_scores import Aggregate
from reranker.io.windows import WindowSpec, cut_windows, token_spans
from reranker.model.pair_encoding import EncodedPairs
from reranker.model.prompt_template import TextCutter
from reranker.serving.batcher import CrossRequestBatcher
from reranker.serving.metrics import ServerMetrics
from reranker.serving.protocols import (
    TEI_ROUTE,
    CohereV1Request,
    CohereV2Request,
    RequestError,
    TeiRequest,
    cohere_response,
    parse_request,
    tei_response,
)

logger = logging.getLogger(__name__)
CLIENT_GONE = 499  # nginx's status for a client that closed the connection (counted, never sent)
COHERE_MAX_TOKENS_PER_DOC = 4096  # Cohere's default: a document's tokens read, in windows of p_max_len
MAX_OF_WINDOWS = Aggregate("maxp")  # a long document's score, as Cohere's rerank takes it


@dataclass(frozen=True)
class ServerSettings:
    """The server's limits and batching: what the flags of `ServeArguments` say."""

    model_name: str
    max_client_batch_size: int
    max_concurrent_requests: int
    max_batch_tokens: int
    max_wait_ms: float
    max_batch_requests: int | None
    auto_truncate: bool


class ServingState:
    """What the routes share: the loaded reranker and its batcher, the metrics, and the server's status."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.status = "loading"  # -> "ready" | "failed"; `draining` is set by SIGTERM
        self.draining = False
        self.reranker: Reranker | None = None
        self.batcher: CrossRequestBatcher | None = None
        self.metrics = ServerMetrics(lambda: self.batcher.waiting_pairs if self.batcher else 0)
        self.in_flight = 0
        # Tokenizing in one thread of its own overlaps the scoring thread, and one thread is what a tokenizer's
        # Rust backend allows without locking.
        self.encoding = ThreadPoolExecutor(1, thread_name_prefix="encoding")

    def start(self, reranker: Reranker) -> None:
        """Start scoring with `reranker`: its batcher and scoring thread."""
        settings = self.settings
        self.batcher = CrossRequestBatcher(
            reranker.scorer, max_batch_tokens=settings.max_batch_tokens, max_wait_ms=settings.max_wait_ms,
            max_batch_requests=settings.max_batch_requests, on_window=self.metrics.count_window,
            on_dropped=self.metrics.count_dropped,
        )  # fmt: skip
        self.batcher.start()
        self.reranker = reranker

    def stop(self) -> None:
        if self.batcher is not None:
            self.batcher.close()
        self.encoding.shutdown()

    def encode(self, query: str, texts: list[str]) -> EncodedPairs:
        """The pairs of one call, each text cut to the model's `p_max_len` tokens (TEI's route)."""
        return self.reranker.scorer.encoder.encode_groups([query], [[("", text) for text in texts]])

    def encode_windows(self, query: str, texts: list[str], max_tokens: int) -> tuple[EncodedPairs, list[list[int]]]:
        """The pairs of one call as Cohere reads documents: each cut to `max_tokens` tokens, then into windows of the
        model's `p_max_len` tokens. Returns the windows' pairs and each document's window numbers."""
        encoder = self.reranker.scorer.encoder
        spec = WindowSpec(encoder.p_max_len, names=("p_max_len", "p_max_len"))
        documents = []
        # one tokenizing pass finds both where a document is cut and its windows (a third of the encoding time)
        for text, found in zip(texts, token_spans(encoder.tokenizer)(texts), strict=True):
            if len(found) > max_tokens:
                text, found = text[: found[max_tokens - 1][1]], found[:max_tokens]
            documents.append(cut_windows("", text, found, spec))
        numbers = itertools.count()
        owned = [[next(numbers) for _ in windows] for windows in documents]
        pairs = encoder.encode_groups([query], [[("", w.text) for windows in documents for w in windows]])
        return pairs, owned

    def first_over_limit(self, query: str, texts: list[str]) -> str | None:
        """What in a call is longer than the model's limits (`q_max_len`, `p_max_len` tokens), or None."""
        encoder = self.reranker.scorer.encoder
        if len(_cutter(encoder.tokenizer, encoder.q_max_len)([query])[0]) < len(query):
            return f"query is longer than the server's {encoder.q_max_len} tokens (--q_max_len)"
        for i, (cut, text) in enumerate(zip(_cutter(encoder.tokenizer, encoder.p_max_len)(texts), texts, strict=True)):
            if len(cut) < len(text):
                return f"texts.{i} is longer than the server's {encoder.p_max_len} tokens (--p_max_len)"
        return None

    def info(self) -> dict:
        reranker = self.reranker
        model = {"score_head": None, "dtype": None, "device": None, "q_max_len": None, "p_max_len": None}
        if reranker is not None:
            encoder = reranker.scorer.encoder
            model = {"score_head": reranker.score_head.name or "cls", "dtype": reranker.precision,
                     "device": str(reranker.device), "q_max_len": encoder.q_max_len,
                     "p_max_len": encoder.p_max_len}  # fmt: skip
        settings = asdict(self.settings)
        return {"model_id": settings.pop("model_name"), **model, "status": self.status, **settings,
                "versions": package_versions()}  # fmt: skip


@functools.lru_cache(maxsize=16)
def _cutter(tokenizer, max_tokens: int) -> TextCutter:
    return TextCutter(tokenizer, max_tokens)


def create_app(load: Callable[[], Reranker], settings: ServerSettings, on_load_failure: Callable[[], None]) -> FastAPI:
    """The application; `load` runs in a thread once the server is up (`on_load_failure` is called if it raises).

    Example:
        >>> settings = ServerSettings("runs/minilm", 1000, 512, 16384, 2.0, None, False)
        >>> app = create_app(lambda: Reranker.from_pretrained("runs/minilm"), settings, on_load_failure=exit)
        >>> uvicorn.run(app, port=8000)
    """
    state = ServingState(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        loading = asyncio.create_task(_load(state, load, on_load_failure))
        yield
        loading.cancel()
        await asyncio.to_thread(state.stop)

    app = FastAPI(title="reranker", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.serving = state
    _add_scoring_routes(app, state)
    _add_status_routes(app, state)
    return app


async def _load(state: ServingState, load: Callable[[], Reranker], on_load_failure: Callable[[], None]) -> None:
    try:
        reranker = await asyncio.to_thread(load)
        state.start(reranker)
        await state.batcher.score(await asyncio.to_thread(state.encode, "probe", ["a probe passage"]))
    except Exception as err:
        logger.error("error: the model could not be loaded: %s", err)
        state.status = "failed"
        on_load_failure()
        return
    state.status = "ready"
    logger.info("ready: %s", state.settings.model_name)


def _add_status_routes(app: FastAPI, state: ServingState) -> None:
    @app.get("/health")
    async def health() -> JSONResponse:
        status = "draining" if state.draining else state.status
        return JSONResponse({"status": status}, 200 if status == "ready" else 503)

    @app.get("/info")
    async def info() -> JSONResponse:
        return JSONResponse(state.info())

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)


def _add_scoring_routes(app: FastAPI, state: ServingState) -> None:
    @app.post("/v2/rerank")
    async def cohere_v2(request: Request) -> Response:
        async def handle() -> dict:
            call = parse_request(CohereV2Request, await request.body(), "/v2/rerank")
            max_tokens = call.max_tokens_per_doc or COHERE_MAX_TOKENS_PER_DOC
            scores = await _score(state, request, call.query, call.documents, max_tokens)
            return cohere_response(scores, call.top_n, "2", call.model)

        return await _serve(state, "/v2/rerank", handle)

    @app.post("/v1/rerank")
    async def cohere_v1(request: Request) -> Response:
        async def handle() -> dict:
            call = parse_request(CohereV1Request, await request.body(), "/v1/rerank")
            texts = call.texts
            max_tokens = call.max_tokens_per_doc or COHERE_MAX_TOKENS_PER_DOC
            scores = await _score(state, request, call.query, texts, max_tokens)
            return cohere_response(scores, call.top_n, "1", call.model, texts if call.return_documents else None)

        return await _serve(state, "/v1/rerank", handle)

    @app.post(TEI_ROUTE)
    async def tei(request: Request) -> Response:
        async def handle() -> list:
            call = parse_request(TeiRequest, await request.body(), TEI_ROUTE)
            if call.truncation_direction.lower() == "left":
                raise RequestError(422, "truncation_direction Left is not supported: texts are cut on the right")
            truncate = state.settings.auto_truncate if call.truncate is None else call.truncate
            scores = await _score(state, request, call.query, call.texts, check_limits=not truncate)
            return tei_response(scores, call.raw_scores, call.texts if call.return_text else None)

        return await _serve(state, TEI_ROUTE, handle)


async def _serve(state: ServingState, route: str, handle: Callable[[], Awaitable]) -> Response:
    """Run a scoring route's `handle` within the limits; count and time it; errors as the route's service
    writes them, never a traceback."""
    start = time.perf_counter()
    limit = state.settings.max_concurrent_requests
    if state.in_flight >= limit:
        message = f"more than {limit} calls in flight (--max_concurrent_requests); retry later"
        response = RequestError(429, message, "Overloaded").response(route)
    else:
        state.in_flight += 1
        state.metrics.in_flight.inc()
        try:
            response = JSONResponse(await handle())
        except RequestError as err:
            response = err.response(route)
        except _ClientGone:
            response = Response(status_code=CLIENT_GONE)
        except Exception as err:  # a server fault: logged with its traceback, answered in one line
            logger.exception("%s failed", route)
            response = RequestError(500, f"internal error: {type(err).__name__}: {err}", "Backend").response(route)
        finally:
            state.in_flight -= 1
            state.metrics.in_flight.dec()
    state.metrics.count_request(route, response.status_code, time.perf_counter() - start)
    return response


class _ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


async def _score(
    state: ServingState,
    request: Request,
    query: str,
    texts: list[str],
    max_tokens: int | None = None,
    *,
    check_limits: bool = False,
) -> np.ndarray:
    """Raw scores of (query, text) pairs through the batcher; RequestError for calls the server cannot take.
    `max_tokens`: Cohere's `max_tokens_per_doc` (documents read in windows, each scored by its best); None: TEI's
    reading (each text cut at `p_max_len`)."""
    if state.draining or state.status != "ready":
        raise RequestError(503, f"the server is {'shutting down' if state.draining else state.status}", "Unhealthy")
    limit = state.settings.max_client_batch_size
    if len(texts) > limit:
        raise RequestError(413, f"{len(texts)} documents in one call, more than {limit} (--max_client_batch_size)")
    loop = asyncio.get_running_loop()
    if check_limits and (problem := await loop.run_in_executor(state.encoding, state.first_over_limit, query, texts)):
        raise RequestError(422, f"{problem}; send truncate: true to cut it")
    if max_tokens is None:
        pairs = await loop.run_in_executor(state.encoding, state.encode, query, texts)
        return await _scored(state, request, pairs)
    pairs, owned = await loop.run_in_executor(state.encoding, state.encode_windows, query, texts, max_tokens)
    scores = (await _scored(state, request, pairs)).tolist()
    return np.array([MAX_OF_WINDOWS(list(enumerate(scores[i] for i in numbers))) for numbers in owned], np.float32)


async def _scored(state: ServingState, request: Request, pairs: EncodedPairs) -> np.ndarray:
    """The pairs' scores through the batcher; a client that goes away meanwhile has its waiting pairs dropped."""
    scoring = asyncio.ensure_future(state.batcher.score(pairs))
    gone = asyncio.ensure_future(_disconnected(request))
    await asyncio.wait((scoring, gone), return_when=asyncio.FIRST_COMPLETED)
    if not scoring.done():
        scoring.cancel()
        raise _ClientGone
    gone.cancel()
    return scoring.result()


async def _disconnected(request: Request) -> None:
    """Returns when the client has closed the connection (the body has been read: the next message is that)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
