"""Tevatron-format training data from a first-stage run and qrels (the command: `python -m reranker.mine_negatives`).

For every query with a judged-relevant passage in the corpus: the positives are its passages judged at least
`min_positive_grade`; the negatives come from the run's candidates ranked `skip_top + 1` to `depth`, leaving out
every passage judged relevant (grade >= 1) to that query. Sampling `random` (Tevatron's recipe) draws
`n_negatives` of them with a generator seeded by (seed, query id); `top` takes the highest-ranked.
Either way the chosen negatives are written in rank order. Queries that end up without a positive or without a
negative are dropped and reported.

`extend_train_file` adds candidates to the rows of an existing training file instead: each row keeps its passages
and gets the run's candidates that are not among them appended to its negatives, until it has `n_negatives`
(more candidates for a teacher to score: distillation learns from every passage of a row, relevant or not).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace

from tqdm import tqdm

from reranker.io.corpus import Passage, load_passages
from reranker.io.errors import InputError, ParameterError, check_at_least, literal
from reranker.io.qrels import Qrels
from reranker.io.runs import Run, RunEntry, ranked
from reranker.io.summary import write_summary
from reranker.io.textio import atomic_output
from reranker.io.train_rows import PASSAGE_LISTS, format_train_row, iter_train_file

SAMPLING = ("random", "top")
SHOWN_IDS = 10  # query ids listed per reason when reporting dropped queries


@dataclass(frozen=True)
class MiningOptions:
    depth: int = 200
    n_negatives: int = 30
    skip_top: int = 0
    sampling: str = "random"
    seed: int = 42
    min_positive_grade: int = 1

    def check(self) -> None:
        """ParameterError for a nonsensical combination, before any file is read."""
        check_at_least("depth", self.depth, 1)
        check_at_least("n_negatives", self.n_negatives, 1)
        if not 0 <= self.skip_top < self.depth:
            raise ParameterError(f"{{0}} must be >= 0 and below {{1}} ({self.depth}), got {self.skip_top}",
                                 "skip_top", "depth")  # fmt: skip
        if self.sampling not in SAMPLING:
            raise ParameterError(f"{{0}} must be one of {', '.join(SAMPLING)}, got {literal(repr(self.sampling))}",
                                 "sampling")  # fmt: skip
        check_at_least("min_positive_grade", self.min_positive_grade, 1)


@dataclass
class MiningStats:
    queries_written: int = 0
    positives: int = 0
    negatives: int = 0
    fewer_negatives: int = 0  # written with fewer than n_negatives
    positives_missing: int = 0  # judged positives without text in the corpus (left out)
    without_judged_positive: int = 0  # queries with no passage judged >= min_positive_grade
    qrels_without_query: int = 0  # qrels queries absent from the query set
    dropped: dict[str, list[str]] = field(default_factory=dict)  # reason -> query ids

    def drop(self, reason: str, qid: str) -> None:
        self.dropped.setdefault(reason, []).append(qid)

    def report(self) -> str:
        """One line per kind of dropped query, with the first few ids."""
        lines = []
        for reason, qids in self.dropped.items():
            shown = " ".join(qids[:SHOWN_IDS]) + (" ..." if len(qids) > SHOWN_IDS else "")
            lines.append(f"dropped {len(qids)} queries {reason}: {shown}")
        if self.without_judged_positive:
            lines.append(f"skipped {self.without_judged_positive} queries with no judged positive in the qrels")
        if self.qrels_without_query:
            lines.append(f"skipped {self.qrels_without_query} qrels queries that are not in the query set")
        if self.positives_missing:
            lines.append(f"left out {self.positives_missing} judged positives that are not in the corpus")
        if self.fewer_negatives:
            lines.append(f"{self.fewer_negatives} queries have fewer negatives than asked for")
        return "\n".join(lines)


NO_POSITIVE_IN_CORPUS = "without a positive in the corpus"
NOT_IN_RUN = "missing from the run"
NO_NEGATIVE = "without a negative candidate"


def window(entries: list[RunEntry], options: MiningOptions) -> list[RunEntry]:
    """The candidates ranked skip_top + 1 .. depth, in rank order."""
    return ranked(entries)[options.skip_top : options.depth]


def choose_negatives(qid: str, candidates: list[RunEntry], options: MiningOptions) -> list[RunEntry]:
    """Pick n_negatives from the (already filtered) candidates; the result keeps their rank order."""
    if len(candidates) <= options.n_negatives:
        return list(candidates)
    if options.sampling == "top":
        return candidates[: options.n_negatives]
    # seeded by (seed, qid), so a query's negatives do not depend on the other queries or their order
    picked = set(random.Random(f"{options.seed}:{qid}").sample(range(len(candidates)), options.n_negatives))
    return [entry for position, entry in enumerate(candidates) if position in picked]


def check_in_corpus(candidates: list[RunEntry], passages: dict[str, Passage], run_path: str) -> None:
    """InputError naming the run line of the first candidate whose passage the corpus lacks."""
    for entry in candidates:
        if entry.docid not in passages:
            raise InputError(run_path, entry.line, f"passage {entry.docid!r} is not in the corpus")


def mine_rows(
    queries: dict[str, str],
    qrels: Qrels,
    run: Run,
    run_path: str,
    passages: dict[str, Passage],
    options: MiningOptions,
    stats: MiningStats,
) -> Iterator[dict]:
    """Yield one Tevatron training row per usable query, in query-set order; drops are counted in `stats`."""
    stats.qrels_without_query = sum(1 for qid in qrels if qid not in queries)
    for qid, query in tqdm(queries.items(), desc="mining negatives", unit=" queries"):
        judged = qrels.get(qid, {})
        # grade descending, then qrels order (sorted() is stable)
        wanted = sorted((d for d, g in judged.items() if g >= options.min_positive_grade), key=lambda d: -judged[d])
        if not wanted:
            stats.without_judged_positive += 1
            continue
        positives = [passages[docid] for docid in wanted if docid in passages]
        stats.positives_missing += len(wanted) - len(positives)
        if not positives:
            stats.drop(NO_POSITIVE_IN_CORPUS, qid)
            continue
        if qid not in run:
            stats.drop(NOT_IN_RUN, qid)
            continue
        candidates = [entry for entry in window(run[qid], options) if judged.get(entry.docid, 0) < 1]
        check_in_corpus(candidates, passages, run_path)
        negatives = choose_negatives(qid, candidates, options)
        if not negatives:
            stats.drop(NO_NEGATIVE, qid)
            continue
        stats.queries_written += 1
        stats.positives += len(positives)
        stats.negatives += len(negatives)
        stats.fewer_negatives += len(negatives) < options.n_negatives
        yield {
            "query_id": qid,
            "query": query,
            "positive_passages": [p._asdict() for p in positives],
            "negative_passages": [passages[entry.docid]._asdict() for entry in negatives],
        }


def wanted_passages(queries: dict[str, str], qrels: Qrels, run: Run, options: MiningOptions) -> set[str]:
    """Ids whose text mining needs: the queries' positives and every candidate in their windows."""
    wanted: set[str] = set()
    for qid in queries:
        judged = qrels.get(qid, {})
        wanted.update(docid for docid, grade in judged.items() if grade >= options.min_positive_grade)
        wanted.update(entry.docid for entry in window(run.get(qid, []), options))
    return wanted


