"""`python -m reranker.teacher_scores --teacher MODEL --input TRAIN --output TRAIN_WITH_SCORES`: score every passage
of every training row with a teacher (a cross-encoder, or a sentence-transformers bi-encoder), for distillation.
`--teacher A --teacher B --teacher_weights 0.8,0.2` scores with an ensemble of teachers instead. Rows that already
carry scores are refused unless --overwrite_scores; `--input TRAIN --has_scores` tells whether they all do.

`python -m reranker.teacher_scores --triples SCORES.tsv --queries Q.tsv --collection C.tsv --output OUT` turns
published teacher scores (`pos_score<TAB>neg_score<TAB>qid<TAB>pid_pos<TAB>pid_neg`, Hofstätter et al.'s MS MARCO
file) into training rows with scores instead."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from reranker.cli.common import exits_on_bad_input, setup_logging
from reranker.io.errors import ParameterError
from reranker.model.heads import DECODER_FLAGS
from reranker.model.prompt_template import unescape_flag

if TYPE_CHECKING:  # the training module imports torch: only once a teacher is needed
    from reranker.training.teacher_scores import Teacher


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reranker.teacher_scores", description=__doc__)
    parser.add_argument(
        "--teacher", action="append", default=None,
        help="Teacher folder or Hub name. Repeat it for an ensemble teacher: each teacher scores the file in turn "
        "(one model in memory at a time; its raw scores stay beside the output as OUTPUT.teacherN.scores, float32), "
        "and each row gets the weighted sum of the teachers' per-query z-scores. One teacher alone writes its raw "
        "scores.",
    )  # fmt: skip
    parser.add_argument(
        "--teacher_weights", default=None,
        help="With several --teacher: their weights, comma-separated, positive, in --teacher order, e.g. 0.8,0.2 "
        "(default: 1/N each, the teachers' mean).",
    )  # fmt: skip
    parser.add_argument("--triples", default=None, help="Instead of --teacher: a teacher-scored triples TSV.")
    parser.add_argument("--queries", default=None, help="With --triples: the queries, qid<TAB>query.")
    parser.add_argument("--collection", default=None, help="With --triples: the passages, pid<TAB>text.")
    parser.add_argument(
        "--teacher_type", default=None,
        help="cross-encoder or bi-encoder: one for all teachers, or comma-separated, one per --teacher. Default, "
        "for each teacher: bi-encoder for a sentence-transformers folder with a pooling module, else cross-encoder.",
    )  # fmt: skip
    parser.add_argument("--input", default=None, help="Training JSONL (.gz too): Tevatron or FlagEmbedding rows.")
    parser.add_argument("--output", default=None, help="The rows with scores (gzipped if it ends in .gz).")
    parser.add_argument(
        "--overwrite_scores", action="store_true",
        help="Replace the teacher scores rows already carry. Without it a row is refused (one error naming the "
        "file, line and field) if any of its passages has a score: a Tevatron passage's 'score', a FlagEmbedding "
        "row's 'pos_scores' or 'neg_scores' (null counts as none); so is a row mixing scored and unscored passages.",
    )  # fmt: skip
    parser.add_argument(
        "--has_scores", action="store_true",
        help="Score nothing: exit 0 if every passage of every --input row already carries a teacher score (what a "
        "teacher loss trains on, as training checks it), else 1. scripts/demo.sh skips this stage so.",
    )  # fmt: skip
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU, or a CPU with native bf16).")
    parser.add_argument("--fp16", action="store_true", help="fp16 autocast (GPU only).")
    parser.add_argument(
        "--batch_size", type=int, default=None,
        help="Pairs or texts per forward pass (default: 128; a bi-encoder on a CPU 32, where it is fastest).",
    )  # fmt: skip
    parser.add_argument("--q_max_len", type=int, default=None,
                        help="Cross-encoder: query tokens (default 16; an LLM teacher: 64).")  # fmt: skip
    parser.add_argument("--p_max_len", type=int, default=None,
                        help="Cross-encoder: passage tokens (default 128; an LLM teacher: 448).")  # fmt: skip
    parser.add_argument("--tokenizer_name", default=None, help="Cross-encoder: tokenizer, if the folder has none.")
    parser.add_argument(
        "--score_head", default=None, help="Cross-encoder: for a checkpoint that records none, e.g. yes_no for a "
        "Qwen3-Reranker (an LLM teacher: see train_reranker.py --help for the heads).",
    )  # fmt: skip
    for flag in DECODER_FLAGS:
        parser.add_argument(f"--{flag}", default=None, type=unescape_flag,
                            help="Decoder teacher: its prompt (train_reranker.py --help).")  # fmt: skip
    parser.add_argument("--chunk_size", type=int, default=20000, help="Passages per chunk (whole rows).")
    parser.add_argument("--device", default=None, help="cuda, cuda:N or cpu (default: cuda if available).")
    return parser


@exits_on_bad_input(flag_names={"tokenizer": "tokenizer_name"})
def main(argv: list[str] | None = None) -> int | None:
    setup_logging()
    args = build_parser().parse_args(argv)
    if args.has_scores:
        return _has_scores(args)
    if not args.output:
        raise ParameterError("{0} is required", "output")
    if args.triples:
        return _import_triples(args)
    if not (args.teacher and args.input):
        raise ParameterError("give {0} and {1} (or {2}, {3} and {4})", "teacher", "input", "triples", "queries",
                             "collection")  # fmt: skip
    from reranker.training.teacher_scores import TeacherLoader, score_with_teachers

    types = _teacher_types(args.teacher_type, args.teacher)
    loaders = [TeacherLoader(source, _loader(args, source, kind))
               for source, kind in zip(args.teacher, types, strict=True)]  # fmt: skip
    stats = score_with_teachers(loaders, args.input, args.output, weights=args.teacher_weights,
                                chunk_size=args.chunk_size, arguments=vars(args),
                                overwrite_scores=args.overwrite_scores)  # fmt: skip
    print(f"wrote {stats.rows} rows ({stats.passages} passages scored) to {args.output}")


def _teacher_types(given: str | None, teachers: list[str]) -> list[str]:
    """Each teacher's type: `--teacher_type` (one for all, or one per teacher), else detected from its folder."""
    from reranker.training.teacher_scores import check_teacher_type, detect_teacher_type

    if given is None:
        return [detect_teacher_type(teacher) for teacher in teachers]
    types = [kind.strip() for kind in given.split(",")]
    for kind in types:
        check_teacher_type(kind)
    if len(types) == 1:
        return types * len(teachers)
    if len(types) != len(teachers):
        raise ParameterError(f"{{0}} gives {len(types)} types for {len(teachers)} teachers in {{1}}",
                             "teacher_type", "teacher")  # fmt: skip
    return types


