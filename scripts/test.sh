#!/usr/bin/env bash
# Runs Seam's whole test suite. Installs the software Vulkan driver first where it
# is missing (root or sudo needed for that step only).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-vulkan.sh
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"

# Crates by role. The runtime (and its C ABI, seam-capi) is embedded in apps
# alone: it must never pull in the compiler side. The compiler is a library: no
# CLI crates, no GPU stack.
for crate in seam-runtime seam-capi; do
    if cargo tree -p "$crate" --edges normal,build --prefix none \
        | grep -E '^(seam-compiler|seam-frontends|seam-shaders|seam-ir|egg|petgraph|cbindgen) ' ; then
        echo "error: $crate depends on compiler-side crates (listed above)" >&2
        exit 1
    fi
done
if cargo tree -p seam-compiler --edges normal,build --prefix none \
    | grep -E '^(clap|tokenizers|indicatif|tracing-subscriber|wgpu|seam-runtime|seam-cli) ' ; then
    echo "error: seam-compiler depends on CLI or GPU crates (listed above)" >&2
    exit 1
fi

# The HTTP server lives in the CLI: the runtime stays free of async and HTTP crates.
if cargo tree -p seam-runtime --edges normal,build --prefix none \
    | grep -E '^(tokio|axum|hyper|tower|minijinja) ' ; then
    echo "error: seam-runtime depends on async or HTTP crates (listed above)" >&2
    exit 1
fi

# The real pretrained model the GGUF tests run (SmolLM2-135M, downloaded into
# target/, not committed); without network those tests skip and say so.
bash scripts/fetch-smollm2.sh || echo "warning: scripts/fetch-smollm2.sh failed; the SmolLM2 tests will skip" >&2

# Benches are built by clippy in CI and run with `cargo bench`, not here.
# seam-capi's tests also check that capi/include/seam.h is current and compile
# examples/c/demo.c with `cc` against the shared library.
cargo test --workspace --lib --bins --tests "$@"
cargo test --workspace --doc "$@"

# Shard sets under mpirun (skips, saying so, without OpenMPI).
bash scripts/mpi-test.sh
