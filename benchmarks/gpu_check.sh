#!/usr/bin/env bash
# Issue 26's GPU figures in one device run (prepare with benchmarks/gpu_prep.sh first), most important first:
#   1. the `cuda` tests (scores on the GPU against the CPU's, ties, bf16/fp16 training steps, gradient caching
#      with dropout on);
#   2. scoring a BERT-base-shaped cross-encoder (random weights) on real dev600 text, q/p 16/128, bf16: ours
#      against the reference-style loop and sentence-transformers;
#   3. the model alone on pre-encoded pairs by batch size, and torch.profiler's top kernels; the same with bf16
#      weights instead of autocast, and with SDPA kept off cuDNN;
#   4. `reranker_inference.py` end to end (interpreter start, model load and file I/O included) on dev600 x20;
#   5. training groups/s, 8 groups x 8, bf16: fixed padding, dynamic padding, length buckets; then with the fused
#      AdamW and a profile of 3 steps;
#   6. training memory (torch.cuda.max_memory_allocated): groups of 8, and of 32 with 64 pairs a forward;
#   7. host-side encoding pairs/s (reading and tokenizing, no model);
#   8. an LLM reranker of Qwen3-0.6B's shape (random weights, a corpus-trained tokenizer): reranker_inference.py
#      with the yes_no head, bf16, q/p 32/192 on dev600; LoRA training steps/s and memory at groups of 16;
#   9. the HTTP server (`python -m reranker.serve`, bf16) under 64 and 256 closed-loop clients sending whole dev600
#      requests (a query and its 20 passages), with and without batching across requests.
#  10. (`chunks`, issue 37) `reranker_inference.py` on dev600 x25 (300,000 pairs), batch 1024, bf16, one process per
#      variant: today's; --fixed_shapes (a few batch shapes: lengths to multiples of 32, partial batches filled);
#      + --device_mask (the 4D mask built on the GPU: no sync a batch); + --queue_ahead (chunk k+1 queued before
#      chunk k's scores are read); + --cast_weights (bf16 weights, head fp32); the last three without fixed shapes.
#      Each prints its chunks' times and "chunk timings (VARIANT): ... end to end; steady ... pairs/s; start-up ...
#      s; GPU utilisation ...; 6980000 pairs: ... min". About 1 min a variant at today's rate, less if faster.
#      CHUNK_VARIANTS="FLAGS;FLAGS;..." replaces the list ("" in it: today's), e.g. to add --torch_compile.
#  11. (`trainsync`, issue 37) training as in 5 with adamw_torch_fused, the loss logged once and the NaN check off.
# Each stage has its own time limit and goes on after a failure; the log goes to $OUT/gpu_check.log.
# STAGES="tests compare model e2e chunks train trainsync memory host llm serving" (default: all) picks stages by name.
# Issue 37's run (estimated 7-9 min from issue 26's rates, not yet timed): STAGES="tests chunks train trainsync" bash benchmarks/gpu_check.sh
# Its dry run on a CPU: STAGES="chunks trainsync" STEPS=2 DEVICE=cpu LAYERS=2 HIDDEN=128 HEADS=2 LIMIT=200 \
#   CHUNK_REPEAT=20 CHUNK_SIZE=1000 bash benchmarks/gpu_check.sh
# A dry run on a CPU: DEVICE=cpu LAYERS=2 HIDDEN=128 HEADS=2 LIMIT=200 REPEAT=2 STEPS=2 LLM_LAYERS=2 LLM_HIDDEN=64 \
#   LLM_HEAD_DIM=16 LLM_STEPS=3 bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
G=.gpu
OUT=${OUT:-/tmp/gpu_check}
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-512}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
if ! python3 -c "import datasets, ir_measures, peft, fastapi, uvicorn, prometheus_client, httpx" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $G/whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 RERANKER_TEST_TOKENIZER=$G/tokenizer
STARTED=$SECONDS
FAILED=()
STAGES=" ${STAGES:-tests compare model e2e chunks train trainsync memory host llm serving} "
picked() { [[ $STAGES == *" $1 "* ]]; }
stage() {  # stage NAME LIMIT_S COMMAND...: time one stage, keep going if it fails
  local name=$1 limit=$2 begun=$SECONDS
  shift 2
  echo "== [$((SECONDS - STARTED)) s] $name =="
  timeout "$limit" "$@" || { echo "!! $name failed (exit $?)"; FAILED+=("$name"); }
  echo "-- $name: $((SECONDS - begun)) s"
}
git log -1 --format='commit %H %s' 2>/dev/null || true
[[ $DEVICE == cuda ]] && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
echo "cpus $(nproc); $(grep -m1 'model name' /proc/cpuinfo)"
python3 -c "import torch, transformers, pyarrow, sentence_transformers as st; print('torch', torch.__version__, 'transformers', transformers.__version__, 'pyarrow', pyarrow.__version__, 'sentence-transformers', st.__version__, 'tf32 matmul', torch.backends.cuda.matmul.allow_tf32)"

