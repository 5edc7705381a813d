#!/usr/bin/env bash
# Expert-aware batching against first come first served on a replayed request
# trace (`seam serve-bench`), for the pre-gating examples with 16 KV slots.
# Usage: benches/expert_batching.sh [SEAM] [OUT_DIR] (defaults: target/debug/seam, /tmp/seam-expert-batching)
# Results: benches/results/expert-batching-2026-11-30.md
set -euo pipefail
seam=${1:-target/debug/seam}
out=${2:-/tmp/seam-expert-batching}
mkdir -p "$out"
trace=(--requests 64 --rate 0.5 --prompt-len 4,32 --output-len 8,48 --seed "${SEED:-7}")
for example in pregated_topk_kv readme_moe_kv; do
  # The examples' pools hold 4 sequences; the trace needs 16 slots.
  sed -e 's/f32\[4, 2048, /f32[16, 2048, /g' -e 's/^dim batch <= 4$/dim batch <= 16/' \
    "examples/$example.seam" > "$out/${example}16.seam"
  "$seam" compile "$out/${example}16.seam" -o "$out/${example}16.seamb" \
    --random-weights 7 --max-seq-len 256 --force > /dev/null
  bundle="$out/${example}16.seamb"
  for resident in "" 4; do
    experts=()
    if [ -n "$resident" ]; then experts=(--resident-experts "$resident"); fi
    echo "== $example ${resident:+resident experts $resident}"
    "$seam" serve-bench "$bundle" "${trace[@]}" "${experts[@]}" --schedule fcfs --max-batch 8 | tail -n +2
    "$seam" serve-bench "$bundle" "${trace[@]}" "${experts[@]}" --schedule fcfs --max-batch 8 --count-experts | tail -n +2
    "$seam" serve-bench "$bundle" "${trace[@]}" "${experts[@]}" --schedule expert-aware --max-batch 16 --step-batch 8 | tail -n +2
  done
done
