#!/usr/bin/env bash
# The GPU figures of issues 4 and 6 in one device run (prepare with benchmarks/gpu_prep.sh first):
#   1. host-side encoding pairs/s (must stay well above the GPU's scoring rate);
#   2. scoring of a BERT-base-shaped cross-encoder (random weights) on real dev600 text, q/p 16/128, bf16: ours
#      against the reference-style loop and sentence-transformers on dev600, then ours alone on dev600 x20
#      (target: >= 15,000 pairs/s on one H100);
#   3. training groups/s, same model, 8 groups x 8, bf16: ours against fixed padding (target: >= 2x).
# Everything it prints also goes to $OUT/gpu_check.log. DEVICE=cpu REPEAT=1 LIMIT=200 STEPS=2 tries it on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
G=.gpu
OUT=${OUT:-/tmp/gpu_check}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
if ! python3 -c "import datasets, ir_measures" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $G/whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
[[ $DEVICE == cuda ]] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
MODEL=/tmp/bert-base-random
python3 -m reranker.random_model --tokenizer $G/tokenizer --output $MODEL
echo "== host side: reading and encoding pairs, no model =="
python3 benchmarks/bench_encoding.py --model $MODEL --input $G/dev600.rerank.jsonl --repeat 2
echo "== scoring, bf16, dev600: ours against the reference loop and sentence-transformers =="
python3 benchmarks/bench_scoring.py --model $MODEL --input $G/dev600.rerank.jsonl --device "$DEVICE" --bf16 \
  ${LIMIT:+--limit $LIMIT} --batch_size "${BATCH:-512}"
echo "== scoring throughput, bf16, dev600 x${REPEAT:-20}: ours alone =="
python3 benchmarks/bench_scoring.py --model $MODEL --input $G/dev600.rerank.jsonl --device "$DEVICE" --bf16 \
  --repeat "${REPEAT:-20}" ${LIMIT:+--limit $LIMIT} --batch_size "${BATCH:-512}" --chunk_size 250000 \
  --skip_reference --skip_sentence_transformers
echo "== training, bf16 =="
# the dataloader workers fork: tokenizers' own threads must stay off there
TOKENIZERS_PARALLELISM=false python3 benchmarks/bench_training.py --model $MODEL --train $G/train.jsonl.gz \
  --steps "${STEPS:-60}" --bf16 --dataloader_num_workers 2
