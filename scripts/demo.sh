#!/usr/bin/env bash
# The main job: check the example Read-ME-style decoupled-MoE model and evaluate it
# with the reference evaluator on random weights.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-vulkan.sh
cargo build --release -p seam-compiler --bin seam
seam=target/release/seam
model=examples/readme_moe.seam

"$seam" check "$model"
mkdir -p out
"$seam" eval "$model" --random-weights 7 --tokens 1,2,3,4,5,6,7,8 --out out/readme_moe_logits.npy --force
