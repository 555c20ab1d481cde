"""The rerank routes' wire formats, as the services that defined them document them: Cohere's `/v2/rerank` and
`/v1/rerank` (also Jina's), text-embeddings-inference's `/rerank`; their errors (Cohere: `{"message"}`; TEI:
`{"error", "error_type"}`).

Requests are validated strictly (a number where a string belongs is an error, not converted); fields a client
sends that we do not use (Cohere's `priority`, `rank_fields`, ...) are accepted and ignored.
"""

from __future__ import annotations

import uuid
from typing import Literal

import numpy as np
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

TEI_ROUTE = "/rerank"


class RequestError(Exception):
    """A request that cannot be served: its HTTP status, a message, and TEI's error type."""

    def __init__(self, status: int, message: str, error_type: str = "Validation") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type

    def response(self, route: str) -> JSONResponse:
        """The error as the route's own service writes it."""
        if route == TEI_ROUTE:
            return JSONResponse({"error": self.message, "error_type": self.error_type}, self.status)
        return JSONResponse({"message": self.message}, self.status)


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class CohereV2Request(_Request):
    model: str | None = None
    query: str
    documents: list[str]
    top_n: int | None = None
    max_tokens_per_doc: int | None = None


class TextDocument(_Request):
    text: str


class CohereV1Request(_Request):
    """Cohere's v1 and Jina's rerank: documents as strings or `{"text": ...}` objects."""

    model: str | None = None
    query: str
    documents: list[str | TextDocument]
    top_n: int | None = None
    return_documents: bool = False
    max_tokens_per_doc: int | None = None

    @property
    def texts(self) -> list[str]:
        return [d if isinstance(d, str) else d.text for d in self.documents]


class TeiRequest(_Request):
    query: str
    texts: list[str]
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool | None = None
    truncation_direction: Literal["Right", "Left", "right", "left"] = "Right"


def parse_request(model: type[_Request], body: bytes, route: str) -> _Request:
    """The request in `body`, or a RequestError (400 on Cohere's routes, 422 on TEI's) naming the first field at
    fault."""
    try:
        request = model.model_validate_json(body)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = f"{where}: {first['msg']}" if where else f"the body is not a valid request: {first['msg']}"
        raise RequestError(422 if route == TEI_ROUTE else 400, message) from None
    if not request.query:
        raise RequestError(400, "query must not be empty", "Empty")
    documents = request.texts if isinstance(request, TeiRequest) else request.documents
    if not documents:
        raise RequestError(400, f"{'texts' if route == TEI_ROUTE else 'documents'} must not be empty", "Empty")
    for name in ("top_n", "max_tokens_per_doc"):
        value = getattr(request, name, None)
        if value is not None and value < 1:
            raise RequestError(400, f"{name} must be >= 1, got {value}")
    return request


def sigmoid(scores: np.ndarray) -> np.ndarray:
    """Raw scores (logits) as relevance in [0, 1]; for a `yes_no` head exactly P(yes)."""
    return 1.0 / (1.0 + np.exp(-scores.astype(np.float64)))


def ranked(scores: np.ndarray, top_n: int | None = None) -> np.ndarray:
    """Indices by raw score, descending, ties in input order (as `Reranker.rank`), the first `top_n`."""
    return np.argsort(-scores, kind="stable")[:top_n]


def cohere_response(
    scores: np.ndarray, top_n: int | None, version: str, model: str | None, texts: list[str] | None = None
) -> dict:
    """Cohere's rerank response (`texts`: v1's `return_documents`), with Jina's `model` beside it."""
    relevance = sigmoid(scores)
    results = []
    for i in ranked(scores, top_n):
        result = {"index": int(i), "relevance_score": float(relevance[i])}
        if texts is not None:
            result["document"] = {"text": texts[i]}
        results.append(result)
    return {"id": str(uuid.uuid4()), "results": results, "meta": {"api_version": {"version": version}},
            "model": model}  # fmt: skip


def tei_response(scores: np.ndarray, raw_scores: bool, texts: list[str] | None) -> list[dict]:
    """TEI's rerank response: `[{index, score, text?}]` by score."""
    values = scores.astype(np.float64) if raw_scores else sigmoid(scores)
    results = []
    for i in ranked(scores):
        result = {"index": int(i), "score": float(values[i])}
        if texts is not None:
            result["text"] = texts[i]
        results.append(result)
    return results
