#!/usr/bin/env bash
# Issue 26's GPU figures in one device run (prepare with benchmarks/gpu_prep.sh first), most important first:
#   1. the `cuda` tests (scores on the GPU against the CPU's, ties, bf16/fp16 training steps, gradient caching
#      with dropout on);
#   2. scoring a BERT-base-shaped cross-encoder (random weights) on real dev600 text, q/p 16/128, bf16: ours
#      against the reference-style loop and sentence-transformers;
#   3. the model alone on pre-encoded pairs by batch size, and torch.profiler's top kernels; the same with bf16
#      weights instead of autocast, and with SDPA kept off cuDNN;
#   4. `reranker_inference.py` end to end (interpreter start, model load and file I/O included) on dev600 x20;
#   5. training groups/s, 8 groups x 8, bf16: fixed padding, dynamic padding; then with the fused AdamW and a
#      profile of 3 steps (length buckets left out: 3-4x slower on the H200 in both of issue 26's runs);
#   6. training memory (torch.cuda.max_memory_allocated): groups of 8, and of 32 with 64 pairs a forward;
#   7. host-side encoding pairs/s (reading and tokenizing, no model);
#   8. an LLM reranker of Qwen3-0.6B's shape (random weights, a corpus-trained tokenizer): reranker_inference.py
#      with the yes_no head, bf16, q/p 32/192 on dev600, with the padding mask and without (--causal_no_mask, issue
#      37: right padding, causal attention alone), their scores compared; LoRA training steps/s and memory at
#      groups of 16;
#   9. the HTTP server (`python -m reranker.serve`, bf16) under 64 and 256 closed-loop clients sending whole dev600
#      requests (a query and its 20 passages), with and without batching across requests.
#  10. (`chunks`, issue 37) `reranker_inference.py` on dev600 x15 (180,000 pairs), batch 1024, bf16, one process per
#      variant, most telling first: today's; --device_mask (the 4D mask built on the GPU: no sync a batch)
#      --queue_ahead (chunk k+1 queued before chunk k's scores are read) --cast_weights (bf16 weights, head fp32);
#      the same + --encode_workers 4 (reading and tokenizing in 4 processes, off the scoring process's GIL); the
#      same + --fixed_shapes (a few batch shapes: lengths to multiples of 32, partial batches filled);
#      --fixed_shapes alone; the third + --torch_compile (one dynamic graph; its compile is start-up; 240 s
#      allowed; static graphs, --fixed_shapes --torch_compile, compile each of up to 90 shapes: not in the list).
#      Each prints its chunks' times and "chunk timings (VARIANT): ... end to end; steady ... pairs/s; start-up ...
#      s; GPU utilisation ...; 6980000 pairs: ... min". About 45 s a variant at today's rate, less if faster.
#      CHUNK_VARIANTS="FLAGS;FLAGS;..." replaces the list ("" in it: today's).
#  11. (`trainsync`, issue 37) training as in 5 with adamw_torch_fused, the loss logged once and the NaN check off, at
#      8, 16 and 32 groups a step (TRAIN_GROUPS); then one static shape (fixed padding, the epoch's partial step
#      dropped) under torch.compile at 8 groups (COMPILE_GROUPS; COMPILE_MODE=reduce-overhead tries CUDA graphs), its
#      compile counted as start-up. Each run prints groups/s, its steady ms a step as a multiple of the step's
#      arithmetic at 300 TFLOP/s, and the learning rate that goes with its groups a step. About 3 min at issue 26's
#      rates, the compile included (not yet timed).
# Each stage has its own time limit and goes on after a failure; the log goes to $OUT/gpu_check.log.
# STAGES="tests compare model e2e chunks train trainsync memory host llm serving" (default: all) picks stages by name.
# Issue 37's runs (estimated from issue 26's rates, not yet timed): first STAGES="chunks trainsync" (~8.5 min: chunks
# ~5.5, its compile variant last; trainsync ~3), then with the time left STAGES="tests llm" (~4 min).
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

# Issue 37's variants, each in its own process on dev600 x15 (180,000 pairs: start-up amortised as in the real
# job), timed chunk by chunk (benchmarks/chunk_timings.py): steady pairs/s, start-up, GPU utilisation, 6.98M pairs
if picked chunks; then
  repeated "${CHUNK_REPEAT:-15}"
  fast="--device_mask --queue_ahead --cast_weights"
  IFS=';' read -ra variants <<< "${CHUNK_VARIANTS:-;$fast;$fast --encode_workers 4;$fast --encode_workers 4 \
--fixed_shapes;--fixed_shapes;$fast --encode_workers 4 --torch_compile}"
  for variant in "${variants[@]}"; do
    rm -f /tmp/chunks.txt /tmp/chunks.txt.*  # a finished output would be taken as done
    # shellcheck disable=SC2086  # the variant's flags split on purpose
    stage "chunk timings, dev600 x${CHUNK_REPEAT:-15}, bf16, batch 1024 ${variant:-(today)}" \
      $([[ $variant == *--torch_compile* ]] && echo 240 || echo 100) python3 \
      benchmarks/chunk_timings.py --label="${variant:-today}" --started "$(date +%s.%N)" -- reranker_inference.py \
      --model_name_or_path $MODEL --encode_in_path "/tmp/dev600x${CHUNK_REPEAT:-15}.rerank.jsonl" \
      --encoded_save_path /tmp/chunks.txt --q_max_len 16 --p_max_len 128 --bf16 --device "$DEVICE" \
      --per_device_eval_batch_size 1024 --chunk_size "${CHUNK_SIZE:-20000}" $variant
    if [[ -z $variant ]]; then
      mv /tmp/chunks.txt /tmp/chunks.today.txt
    elif [[ -f /tmp/chunks.txt && -f /tmp/chunks.today.txt ]]; then
      python3 benchmarks/compare_scores.py /tmp/chunks.today.txt /tmp/chunks.txt --label="$variant"
    fi
  done
