"""Command-line arguments of the server: the scoring flags of `reranker_inference.py` and the server's own (named
as text-embeddings-inference names them, so that its users know them)."""

from __future__ import annotations

from dataclasses import dataclass

from reranker.inference.arguments import ScoringArguments
from reranker.io.errors import ParameterError, check_at_least
from reranker.model.arguments import opt
from reranker.serving.batcher import SERVER_WINDOW_TOKENS


@dataclass
class ServeArguments(ScoringArguments):
    host: str = opt("127.0.0.1", "Address to listen on (0.0.0.0: every interface).")
    port: int = opt(8000, "Port to listen on.")
    served_model_name: str | None = opt(None, "The model name /info reports (default: --model_name_or_path).")
    max_client_batch_size: int = opt(1000, "Documents one call may hold; more is answered 413.")
    max_concurrent_requests: int = opt(512, "Calls in flight at once; one more is answered 429 at once.")
    max_batch_tokens: int = opt(
        SERVER_WINDOW_TOKENS, "Tokens (unpadded) scored together across requests, sorted by length and batched inside."
    )
    max_wait_ms: float = opt(2.0, "How long the oldest waiting pair may wait for more pairs before it is scored.")
    max_batch_requests: int | None = opt(
        None, "Requests scored together at most (1: no batching across requests; default: no limit)."
    )
    auto_truncate: bool = opt(
        False, "TEI's /rerank: cut texts over the limits when a call does not say `truncate` (as TEI's flag)."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least("port", self.port, 0)
        for name in ("max_client_batch_size", "max_concurrent_requests", "max_batch_tokens", "max_batch_requests"):
            check_at_least(name, getattr(self, name), 1)
        check_at_least("max_wait_ms", self.max_wait_ms, 0)
        if self.queue_ahead:  # chunks of a file: the server scores windows of requests as they come
            raise ParameterError("{0} queues a file's chunks (reranker_inference.py): not a server's", "queue_ahead")