picked tests && stage "cuda tests" 150 python3 -m pytest -q -m cuda -rA -s -p no:cacheprovider tests/inference/test_cuda_scoring.py \
  tests/training/test_cuda_training.py tests/training/test_grad_cache.py

MODEL=/tmp/bert-random
python3 -m reranker.random_model --tokenizer $G/tokenizer --output $MODEL --layers "${LAYERS:-12}" \
  --hidden "${HIDDEN:-768}" --heads "${HEADS:-12}" > /dev/null

picked compare && stage "scoring dev600, bf16: ours, reference loop, sentence-transformers" 150 python3 benchmarks/bench_scoring.py \
  --model $MODEL --input $G/dev600.rerank.jsonl --device "$DEVICE" --bf16 ${LIMIT:+--limit $LIMIT} --batch_size "$BATCH"

if picked model; then
  for variant in "" --cast_weights --no_cudnn_attention; do
    stage "model alone by batch size, and profile ${variant:-(autocast)}" 90 python3 benchmarks/profile_scoring.py \
      --model $MODEL --input $G/dev600.rerank.jsonl --device "$DEVICE" --bf16 --pairs "${LIMIT:-12000}" \
      --batch_sizes 512 1024 --profile_batches $([[ -z $variant ]] && echo 8 || echo 0) $variant
  done
fi

repeated() {  # repeated N: dev600 N times over (LIMIT pairs of it) in /tmp/dev600xN.rerank.jsonl
  python3 -c "import sys; sys.path.insert(0, 'benchmarks'); from pathlib import Path
from bench_scoring import read_pairs, write_input
write_input(read_pairs(sys.argv[1], ${LIMIT:-None}, int(sys.argv[2])), Path(sys.argv[3]))" \
    $G/dev600.rerank.jsonl "$1" "/tmp/dev600x$1.rerank.jsonl"
  echo "$(wc -l < "/tmp/dev600x$1.rerank.jsonl") pairs in /tmp/dev600x$1.rerank.jsonl"
}
REPEATED=/tmp/dev600x${REPEAT:-20}.rerank.jsonl
picked e2e && repeated "${REPEAT:-20}"
end_to_end() {  # end_to_end LABEL [FLAGS...]: reranker_inference.py on $REPEATED, timed from the shell
  local label=$1 begun
  shift
  rm -f /tmp/scores.txt /tmp/scores.txt.*  # a finished output would be taken as done
  begun=$(date +%s.%N)
  stage "reranker_inference.py end to end, dev600 x${REPEAT:-20}, bf16, $label" 150 python3 $LAUNCHER \
    reranker_inference.py --model_name_or_path $MODEL --encode_in_path "$REPEATED" --encoded_save_path /tmp/scores.txt \
    --q_max_len 16 --p_max_len 128 --bf16 --device "$DEVICE" "$@"
  python3 -c "import sys; n = sum(1 for _ in open(sys.argv[1])); s = float(sys.argv[3]) - float(sys.argv[2])
print(f'end to end: {n} pairs in {s:.1f} s = {n / s:.1f} pairs/s ($label)')" /tmp/scores.txt "$begun" "$(date +%s.%N)"
}
if picked e2e; then
  LAUNCHER="" end_to_end "batch 1024" --per_device_eval_batch_size 1024
  LAUNCHER="" end_to_end "batch 1024, one chunk" --per_device_eval_batch_size 1024 --chunk_size 250000
  LAUNCHER=benchmarks/without_cudnn_attention.py end_to_end "batch 1024, cuDNN attention off" \
    --per_device_eval_batch_size 1024
fi

