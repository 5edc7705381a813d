#!/usr/bin/env bash
# Runs Seam's whole test suite. Installs the software Vulkan driver first where it
# is missing (root or sudo needed for that step only).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-vulkan.sh
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"

# The runtime is embedded in apps alone: it must never pull in the compiler side.
if cargo tree -p seam-runtime --edges normal,build --prefix none \
    | grep -E '^(seam-compiler|seam-frontends|egg|petgraph) ' ; then
    echo "error: seam-runtime depends on compiler-side crates (listed above)" >&2
    exit 1
fi

# Benches are built by clippy in CI and run with `cargo bench`, not here.
cargo test --workspace --lib --bins --tests "$@"
cargo test --workspace --doc "$@"
