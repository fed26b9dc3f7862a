#!/usr/bin/env bash
# Recreates the shipped models in assets/models/ from Debian's trans-de-en dictionary, with the
# exact commands their model cards state, and measures the figures the cards report.
#
#   installer/train-models.sh [data|translator|lm|evaluate|install|all]   (default: all)
#
# Work happens under build/ (build/data, build/models/<name>, build/eval); a stage that was
# interrupted continues from its checkpoint (training resumes bit-exactly). `install` copies the
# trained models, their tokenizer and the test set into assets/models/. Training is
# deterministic for the seed and the thread count (2 here, like the machine the cards were made on).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CLI="$ROOT/build/release/app/attnlab-cli"
DATA="$ROOT/build/data"
MODELS="$ROOT/build/models"
EVAL="$ROOT/build/eval"
STAGE="${1:-all}"

[ -x "$CLI" ] || { echo "train-models: build first (installer/attnlab.sh build)" >&2; exit 1; }

TRANSLATOR_ARGS=(--kind seq2seq --d-model 256 --heads 4 --d-ff 1024 --layers 3 --max-length 64
  --steps 6000 --batch-tokens 6000 --lr 8e-4 --warmup 500 --schedule cosine --sentence-repeat 4
  --seed 1 --threads 2 --eval-every 500 --checkpoint-every 250)
LM_ARGS=(--kind lm --d-model 256 --heads 4 --d-ff 1024 --layers 4 --max-length 64
  --steps 1500 --batch-tokens 6000 --lr 8e-4 --warmup 300 --schedule cosine --sentence-repeat 4
  --seed 1 --threads 2 --eval-every 500 --checkpoint-every 250)

train() {  # train NAME ARGS...
  local name="$1"
  shift
  local resume=()
  [ -f "$MODELS/$name/checkpoint.safetensors" ] && resume=(--resume)
  mkdir -p "$MODELS"
  "$CLI" train --data "$DATA" --out "$MODELS/$name" "$@" "${resume[@]}" 2> >(tee -a "$MODELS/$name.stderr" >&2)
}

stage_data() {
  [ -f "$DATA/spm.model" ] && [ -f "$DATA/train.tsv" ] && return 0
  "$CLI" data --out "$DATA"
}

stage_evaluate() {
  mkdir -p "$EVAL"
  local t="$MODELS/de-en"
  "$CLI" translate --model "$t" --file "$DATA/test.de" > "$EVAL/greedy.en"
  "$CLI" translate --model "$t" --file "$DATA/test.de" --beam 5 --length-penalty 1.0 > "$EVAL/beam5.en"
  "$CLI" baseline --data "$DATA" --file "$DATA/test.de" > "$EVAL/baseline.en"
  for h in greedy beam5 baseline; do
    "$CLI" bleu --hyp "$EVAL/$h.en" --ref "$DATA/test.en" --json > "$EVAL/bleu-$h.json"
    echo "$h: $("$CLI" bleu --hyp "$EVAL/$h.en" --ref "$DATA/test.en")"
  done
  "$CLI" perplexity --model "$MODELS/en-lm" --file "$DATA/test.en" --json > "$EVAL/lm-perplexity.json"
  cat "$EVAL/lm-perplexity.json"
  # Latency: greedy, one sentence at a time, sentences of at most 20 words.
  awk 'NF <= 20' "$DATA/test.de" > "$EVAL/short.de"
  "$CLI" translate --model "$t" --file "$EVAL/short.de" --json > "$EVAL/short-greedy.jsonl"
  python3 - "$EVAL/short-greedy.jsonl" > "$EVAL/latency.json" <<'PY'
import json, statistics, sys
ms = sorted(json.loads(l)["ms"] for l in open(sys.argv[1]) if l.strip() not in ("", "{}"))
q = lambda p: ms[min(len(ms) - 1, int(p * len(ms)))]
print(json.dumps({"sentences": len(ms), "median_ms": statistics.median(ms), "p90_ms": q(0.9), "max_ms": ms[-1]}))
PY
  cat "$EVAL/latency.json"
  "$CLI" approx-quality --model "$t" --lm "$MODELS/en-lm" --src "$DATA/test.de" --ref "$DATA/test.en" \
    --sentences 300 --json "$EVAL/approx-quality.json" --out "$EVAL/approx-quality.png" | tee "$EVAL/approx-quality.txt"
}

stage_install() {
  for name in de-en en-lm; do
    local dst="$ROOT/assets/models/$name"
    mkdir -p "$dst"
    cp "$MODELS/$name/model.safetensors" "$MODELS/$name/config.json" "$MODELS/$name/tokenizer.model" \
       "$MODELS/$name/train_log.jsonl" "$dst/"
  done
  cp "$DATA/test.de" "$DATA/test.en" "$ROOT/assets/models/de-en/"
}

case "$STAGE" in
  data) stage_data ;;
  translator) stage_data; train de-en "${TRANSLATOR_ARGS[@]}" ;;
  lm) stage_data; train en-lm "${LM_ARGS[@]}" ;;
  evaluate) stage_evaluate ;;
  install) stage_install ;;
  all)
    stage_data
    train de-en "${TRANSLATOR_ARGS[@]}"
    train en-lm "${LM_ARGS[@]}"
    stage_evaluate
    stage_install
    ;;
  *) echo "usage: installer/train-models.sh [data|translator|lm|evaluate|install|all]" >&2; exit 2 ;;
esac