# Issue 37's variants, each in its own process on dev600 x25 (300,000 pairs: start-up amortised as in the real
# job), timed chunk by chunk (benchmarks/chunk_timings.py): steady pairs/s, start-up, GPU utilisation, 6.98M pairs
if picked chunks; then
  repeated "${CHUNK_REPEAT:-25}"
  IFS=';' read -ra variants <<< "${CHUNK_VARIANTS:-;--fixed_shapes;--fixed_shapes --device_mask;--fixed_shapes \
--device_mask --queue_ahead;--fixed_shapes --device_mask --queue_ahead --cast_weights;--device_mask --queue_ahead \
--cast_weights}"
  for variant in "${variants[@]}"; do
    rm -f /tmp/chunks.txt /tmp/chunks.txt.*  # a finished output would be taken as done
    # shellcheck disable=SC2086  # the variant's flags split on purpose
    stage "chunk timings, dev600 x${CHUNK_REPEAT:-25}, bf16, batch 1024 ${variant:-(today)}" 100 python3 \
      benchmarks/chunk_timings.py --label="${variant:-today}" --started "$(date +%s.%N)" -- reranker_inference.py \
      --model_name_or_path $MODEL --encode_in_path "/tmp/dev600x${CHUNK_REPEAT:-25}.rerank.jsonl" \
      --encoded_save_path /tmp/chunks.txt --q_max_len 16 --p_max_len 128 --bf16 --device "$DEVICE" \
      --per_device_eval_batch_size 1024 --chunk_size "${CHUNK_SIZE:-20000}" $variant
  done
fi

# the dataloader workers fork: tokenizers' own threads must stay off there
for optim in $(picked train && echo adamw_torch adamw_torch_fused); do
  stage "training groups/s, bf16, 8 x 8, $optim: fixed padding, dynamic, buckets" 120 env TOKENIZERS_PARALLELISM=false \
    python3 benchmarks/bench_training.py --model $MODEL --train $G/train.jsonl.gz --steps "${STEPS:-60}" --bf16 \
    --dataloader_num_workers 2 --optim $optim --profile_steps $([[ $optim == adamw_torch ]] && echo 0 || echo 3)
done

# issue 37: the fused AdamW without the Trainer's two host syncs a step (the loss logged every step, the NaN check)
picked trainsync && stage "training groups/s, bf16, 8 x 8, adamw_torch_fused, no sync a step" 120 env \
  TOKENIZERS_PARALLELISM=false python3 benchmarks/bench_training.py --model $MODEL --train $G/train.jsonl.gz \
  --steps "${STEPS:-60}" --bf16 --dataloader_num_workers 2 --optim adamw_torch_fused --no_step_sync

picked memory && stage "training memory: groups of 8, of 32 with 64 pairs a forward, of 32 at once" 150 python3 \
  benchmarks/bench_train_configs.py --model $MODEL --train $G/train.jsonl.gz --steps 4 --bf16 \
  --configs 8:none 32:64 32:none

picked host && stage "host side: reading and encoding pairs, no model" 60 python3 benchmarks/bench_encoding.py --model $MODEL \
  --input $G/dev600.rerank.jsonl --repeat 2

if picked llm; then
  LLM=/tmp/qwen3-0.6b-random
  python3 -m reranker.random_model --decoder qwen3 --corpus $G/corpus.jsonl.gz --output $LLM --layers "${LLM_LAYERS:-28}" \
    --hidden "${LLM_HIDDEN:-1024}" --heads 16 --kv_heads 8 --head_dim "${LLM_HEAD_DIM:-128}" > /dev/null
  rm -f /tmp/llm.scores.txt /tmp/llm.scores.txt.*
  stage "LLM reranker: reranker_inference.py, Qwen3-0.6B shape, yes_no, bf16, q/p 32/192, dev600" 150 python3 \
    reranker_inference.py --model_name_or_path $LLM --score_head yes_no --encode_in_path $G/dev600.rerank.jsonl \
    --encoded_save_path /tmp/llm.scores.txt --q_max_len 32 --p_max_len 192 --bf16 --device "$DEVICE" \
    --per_device_eval_batch_size 256
  python3 -c "import json; s = json.load(open('/tmp/llm.scores.txt.summary.json')); print('LLM reranker pairs/s:', s['pairs_per_second'])"
  stage "LLM reranker: training steps, groups of 16, bf16: full, LoRA, LoRA + checkpointing" 240 python3 \
    benchmarks/bench_llm_training.py --model $LLM --data $G --head yes_no --bf16 --steps "${LLM_STEPS:-8}" --batch 4 --group 16
fi

picked serving && stage "HTTP server, bf16, 64 and 256 clients, dev600 requests" 150 python3 benchmarks/bench_serving.py \
  --rerank_file $G/dev600.rerank.jsonl --workdir /tmp/bench_serving --model $MODEL --server_flags "--bf16 --device $DEVICE --per_device_eval_batch_size $BATCH" \
  --clients ${SERVING_CLIENTS:-64 256} --seconds "${SERVING_SECONDS:-20}" --baseline_requests 0 --overload_seconds 0

echo "== done in $((SECONDS - STARTED)) s; failed stages: ${FAILED[*]:-none} =="