def mine_negatives(
    queries: dict[str, str],
    qrels: Qrels,
    run: Run,
    run_path: str,
    corpus: str,
    output: str,
    options: MiningOptions | None = None,
    arguments: dict | None = None,
) -> MiningStats:
    """Write the training JSONL (gzipped when `output` ends in .gz) with its summary, and return what was written
    and dropped."""
    started = time.perf_counter()
    options = options or MiningOptions()
    options.check()
    passages = load_passages(corpus, wanted_passages(queries, qrels, run, options))
    stats = MiningStats()
    rows = mine_rows(queries, qrels, run, run_path, passages, options, stats)
    with atomic_output(output) as out:
        out.writelines(map(format_train_row, rows))
    write_summary(output, "mine negatives", arguments or {}, **asdict(stats),
                  seconds=round(time.perf_counter() - started, 3))  # fmt: skip
    return stats


@dataclass
class ExtensionStats:
    rows: int = 0
    added: int = 0  # negatives appended, over all rows
    fewer_negatives: int = 0  # rows left with fewer than n_negatives negatives
    not_in_run: int = 0  # rows whose query the run has no candidates for (written as they were)

    def report(self) -> str:
        lines = [f"{self.not_in_run} rows have no candidates in the run"] if self.not_in_run else []
        if self.fewer_negatives:
            lines.append(f"{self.fewer_negatives} rows have fewer negatives than asked for")
        return "\n".join(lines)