fi

# the dataloader workers fork: tokenizers' own threads must stay off there
for optim in $(picked train && echo adamw_torch adamw_torch_fused); do
  stage "training groups/s, bf16, 8 x 8, $optim: fixed padding, dynamic" 120 env TOKENIZERS_PARALLELISM=false \
    python3 benchmarks/bench_training.py --model $MODEL --train $G/train.jsonl.gz --steps "${STEPS:-60}" --bf16 \
    --dataloader_num_workers 2 --optim $optim --runs fixed dynamic \
    --profile_steps $([[ $optim == adamw_torch ]] && echo 0 || echo 3)
done

# issue 37: the fused AdamW without the Trainer's two host syncs a step (the loss logged every step, the NaN check),
# at more groups a step; then one static shape compiled, in a stage of its own (its compile is its start-up)
TRAIN_FLAGS=(--model $MODEL --train $G/train.jsonl.gz --steps "${STEPS:-60}" --bf16 --dataloader_num_workers 2
  --optim adamw_torch_fused --no_step_sync)
# shellcheck disable=SC2086  # the lists of groups split on purpose
if picked trainsync; then
  stage "training groups/s, bf16, ${TRAIN_GROUPS:-8 16 32} groups x 8, adamw_torch_fused, no sync a step: fixed, dynamic" \
    150 env TOKENIZERS_PARALLELISM=false python3 benchmarks/bench_training.py "${TRAIN_FLAGS[@]}" \
    --per_device_train_batch_size ${TRAIN_GROUPS:-8 16 32} --runs fixed dynamic
  stage "training groups/s, bf16, ${COMPILE_GROUPS:-8} groups x 8, adamw_torch_fused, no sync a step: one shape, \
compiled ${COMPILE_MODE:-(default mode)}" 240 env TOKENIZERS_PARALLELISM=false python3 benchmarks/bench_training.py \
    "${TRAIN_FLAGS[@]}" --per_device_train_batch_size ${COMPILE_GROUPS:-8} --runs compiled \
    ${COMPILE_MODE:+--torch_compile_mode "$COMPILE_MODE"}
fi

picked memory && stage "training memory: groups of 8, of 32 with 64 pairs a forward, of 32 at once" 150 python3 \
  benchmarks/bench_train_configs.py --model $MODEL --train $G/train.jsonl.gz --steps 4 --bf16 \
  --configs 8:none 32:64 32:none

picked host && stage "host side: reading and encoding pairs, no model" 60 python3 benchmarks/bench_encoding.py --model $MODEL \
  --input $G/dev600.rerank.jsonl --repeat 2

if picked llm; then
  LLM=/tmp/qwen3-0.6b-random
  python3 -m reranker.random_model --decoder qwen3 --corpus $G/corpus.jsonl.gz --output $LLM --layers "${LLM_LAYERS:-28}" \
    --hidden "${LLM_HIDDEN:-1024}" --heads 16 --kv_heads 8 --head_dim "${LLM_HEAD_DIM:-128}" > /dev/null
  for variant in "" --causal_no_mask; do
    scores=/tmp/llm${variant:+.no_mask}.scores.txt
    rm -f $scores $scores.*  # a finished output would be taken as done
    # shellcheck disable=SC2086  # no variant: no flag
    stage "LLM reranker: reranker_inference.py, Qwen3-0.6B shape, yes_no, bf16, q/p 32/192, dev600 ${variant:-(masked)}" \
      150 python3 reranker_inference.py --model_name_or_path $LLM --score_head yes_no --encode_in_path \
      $G/dev600.rerank.jsonl --encoded_save_path $scores --q_max_len 32 --p_max_len 192 --bf16 --device "$DEVICE" \
      --per_device_eval_batch_size 256 $variant
    python3 -c "import json, sys; s = json.load(open(sys.argv[1] + '.summary.json')); print('LLM reranker pairs/s${variant:+ ($variant)}:', s['pairs_per_second'])" $scores
  done
  python3 benchmarks/compare_scores.py /tmp/llm.scores.txt /tmp/llm.no_mask.scores.txt --label=--causal_no_mask
  stage "LLM reranker: training steps, groups of 16, bf16: full, LoRA, LoRA + checkpointing" 240 python3 \
    benchmarks/bench_llm_training.py --model $LLM --data $G --head yes_no --bf16 --steps "${LLM_STEPS:-8}" --batch 4 --group 16
fi

picked serving && stage "HTTP server, bf16, 64 and 256 clients, dev600 requests" 150 python3 benchmarks/bench_serving.py \
  --rerank_file $G/dev600.rerank.jsonl --workdir /tmp/bench_serving --model $MODEL --server_flags "--bf16 --device $DEVICE --per_device_eval_batch_size $BATCH" \
  --clients ${SERVING_CLIENTS:-64 256} --seconds "${SERVING_SECONDS:-20}" --baseline_requests 0 --overload_seconds 0

echo "== done in $((SECONDS - STARTED)) s; failed stages: ${FAILED[*]:-none} =="