def _loader(args: argparse.Namespace, source: str, teacher_type: str) -> Callable[[], Teacher]:
    """What loads one teacher when its turn comes, with the command's settings."""

    def load() -> Teacher:
        from reranker.distributed import World
        from reranker.model.precision import precision_name
        from reranker.training.teacher_scores import BiEncoderTeacher, CrossEncoderTeacher

        precision = precision_name(args.fp16, args.bf16)
        if teacher_type == "bi-encoder":
            device = World.from_environment().device(args.device)
            batch_size = args.batch_size or (32 if device.type == "cpu" else 128)
            return BiEncoderTeacher(source, device, precision, batch_size)
        from reranker.api import Reranker

        return CrossEncoderTeacher(Reranker.from_pretrained(
            source, tokenizer=args.tokenizer_name, q_max_len=args.q_max_len, p_max_len=args.p_max_len,
            device=args.device, precision=precision, batch_size=args.batch_size or 128, score_head=args.score_head,
            **{flag: getattr(args, flag) for flag in DECODER_FLAGS},
        ).scorer)  # fmt: skip

    return load


def _has_scores(args: argparse.Namespace) -> int:
    """`--has_scores`: 0 if every passage of every --input row carries a teacher score, else 1."""
    from reranker.io.train_rows import train_source_has_teacher_scores

    if not args.input or args.teacher or args.output:
        raise ParameterError("{0} takes {1} alone, not {2} or {3}", "has_scores", "input", "teacher", "output")
    if train_source_has_teacher_scores(args.input):
        print(f"{args.input}: every passage carries a teacher score")
        return 0
    print(f"{args.input}: not every passage carries a teacher score")
    return 1


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
