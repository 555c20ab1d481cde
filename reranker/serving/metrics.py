"""The server's Prometheus metrics (`GET /metrics`), in a registry of their own so that several servers can live in
one process (tests)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from reranker.serving.batcher import WindowStats

_POWERS_OF_TWO = tuple(float(2**i) for i in range(17))  # 1 .. 65536


class ServerMetrics:
    """Requests by route and status, request latency, queue depth, windows' sizes in pairs, tokens and requests,
    pairs scored and pairs dropped (their client went away).

    Example:
        >>> metrics = ServerMetrics(lambda: 0)
        >>> metrics.count_request("/v2/rerank", 200, 0.05)
        >>> b"reranker_requests_total" in metrics.render()[0]
        True
    """

    def __init__(self, waiting_pairs: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter("reranker_requests", "Requests by route and HTTP status.", ["route", "status"],
                                registry=registry)  # fmt: skip
        self.latency = Histogram("reranker_request_duration_seconds", "Time from a request's arrival to its answer.",
                                 ["route"], registry=registry)  # fmt: skip
        self.in_flight = Gauge("reranker_requests_in_flight", "Scoring requests being served.", registry=registry)
        self.queue = Gauge("reranker_queue_pairs", "Pairs accepted and not yet scored.", registry=registry)
        self.queue.set_function(waiting_pairs)
        self.window_pairs = Histogram("reranker_batch_pairs", "Pairs scored together (one window).",
                                      buckets=_POWERS_OF_TWO, registry=registry)  # fmt: skip
        self.window_tokens = Histogram("reranker_batch_tokens", "Tokens (unpadded) scored together.",
                                       buckets=_POWERS_OF_TWO, registry=registry)  # fmt: skip
        self.window_requests = Histogram("reranker_batch_requests", "Requests whose pairs were scored together.",
                                         buckets=_POWERS_OF_TWO[:11], registry=registry)  # fmt: skip
        self.pairs_scored = Counter("reranker_pairs_scored", "Pairs scored.", registry=registry)
        self.pairs_dropped = Counter("reranker_pairs_dropped", "Pairs not scored: their client went away.",
                                     registry=registry)  # fmt: skip

    def count_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def count_window(self, stats: WindowStats) -> None:
        self.window_pairs.observe(stats.pairs)
        self.window_tokens.observe(stats.tokens)
        self.window_requests.observe(stats.requests)
        self.pairs_scored.inc(stats.pairs)

    def count_dropped(self, pairs: int) -> None:
        self.pairs_dropped.inc(pairs)

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
