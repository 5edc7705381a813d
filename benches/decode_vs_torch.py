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
import os
import statistics
import sys
import time

import torch
import transformers

from bench_common import (CACHE, SEAM, TINY, Runs, first_difference, large_checkpoint, seam,
                          seam_generate, spread, torch_generate, torch_run)

PROMPT_LEN = 16
OPT_LEVELS = (0, 2)


def seam_compile(ckpt, name, opt, max_seq_len):
    """Compiles `ckpt` at -O`opt` with a KV cache; returns the bundle path."""
    bundle = CACHE / f"{name}-O{opt}.seamb"
    start = time.perf_counter()
    seam("compile", ckpt, "-o", bundle, f"-O{opt}", "--max-seq-len", max_seq_len, "--force")
    print(f"compiled {name} -O{opt} in {time.perf_counter() - start:.1f} s", flush=True)
    return bundle


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
