#!/usr/bin/env python3
"""Decode benchmark: Seam (-O0 and -O2, KV cache) against transformers on PyTorch CPU eager.

Models, both f32 with fixed random weights:
  - tiny:  the Mixtral fixture tests/fixtures/hf/mixtral (hidden 64, 2 layers, 4 experts);
  - large: a Mixtral-shaped checkpoint built here with transformers (hidden 1024,
           8 layers, 8 experts top-2, intermediate 2816, 16 heads / 8 kv heads,
           vocab 32000), cached under target/bench-ckpt/large/ and rebuilt only when
           its config changes.

For each model the release `seam` compiles the checkpoint at -O0 and -O2 with a KV
cache (`--max-seq-len prompt+new`) and `seam generate` decodes greedily; its printed
prefill and decode tokens/s are parsed. Seam's own timings cover the prefill call and
the decode calls (upload and read-back included), not process start or bundle load;
one discarded warm-up run per bundle fills Mesa's shader cache first.

transformers runs `generate` (greedy, use_cache) on the same checkpoint with
torch.set_num_threads(os.cpu_count()) (or --torch-threads; on a loaded machine fewer
threads than cores can be much faster) after one warm-up call. Prefill is the time of a
`max_new_tokens=1` call; decode tokens/s is (new - 1) / (time of the `max_new_tokens=new`
call - prefill time), the same split as `seam generate` (the prefill yields the first
token, each decode step one more).

Every configuration runs `--runs` times, the engines interleaved run by run; the table
shows the median and the [min-max] spread. Seam's greedy ids are compared with
transformers' and any mismatch is reported (with the first differing position).

Usage:
  cargo build --release -p seam-cli
  python3 benches/decode_vs_torch.py [--models tiny,large] [--runs 3]
                                     [--new-tokens 32] [--large-new-tokens 16]
                                     [--torch-threads N]
Needs torch and transformers. Not part of CI (scripts/test.sh does not run it).
"""

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import transformers

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "target" / "bench-ckpt"
SEAM = ROOT / "target" / "release" / "seam"
TINY = ROOT / "tests" / "fixtures" / "hf" / "mixtral"
PROMPT_LEN = 16
OPT_LEVELS = (0, 2)
LARGE_SEED = 7
LARGE_CONFIG = dict(
    vocab_size=32000,
    hidden_size=1024,
    intermediate_size=2816,
    num_hidden_layers=8,
    num_attention_heads=16,
    num_key_value_heads=8,
    num_local_experts=8,
    num_experts_per_tok=2,
    max_position_embeddings=4096,
    rms_norm_eps=1e-5,
    rope_parameters={"rope_type": "default", "rope_theta": 1e6},
    tie_word_embeddings=False,
    bos_token_id=None,
    eos_token_id=None,
    pad_token_id=None,
    dtype="float32",
)


