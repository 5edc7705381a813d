#!/usr/bin/env bash
# Seed corpora for the fuzz targets (docs/fuzzing.md), built from the examples
# and test fixtures into fuzz/corpus/<target>/ (generated, not checked in).
# The bundle seeds are small and checked in under fuzz/seeds/ (written by
# `cargo +nightly run --manifest-path fuzz/Cargo.toml --example bundle_seeds`).
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=fuzz/corpus
mkdir -p "$corpus"/{text,bundle_bytes,bundle_manifest,checkpoint,gguf,tokenizer}

# text: the example models.
cp examples/*.seam "$corpus/text/"

# gguf: the GGUF fixtures, and their first 16 KiB (the metadata and tensor
# infos without the data: quick to run, so most executions go to the header).
for f in tests/fixtures/gguf/llama/*.gguf; do
    cp "$f" "$corpus/gguf/"
    head -c 16384 "$f" >"$corpus/gguf/head-$(basename "$f")"
done

# checkpoint: per fixture, a little-endian u16 length, config.json, then the
# JSON header of its (first) safetensors file.
python3 - "$corpus/checkpoint" <<'PY'
import glob, os, struct, sys
out = sys.argv[1]
for config in sorted(glob.glob("tests/fixtures/hf/*/config.json")):
    d = os.path.dirname(config)
    files = sorted(glob.glob(os.path.join(d, "*.safetensors")))
    if not files:
        continue
    with open(files[0], "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = f.read(n)
    cfg = open(config, "rb").read()
    with open(os.path.join(out, os.path.basename(d)), "wb") as f:
        f.write(struct.pack("<H", len(cfg)) + cfg + header)
PY
