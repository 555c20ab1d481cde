"""`python -m reranker.teacher_scores --teacher MODEL --input TRAIN --output TRAIN_WITH_SCORES`: score every passage
of every training row with a teacher (a cross-encoder, or a sentence-transformers bi-encoder), for distillation.

`python -m reranker.teacher_scores --triples SCORES.tsv --queries Q.tsv --collection C.tsv --output OUT` turns
published teacher scores (`pos_score<TAB>neg_score<TAB>qid<TAB>pid_pos<TAB>pid_neg`, Hofstätter et al.'s MS MARCO
file) into training rows with scores instead."""

from __future__ import annotations

import argparse

from reranker.cli.common import exits_on_bad_input, setup_logging
from reranker.io.errors import ParameterError
from reranker.training.teacher_scores import TEACHER_TYPES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reranker.teacher_scores", description=__doc__)
    parser.add_argument("--teacher", default=None, help="Teacher folder or Hub name.")
    parser.add_argument("--triples", default=None, help="Instead of --teacher: a teacher-scored triples TSV.")
    parser.add_argument("--queries", default=None, help="With --triples: the queries, qid<TAB>query.")
    parser.add_argument("--collection", default=None, help="With --triples: the passages, pid<TAB>text.")
    parser.add_argument(
        "--teacher_type", default=None, choices=TEACHER_TYPES,
        help="Default: bi-encoder for a sentence-transformers folder with a pooling module, else cross-encoder.",
    )  # fmt: skip
    parser.add_argument("--input", default=None, help="Training JSONL (.gz too): Tevatron or FlagEmbedding rows.")
    parser.add_argument("--output", required=True, help="The rows with scores (gzipped if it ends in .gz).")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU, or a CPU with native bf16).")
    parser.add_argument("--fp16", action="store_true", help="fp16 autocast (GPU only).")
    parser.add_argument(
        "--batch_size", type=int, default=None,
        help="Pairs or texts per forward pass (default: 128; a bi-encoder on a CPU 32, where it is fastest).",
    )  # fmt: skip
    parser.add_argument("--q_max_len", type=int, default=16, help="Cross-encoder: query tokens (default 16).")
    parser.add_argument("--p_max_len", type=int, default=128, help="Cross-encoder: passage tokens (default 128).")
    parser.add_argument("--tokenizer_name", default=None, help="Cross-encoder: tokenizer, if the folder has none.")
    parser.add_argument("--chunk_size", type=int, default=20000, help="Passages per chunk (whole rows).")
    parser.add_argument("--device", default=None, help="cuda, cuda:N or cpu (default: cuda if available).")
    return parser


@exits_on_bad_input(flag_names={"tokenizer": "tokenizer_name"})
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = build_parser().parse_args(argv)
    if args.triples:
        return _import_triples(args)
    if not (args.teacher and args.input):
        raise ParameterError("give {0} and {1} (or {2}, {3} and {4})", "teacher", "input", "triples", "queries",
                             "collection")  # fmt: skip
    from reranker.api import Reranker
    from reranker.distributed import World
    from reranker.model.precision import precision_name
    from reranker.training.teacher_scores import (
        BiEncoderTeacher,
        CrossEncoderTeacher,
        detect_teacher_type,
        score_training_file,
    )  # fmt: skip

    precision = precision_name(args.fp16, args.bf16)
    if (args.teacher_type or detect_teacher_type(args.teacher)) == "bi-encoder":
        device = World.from_environment().device(args.device)
        batch_size = args.batch_size or (32 if device.type == "cpu" else 128)
        teacher = BiEncoderTeacher(args.teacher, device, precision, batch_size)
    else:
        teacher = CrossEncoderTeacher(Reranker.from_pretrained(
            args.teacher, tokenizer=args.tokenizer_name, q_max_len=args.q_max_len, p_max_len=args.p_max_len,
            device=args.device, precision=precision, batch_size=args.batch_size or 128,
        ).scorer)  # fmt: skip
    stats = score_training_file(teacher, args.teacher, args.input, args.output, chunk_size=args.chunk_size,
                                arguments=vars(args))  # fmt: skip
    print(f"wrote {stats.rows} rows ({stats.passages} passages scored) to {args.output}")


def _import_triples(args: argparse.Namespace) -> None:
    from reranker.io.teacher_triples import import_teacher_triples

    if not (args.queries and args.collection) or args.teacher or args.input:
        raise ParameterError("{0} goes with {1} and {2}, not with {3} or {4}", "triples", "queries", "collection",
                             "teacher", "input")  # fmt: skip
    stats = import_teacher_triples(args.triples, args.queries, args.collection, args.output, arguments=vars(args))
    print(
        f"wrote {stats.queries} rows ({stats.positives} positives, {stats.negatives} negatives, from "
        f"{stats.triples} triples) to {args.output}"
    )