def randomize(model, seed):
    """Every weight N(0, 1/fan_in), norm weights around 1 (as the fixtures do), so
    logits are well separated and greedy ids comparable across engines."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if "norm" in name:
                p.copy_(1.0 + 0.1 * noise)
            else:
                p.copy_(noise / math.sqrt(p.shape[-1]))


def large_checkpoint():
    """The large checkpoint folder, built (once per config) with transformers."""
    path = CACHE / "large"
    stamp = path / "bench-config.json"
    wanted = json.dumps({"config": LARGE_CONFIG, "seed": LARGE_SEED}, sort_keys=True)
    if stamp.exists() and stamp.read_text() == wanted:
        return path
    print(f"building {path} (random weights, seed {LARGE_SEED})", flush=True)
    model = transformers.MixtralForCausalLM(transformers.MixtralConfig(**LARGE_CONFIG))
    randomize(model, LARGE_SEED)
    stamp.unlink(missing_ok=True)
    model.save_pretrained(path)
    stamp.write_text(wanted)
    return path


@dataclass
class Runs:
    """Per-run prefill and decode tokens/s of one engine on one model, and its ids."""

    prefill: list = field(default_factory=list)
    decode: list = field(default_factory=list)
    ids: list | None = None

    def add(self, prefill, decode, ids):
        if self.ids is not None and ids != self.ids:
            sys.exit(f"greedy ids changed between runs: {self.ids} then {ids}")
        self.prefill.append(prefill)
        self.decode.append(decode)
        self.ids = ids


def seam(*args):
    """Runs the release `seam` and returns its stdout; exits with its stderr on failure."""
    out = subprocess.run([str(SEAM), *map(str, args)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"seam {' '.join(map(str, args))} failed:\n{out.stderr}")
    return out.stdout


def seam_compile(ckpt, name, opt, max_seq_len):
    """Compiles `ckpt` at -O`opt` with a KV cache; returns the bundle path."""
    bundle = CACHE / f"{name}-O{opt}.seamb"
    start = time.perf_counter()
    seam("compile", ckpt, "-o", bundle, f"-O{opt}", "--max-seq-len", max_seq_len, "--force")
    print(f"compiled {name} -O{opt} in {time.perf_counter() - start:.1f} s", flush=True)
    return bundle


def seam_generate(bundle, prompt, new):
    """One `seam generate` run: (prefill tokens/s, decode tokens/s, greedy ids)."""
    out = seam("generate", bundle, "--prompt-ids", ",".join(map(str, prompt)),
               "--max-new-tokens", new)
    ids = re.search(r"^generated: ([\d,]*)$", out, re.M).group(1)
    rates = [float(re.search(rf"^{stage}: .*\(([\d.]+) tokens/s\)$", out, re.M).group(1))
             for stage in ("prefill", "decode")]
    return rates[0], rates[1], [int(i) for i in ids.split(",")]


def torch_generate(model, prompt, new):
    """Greedy `generate` with the KV cache: (seconds, new ids)."""
    ids = torch.tensor([prompt])
    with torch.inference_mode():
        start = time.perf_counter()
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new,
                             min_new_tokens=new, do_sample=False, use_cache=True)
        seconds = time.perf_counter() - start
    return seconds, out[0, len(prompt):].tolist()


def torch_run(model, prompt, new):
    """One transformers measurement: (prefill tokens/s, decode tokens/s, greedy ids)."""
    prefill_s, _ = torch_generate(model, prompt, 1)
    total_s, ids = torch_generate(model, prompt, new)
    return len(prompt) / prefill_s, (new - 1) / max(total_s - prefill_s, 1e-9), ids


def bench(name, ckpt, new, runs):
    """Measures one model; returns {engine: Runs}."""
    config = json.loads((ckpt / "config.json").read_text())
    prompt = [(i * 7919 + 13) % config["vocab_size"] for i in range(PROMPT_LEN)]
    bundles = {f"-O{o}": seam_compile(ckpt, name, o, PROMPT_LEN + new) for o in OPT_LEVELS}
    model = transformers.AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32).eval()
    torch_generate(model, prompt, new)
    for bundle in bundles.values():
        seam_generate(bundle, prompt, new)
    results = {engine: Runs() for engine in [*bundles, "torch"]}
    for run in range(runs):
        for engine, bundle in bundles.items():
            results[engine].add(*seam_generate(bundle, prompt, new))
        results["torch"].add(*torch_run(model, prompt, new))
        print(f"{name}: run {run + 1}/{runs} done", flush=True)
    return results


def spread(values):
    """`median [min-max]` of tokens/s values."""
    return f"{statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]"


def first_difference(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def report(all_results, new_tokens):
    """Prints the table and the greedy-id comparison."""
    header = (f"{'model':<6} {'new':>3} {'engine':<6} {'prefill tok/s':>24} "
              f"{'decode tok/s':>24} {'decode/torch':>12} {'-O2/-O0':>8}")
    print(header)
    print("-" * len(header))
    for name, results in all_results.items():
        med = {e: statistics.median(r.decode) for e, r in results.items()}
        for engine, r in results.items():
            vs_torch = "" if engine == "torch" else f"{med[engine] / med['torch']:.2f}x"
            o2 = f"{med['-O2'] / med['-O0']:.2f}x" if engine == "-O2" else ""
            print(f"{name:<6} {new_tokens[name]:>3} {engine:<6} {spread(r.prefill):>24} "
                  f"{spread(r.decode):>24} {vs_torch:>12} {o2:>8}")
    print()
    for name, results in all_results.items():
        want = results["torch"].ids
        for engine in (f"-O{o}" for o in OPT_LEVELS):
            got = results[engine].ids
            if got == want:
                print(f"{name} {engine}: greedy ids equal transformers' ({len(got)} tokens)")
            else:
                i = first_difference(got, want)
                print(f"{name} {engine}: greedy ids DIFFER from transformers' at position {i}:"
                      f"\n  seam  {got}\n  torch {want}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny,large", help="comma-separated: tiny, large")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per engine")
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens generated (tiny)")
    parser.add_argument("--large-new-tokens", type=int, default=16,
                        help="tokens generated (large)")
    parser.add_argument("--torch-threads", type=int, default=os.cpu_count(),
                        help="torch.set_num_threads (default: every core)")
    args = parser.parse_args()
    models = args.models.split(",")
    if unknown := set(models) - {"tiny", "large"}:
        parser.error(f"unknown model(s): {', '.join(sorted(unknown))}")
    if not SEAM.exists():
        sys.exit(f"{SEAM} not found: run `cargo build --release -p seam-cli`")
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.torch_threads)
    transformers.logging.disable_progress_bar()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{torch.get_num_threads()} threads; prompt {PROMPT_LEN} tokens; "
          f"{args.runs} runs", flush=True)
    new_tokens = {"tiny": args.new_tokens, "large": args.large_new_tokens}
    checkpoints = {"tiny": lambda: TINY, "large": large_checkpoint}
    results = {m: bench(m, checkpoints[m](), new_tokens[m], args.runs) for m in models}
    print()
    report(results, new_tokens)


if __name__ == "__main__":
    main()
