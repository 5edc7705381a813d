#!/usr/bin/env bash
# The main job: compile the example Read-ME-style decoupled-MoE model to a bundle
# and run it on the default device (lavapipe where there is no GPU), checked
# against the reference CPU evaluator.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-vulkan.sh
cargo build --release -p seam-cli --bin seam
seam=target/release/seam
model=examples/readme_moe.seam
mkdir -p out

"$seam" check "$model"
"$seam" compile "$model" -o out/readme_moe.seamb --random-weights 7 --force
"$seam" inspect out/readme_moe.seamb
"$seam" run out/readme_moe.seamb --tokens 1,2,3,4,5,6,7,8 --check-reference \
    --out out/readme_moe_logits.npy --force

# The same model with a KV cache: prefill the prompt, then decode token by token.
"$seam" compile examples/readme_moe_kv.seam -o out/readme_moe_kv.seamb --random-weights 7 \
    --max-seq-len 256 --force
"$seam" generate out/readme_moe_kv.seamb --prompt-ids 1,2,3,4,5,6,7,8 --max-new-tokens 16 \
    --logits-out out/readme_moe_prefill_logits.npy --force
