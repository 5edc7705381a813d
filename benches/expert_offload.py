#!/usr/bin/env python3
"""Experts in host memory: decode tokens/s at 25/50/100% of experts resident.

One run, side by side: builds a Read-ME-style model (`pregated_topk`: a pre-gating
router decides every layer's top-2 before the backbone runs; it also has an
always-on shared expert) and a Mixtral-style model with the same routed experts
(`mixtral_tiny`: each layer's own router, top-2), both at --d-model/--ffn/--layers
(printed by `cargo run -p seam-frontends --example moe_text`), compiles them with
random weights, then decodes the same prompt
with `seam generate` with every expert resident and with `--resident-experts`
2 and 4 of 8 under each cache policy, REPEATS times each (sampled at temperature 1 with a fixed seed, so the
routing varies as real text's does; interleaved, so drift
hits every configuration alike). Reports the median decode tokens/s, its ratio to
the all-resident run of the same model, the expert line `seam generate` prints
(hit ratio, bytes uploaded per token, stall) and whether the tokens equal the
all-resident ones. Writes a markdown table to --out.

    cargo build --release -p seam-cli
    python3 benches/expert_offload.py --seam target/release/seam \
        --out benches/results/experts-2026-11-30.md
"""

import argparse
import re
import statistics
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = [
    ("pre-gated (Read-ME)", "pregated_topk"),
    ("in-layer (Mixtral)", "mixtral_tiny"),
]
EXPERTS = 8


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def decode(seam, bundle, prompt, new_tokens, resident, policy):
    cmd = [str(seam), "generate", str(bundle), "--prompt-ids", prompt,
           "--max-new-tokens", str(new_tokens), "--ignore-eos",
           # Sampled: greedy decoding of random weights repeats one token,
           # and with it one routing; sampling varies the routing.
           "--temperature", "1.0", "--seed", "1"]
    if resident < EXPERTS:
        cmd += ["--resident-experts", str(resident), "--cache-policy", policy]
    out = run(cmd)
    rate = float(re.search(r"^decode: .*\(([\d.]+) tokens/s\)", out, re.M).group(1))
    tokens = re.search(r"^generated: (.*)$", out, re.M).group(1)
    experts = re.search(r"^experts: (.*)$", out, re.M)
    return rate, tokens, experts.group(1) if experts else ""


def field(line, name):
    m = re.search(rf"{name}=([\d.]+)", line)
    return m.group(1) if m else "-"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seam", default=str(ROOT / "target" / "release" / "seam"))
    p.add_argument("--out", required=True)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--d-model", type=int, default=512)
    p.add_argument("--ffn", type=int, default=1408)
    p.add_argument("--layers", type=int, default=8)
    args = p.parse_args()
    prompt = "1,2,3,4,5,6,7,8"
    configs = [(EXPERTS, "-")] + [(r, pol) for r in (4, 2) for pol in ("lru", "belady", "lookahead")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        bundles = {}
        for _, name in MODELS:
            text = run(["cargo", "run", "-q", "--release", "-p", "seam-frontends", "--example",
                        "moe_text", "--", name, "--d-model", str(args.d_model), "--ffn",
                        str(args.ffn), "--layers", str(args.layers), "--kv-cache", "256"])
            source = Path(tmp) / f"{name}.seam"
            source.write_text(text)
            b = Path(tmp) / f"{name}.seamb"
            run([args.seam, "compile", str(source), "-o", str(b),
                 "--random-weights", "7", "--max-seq-len", "256"])
            bundles[name] = b
        results = {}
        for _ in range(args.repeats):
            for _, name in MODELS:
                for resident, policy in configs:
                    r = decode(args.seam, bundles[name], prompt, args.new_tokens, resident, policy)
                    results.setdefault((name, resident, policy), []).append(r)
        for label, name in MODELS:
            base = statistics.median(r[0] for r in results[(name, EXPERTS, "-")])
            base_tokens = results[(name, EXPERTS, "-")][0][1]
            for resident, policy in configs:
                runs = results[(name, resident, policy)]
                rate = statistics.median(r[0] for r in runs)
                line = runs[-1][2]
                exact = all(r[1] == base_tokens for r in runs)
                rows.append((label, f"{100 * resident // EXPERTS}% ({resident}/8)", policy,
                             f"{rate:.1f}", f"{rate / base:.2f}", field(line, "hit_ratio"),
                             re.search(r"\(([\d.]+) KiB/token\)", line).group(1) if line else "0",
                             re.search(r"stall=([\d.]+) ms", line).group(1) if line else "0",
                             "yes" if exact else "NO"))
    experts_mb = 3 * args.d_model * args.ffn * 4 / 1e6
    print(f"each expert {experts_mb:.1f} MB (f32), {EXPERTS} per layer, {args.layers} layers")
    header = ("| model | resident | policy | decode tok/s | vs all resident | hit ratio "
              "| uploaded KiB/token | stall ms | tokens = all-resident |")
    lines = [header, "|" + "---|" * 9]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
