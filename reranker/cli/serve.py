"""`python -m reranker.serve`: serve a reranker over HTTP (Cohere's and text-embeddings-inference's rerank routes)."""

from __future__ import annotations

from reranker.cli.common import exits_on_bad_input, load_reranker, parse_dataclasses, setup_logging
from reranker.inference.arguments import INFERENCE_FLAGS
from reranker.model.arguments import ModelArguments
from reranker.serving.arguments import ServeArguments


@exits_on_bad_input(flag_names=INFERENCE_FLAGS)
def main(argv: list[str] | None = None) -> int:
    setup_logging()
    model_args, args = parse_dataclasses((ModelArguments, ServeArguments), argv)
    import uvicorn

    from reranker.serving.app import ServerSettings, create_app

    settings = ServerSettings(
        args.served_model_name or model_args.model_name_or_path, args.max_client_batch_size,
        args.max_concurrent_requests, args.max_batch_tokens, args.max_wait_ms, args.max_batch_requests,
        args.auto_truncate,
    )  # fmt: skip

    class DrainingServer(uvicorn.Server):
        """uvicorn's graceful shutdown (stop accepting, answer what is in flight, exit), with `/health` saying
        503 from the signal on."""

        def handle_exit(self, sig: int, frame) -> None:
            app.state.serving.draining = True
            super().handle_exit(sig, frame)

    def stop() -> None:
        server.should_exit = True

    app = create_app(lambda: load_reranker(model_args, args), settings, on_load_failure=stop)
    server = DrainingServer(uvicorn.Config(app, host=args.host, port=args.port, access_log=False))
    server.run()
    return 2 if app.state.serving.status == "failed" else 0  # after SIGTERM uvicorn re-raises it instead: 143
