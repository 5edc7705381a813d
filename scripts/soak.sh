#!/usr/bin/env bash
# Soak run: the soak tests (tests/tests/soak.rs) at full length, printing host
# RSS and device memory samples.
#
#   scripts/soak.sh [DECODE_STEPS] [SESSION_CYCLES]     # default 10000 1000
set -euo pipefail
cd "$(dirname "$0")/.."
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
SEAM_SOAK_STEPS="${1:-10000}" SEAM_SOAK_SESSIONS="${2:-1000}" \
    cargo test -p seam-tests --test soak -- --nocapture --test-threads 1
