"""A `reranker_inference.py` run timed chunk by chunk: steady pairs/s, start-up, GPU utilisation, the full job.

    python benchmarks/chunk_timings.py --label LABEL [--started EPOCH_S] [--job_pairs 6980000] -- \
        reranker_inference.py --model_name_or_path ... [its flags]

Runs the command in this process (the interpreter start is counted from `--started`, the shell's `date +%s.%N`
before it launched this script) and records when each chunk's lines were written (the debug line of
`reranker.inference.score_file`). Prints every chunk's time, then one line: pairs/s end to end, the steady pairs/s
over the later two thirds of the chunks (the last left out), the start-up (seconds not explained by the steady
rate: imports, model load, the first chunk's reading and the device's warm-up), the mean GPU utilisation over the
steady chunks (`nvidia-smi` sampled every 200 ms, where there is one) and the time that start-up plus the steady
rate give for `--job_pairs` (MS MARCO dev's BM25 top 1000: 6.98M pairs).
"""

from __future__ import annotations

import argparse
import logging
import re
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WRITTEN = re.compile(r"chunk (\d+) written: (\d+) candidates in all")


class ChunkLog(logging.Handler):
    """(seconds since the epoch, candidates written so far) for each chunk written."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.chunks: list[tuple[float, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if match := WRITTEN.fullmatch(record.getMessage()):
            self.chunks.append((record.created, int(match.group(2))))


def gpu_sampler() -> subprocess.Popen | None:
    """`nvidia-smi` printing the GPU's utilisation every 200 ms, or None without one."""
    if not shutil.which("nvidia-smi"):
        return None
    command = ["nvidia-smi", "--query-gpu=timestamp,utilization.gpu", "--format=csv,noheader,nounits", "-lms", "200"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def utilisation(sampler: subprocess.Popen | None, since: float, until: float) -> str:
    """The mean of the samples taken between `since` and `until` (epoch seconds), as text."""
    if sampler is None:
        return "n/a (no nvidia-smi)"
    sampler.terminate()
    samples = []
    for line in sampler.communicate()[0].splitlines():
        stamp, _, value = line.partition(", ")
        try:  # nvidia-smi's timestamp: 2026/12/06 09:00:00.123, local time
            when = time.mktime(time.strptime(stamp[:19], "%Y/%m/%d %H:%M:%S")) + float("0" + stamp[19:])
            samples.append((when, float(value)))
        except ValueError:
            continue
    steady = [value for when, value in samples if since <= when <= until] or [value for _, value in samples]
    return f"{sum(steady) / len(steady):.0f}% ({len(steady)} samples)" if steady else "n/a (no samples)"


def report(label: str, started: float, ended: float, chunks: list[tuple[float, int]], util: str, job: int) -> None:
    for number, (when, candidates) in enumerate(chunks):
        print(f"  chunk {number}: +{when - started:7.2f} s, {candidates} pairs written")
    total = chunks[-1][1]
    # the later two thirds but the last chunk: with --queue_ahead the last two are written one after the other
    first, last = len(chunks) // 3, max(len(chunks) // 3, len(chunks) - 2)
    (since, done_then), (until, done) = chunks[first], chunks[last]
    steady = (done - done_then) / (until - since) if last > first else total / (chunks[-1][0] - started)
    start_up = chunks[0][0] - started - chunks[0][1] / steady
    job_minutes = (start_up + job / steady) / 60
    print(f"chunk timings ({label}): {total} pairs in {ended - started:.1f} s = {total / (ended - started):.1f} "
          f"pairs/s end to end; steady {steady:.1f} pairs/s over chunks {first + 1}-{last}; start-up "
          f"{start_up:.1f} s; GPU utilisation {util}; {job} pairs: {job_minutes:.1f} min")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", required=True)
    parser.add_argument("--started", type=float, default=None, help="Epoch seconds the process was launched.")
    parser.add_argument("--job_pairs", type=int, default=6_980_000)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- SCRIPT [ITS FLAGS]")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    started = args.started or time.time()
    log = ChunkLog()
    logger = logging.getLogger("reranker.inference.score_file")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # its other lines (info) are not needed here; the chunks are printed at the end
    logger.addHandler(log)
    sampler = gpu_sampler()
    sys.argv = command
    try:
        runpy.run_path(command[0], run_name="__main__")
    except SystemExit as exit:
        if exit.code:
            raise
    ended = time.time()
    if not log.chunks:
        sys.exit("no chunk was written (a finished output is not scored again: remove it first)")
    since, until = log.chunks[len(log.chunks) // 3][0], log.chunks[max(len(log.chunks) // 3, len(log.chunks) - 2)][0]
    report(args.label, started, ended, log.chunks, utilisation(sampler, since, until), args.job_pairs)


if __name__ == "__main__":
    main()
