"""Serving a reranker over HTTP (`python -m reranker.serve`): Cohere's and text-embeddings-inference's rerank
routes on FastAPI, with the pairs of concurrent requests scored together (`batcher`)."""
