"""The short model card (README.md) written into every trained model folder."""

from __future__ import annotations

import datetime
from pathlib import Path

MODEL_CARD = """---
library_name: transformers
pipeline_tag: text-classification
tags: [cross-encoder, reranker, ms-marco]
---
# Cross-encoder reranker

Trained {date} with the loss `{loss_name}` over groups of each query's positive and {negatives} negatives.
{head}

| | |
|---|---|
| base model | `{base}` |
| training data | `{data}` ({queries} queries) |
| steps / epochs | {steps} / {epochs:g} |
| batch | {batch} queries x {group} passages per device |
| learning rate, warmup | {lr:g}, {warmup:g} |
| lengths | query {q_max_len}, passage {p_max_len} tokens ({layout}) |
| precision, seed | {precision}, {seed} |
| final training loss | {loss} |

## Evaluation

{evaluation}

## Use

The score of a pair is the raw logit (higher is more relevant).

```bash
python reranker_inference.py --model_name_or_path {path} --encode_in_path RERANK.jsonl \\
  --q_max_len {q_max_len} --p_max_len {p_max_len} --encoded_save_path SCORES.txt
```

```python
{usage}
```
"""
SENTENCE_TRANSFORMERS_USE = """{import_line}from sentence_transformers import CrossEncoder
scores = CrossEncoder("{path}").predict([("query", "passage")])  # raw logits: the config sets Identity"""
RERANKER_USE = """from reranker import Reranker  # the decoder head and prompt are in reranker_head.json; a LoRA
scores = Reranker.from_pretrained("{path}").predict([("query", "passage")])  # adapter loads on its base model
# Outside the package (a full or --merge_lora folder): the prompt is the tokenizer's chat template, over a "query"
# and a "document" message, and the padding token is not EOS; raw logits, as above (prompt="..." for yes_no: the
# task instruction). A yes_no model with other tokens than yes/no: python -m reranker.export --to seq_cls first.
from sentence_transformers import CrossEncoder
scores = CrossEncoder("{path}").predict([("query", "passage")])"""


def _evaluation(log_history: list[dict], eval_file: str | None) -> str:
    evaluations = [entry for entry in log_history if "eval_mrr_at_10" in entry]
    if not evaluations:
        return "Not evaluated during training (give --eval_rerank_file and --eval_qrels)."
    last = evaluations[-1]
    best = max(evaluations, key=lambda entry: entry["eval_mrr_at_10"])
    rows = [f"| last (step {last['step']}) | {last['eval_mrr_at_10']:.4f} | {last['eval_ndcg_at_10']:.4f} |"]
    if best is not last:
        rows.append(f"| best (step {best['step']}) | {best['eval_mrr_at_10']:.4f} | {best['eval_ndcg_at_10']:.4f} |")
    return f"Reranking `{eval_file}`:\n\n| checkpoint | MRR@10 | nDCG@10 |\n|---|---|---|\n" + "\n".join(rows)


HEADS = {
    "cls": ("A linear head on the [CLS] state scores a pair.", ""),
    "segment_cosine": (
        "It scores a pair by the cosine of the mean states of its query and its passage, both read in one joint "
        "pass (`BertForSegmentCosine`, from the `reranker` package).",
        "import reranker  # registers BertForSegmentCosine, this model's class, with transformers\n",
    ),
    "last_token": (
        "A decoder LLM scores a pair by a linear layer on the final state of its last token (RankLLaMA's "
        "head), reading it through the prompt in `reranker_head.json`.",
        None,
    ),
    "yes_no": (
        'A decoder LLM scores a pair by its log-probability of "yes" minus that of "no" after the '
        "prompt in `reranker_head.json` (Qwen3-Reranker's head; sigmoid(score) = P(yes)).",
        None,
    ),
}


def write_model_card(
    output_dir: str, model_args, data_args, training_args, state, queries: int, score_head: str = "cls"
) -> Path:
    """Write output_dir/README.md from the arguments and the Trainer's state (`score_head`: the model's)."""
    head, import_line = HEADS[score_head]
    losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
    precision = "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32"
    text = MODEL_CARD.format(
        date=datetime.date.today().isoformat(),
        negatives=data_args.train_n_passages - 1,
        loss_name=training_args.ranking_loss,
        base=model_args.model_name_or_path,
        data=data_args.dataset_name,
        queries=queries,
        steps=state.global_step,
        epochs=state.epoch or 0,
        batch=training_args.per_device_train_batch_size,
        group=data_args.train_n_passages,
        lr=training_args.learning_rate,
        warmup=training_args.warmup_steps,
        q_max_len=data_args.q_max_len,
        p_max_len=data_args.p_max_len,
        layout="`[CLS] q [SEP] p [SEP]`, only_first truncation"
        if import_line is not None
        else "each cut alone, then put into the prompt",
        precision=precision,
        seed=training_args.seed,
        loss=f"{losses[-1]:.4f}" if losses else "n/a",
        evaluation=_evaluation(state.log_history, data_args.eval_rerank_file),
        path=output_dir,
        head=head,
        usage=RERANKER_USE.format(path=output_dir)
        if import_line is None
        else SENTENCE_TRANSFORMERS_USE.format(path=output_dir, import_line=import_line),
    )
    path = Path(output_dir) / "README.md"
    path.write_text(text)
    return path