def train_file_queries(path: str) -> dict[str, str]:
    """The query of each row of a Tevatron training file, by query id: the queries to search for its rows.

    Raises:
        InputError: naming the line of a row that has no query id or already has teacher scores.
    """
    queries = {}
    for line, _, row in iter_train_file(path):
        if not row["query_id"]:
            raise InputError(path, line, "field 'query_id' is missing or empty: rows are matched to the run by it")
        if row["positive_passages"][0]["score"] is not None:
            raise InputError(path, line, "the row has teacher scores: add candidates before the teacher stage, "
                             "which scores them all")  # fmt: skip
        queries[row["query_id"]] = row["query"]
    return queries


def extend_rows(
    path: str, run: Run, run_path: str, passages: dict[str, Passage], qrels: Qrels, options: MiningOptions,
    stats: ExtensionStats,
) -> Iterator[dict]:  # fmt: skip
    """Yield each row of the training file at `path` as written, with the run's candidates that are not already
    among its passages (nor judged relevant in `qrels`) appended to its negatives, up to `options.n_negatives`."""
    for _, record, row in tqdm(iter_train_file(path), desc="adding candidates", unit=" rows"):
        qid, judged = row["query_id"], qrels.get(row["query_id"], {})
        have = {passage["docid"] for key in PASSAGE_LISTS for passage in row[key]}
        candidates = [entry for entry in window(run.get(qid, []), options)
                      if entry.docid not in have and judged.get(entry.docid, 0) < 1]  # fmt: skip
        check_in_corpus(candidates, passages, run_path)
        needed = options.n_negatives - len(row["negative_passages"])
        added = choose_negatives(qid, candidates, replace(options, n_negatives=needed)) if needed > 0 else []
        record["negative_passages"] = [*record["negative_passages"], *(passages[e.docid]._asdict() for e in added)]
        stats.rows += 1
        stats.added += len(added)
        stats.not_in_run += qid not in run
        stats.fewer_negatives += len(record["negative_passages"]) < options.n_negatives
        yield record


def extend_train_file(
    train_path: str,
    run: Run,
    run_path: str,
    corpus: str,
    output: str,
    options: MiningOptions | None = None,
    qrels: Qrels | None = None,
    arguments: dict | None = None,
    queries: dict[str, str] | None = None,
) -> ExtensionStats:
    """Write the rows of a Tevatron training file with more negatives from a first-stage run, and a summary.

    Args:
        train_path: a Tevatron training JSONL (`.gz` too) whose rows have query ids and no teacher scores yet.
        run: candidates by query id (`read_run`); its top `options.depth` after `options.skip_top` are eligible.
        run_path: the run's file, named in errors.
        corpus: the passages' texts (JSONL, TSV or a Hub corpus).
        output: the training JSONL to write (gzipped when it ends in .gz).
        options: `n_negatives` is the count each row's negatives are filled up to; `sampling` `top` appends the
            best-ranked candidates, `random` a seeded sample of them (in rank order either way).
        qrels: judgments whose relevant passages (grade >= 1) are never added; the rows' own passages never are.
        arguments: settings to record in the summary.
        queries: the rows' queries as `train_file_queries` gives them, when the caller has read them already
            (to search them); else they are read here.

    Returns:
        Rows written, negatives added, rows left short and rows the run has no candidates for.

    Example:
        >>> queries = train_file_queries("train.jsonl.gz")  # search these, e.g. with BM25, into run.trec
        >>> extend_train_file("train.jsonl.gz", read_run("run.trec"), "run.trec", "corpus.jsonl.gz",
        ...                   "train64.jsonl.gz", MiningOptions(n_negatives=64, sampling="top"))
    """
    started = time.perf_counter()
    options = options or MiningOptions()
    options.check()
    queries = train_file_queries(train_path) if queries is None else queries
    wanted = {entry.docid for qid in queries for entry in window(run.get(qid, []), options)}
    passages = load_passages(corpus, wanted)
    stats = ExtensionStats()
    with atomic_output(output) as out:
        out.writelines(map(format_train_row, extend_rows(train_path, run, run_path, passages, qrels or {}, options,
                                                         stats)))  # fmt: skip
    write_summary(output, "add candidates", arguments or {}, **asdict(stats),
                  seconds=round(time.perf_counter() - started, 3))  # fmt: skip
    return stats
