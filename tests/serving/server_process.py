"""Starting `python -m reranker.serve` as a subprocess on a free port, as users run it, for the serving tests."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from reranker.first_stage.prepare import join_run_with_texts
from reranker.io.queries import read_queries
from reranker.io.rerank_input import iter_query_blocks
from reranker.io.runs import read_run
from reranker.model.pair_encoding import passage_text

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A server subprocess on a free port (`command` gets the port); `url` is its base address, ready once
    `/health` says 200. `ServerProcess.reranker(model, *flags)` starts `python -m reranker.serve`."""

    def __init__(self, command: Callable[[int], list[str]], log: Path, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
        self.log = open(log, "w")  # a file, not a pipe: a full pipe would stall the server
        self.process = subprocess.Popen(command(self.port), stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                        cwd=ROOT)  # fmt: skip

    @classmethod
    def reranker(cls, model: str | os.PathLike, *flags: str, log: Path) -> ServerProcess:
        return cls(lambda port: [sys.executable, "-m", "reranker.serve", "--model_name_or_path", str(model),
                                 "--port", str(port), *flags], log)  # fmt: skip

    def wait_ready(self, timeout: float = 180) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited ({self.process.returncode}):\n{self.output()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server did not get ready in {timeout} s:\n{self.output()[-3000:]}")

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)
        self.log.close()


def dev600_requests(offline_data: Path, folder: Path, queries: int = 5) -> list[tuple[str, list[str]]]:
    """Whole requests of real text: the first `queries` dev600 queries, each with its 20 BM25 passages."""
    path = folder / "rerank.jsonl"
    run = dict(itertools.islice(read_run(offline_data / "dev600" / "run.bm25.trec").items(), queries))
    join_run_with_texts(read_queries(str(offline_data / "dev600" / "queries.tsv")), run, "run",
                        str(offline_data / "corpus.jsonl.gz"), str(path))  # fmt: skip
    return [(block.query, [passage_text(c.title, c.text) for c in block.candidates])
            for block in iter_query_blocks(str(path))]  # fmt: skip


def metric(url: str, name: str) -> float:
    """One unlabelled sample of the server's Prometheus metrics."""
    for line in httpx.get(f"{url}/metrics", timeout=60).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")
