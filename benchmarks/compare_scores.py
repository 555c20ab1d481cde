"""How far a speed variant's score file is from the baseline's: the check a GPU run makes beside its timings.

    python benchmarks/compare_scores.py BASELINE_SCORES VARIANT_SCORES --label VARIANT

Prints one line: the largest |score difference| over the pairs, the score spread (max - min of the baseline), and
the share of queries ranked identically. Both files must hold the same queries and candidates.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reranker.io.runs import iter_score_blocks  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("baseline")
    parser.add_argument("variant")
    parser.add_argument("--label", default="variant")
    args = parser.parse_args()
    largest, same, queries, low, high = 0.0, 0, 0, float("inf"), float("-inf")
    for (qid, base), (other_qid, other) in zip(iter_score_blocks(args.baseline), iter_score_blocks(args.variant),
                                               strict=True):  # fmt: skip
        scores, other_scores = dict(base), dict(other)
        if qid != other_qid or scores.keys() != other_scores.keys():
            sys.exit(f"query {qid!r}: the two files do not hold the same query and candidates")
        largest = max(largest, *(abs(scores[docid] - other_scores[docid]) for docid in scores))
        low, high = min(low, *scores.values()), max(high, *scores.values())
        same += [docid for docid, _ in base] == [docid for docid, _ in other]
        queries += 1
    print(f"scores of {args.label} against the baseline: max |difference| {largest:.2e} (spread {high - low:.3g}); "
          f"{same} of {queries} queries ranked identically")  # fmt: skip


if __name__ == "__main__":
    main()
