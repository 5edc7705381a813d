#!/usr/bin/env python3
"""Ladder Residual vs the standard residual at tensor parallelism 2 and 4.

One run, side by side: prints a ladder model and the same model with the standard
residual (`cargo run -p seam-frontends --example moe_text -- ladder_residual|
standard_residual`, --d-model/--ffn/--layers/--heads), compiles each for one device
and as 2- and 4-rank shard sets (`seam compile --tensor-parallel N`, random
weights), and times `seam bench` (1 token: decode-sized; 64 tokens: prefill)
on one device and under mpirun across N emulated hosts — network namespaces
joined by links shaped to each --rate (scripts/netns-hosts.sh; needs root),
OpenMPI's TCP transport between them. Reports mean ms per run, tokens/s,
ladder's speed-up over standard, and per run the reductions' overlapped and
blocked time (the fraction hidden = overlapped / (overlapped + blocked)).
Needs a `seam` built with `--features mpi`.

    cargo build --release -p seam-cli --features mpi
    sudo python3 benches/ladder_tp.py --seam target/release/seam \\
        --out benches/results/ladder-tp-2026-11-30.md
"""

import argparse
import os
import re
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOSTS = ROOT / "scripts" / "netns-hosts.sh"


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def bench(cmd, tokens, iters, env):
    """Mean ms per run by token count, and the per-run reduction line."""
    out = run(cmd + ["--tokens", ",".join(map(str, tokens)), "--iters", str(iters)], env=env)
    rows = {}
    for m in re.finditer(r"^\S+\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+\d+\s+\d+[^\n]*\n(  per run: (.*)\n)?", out, re.M):
        rows[int(m.group(1))] = (float(m.group(4)), m.group(6) or "")
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seam", default=str(ROOT / "target" / "release" / "seam"))
    p.add_argument("--out", required=True)
    p.add_argument("--rates", default="10gbit,1gbit")
    p.add_argument("--ranks", default="2,4")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--d-model", type=int, default=512)
    p.add_argument("--ffn", type=int, default=1408)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    args = p.parse_args()
    env = dict(os.environ, WGPU_BACKEND="vulkan", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", SEAM_COLLECTIVE_TIMEOUT_S="120")
    ranks = [int(r) for r in args.ranks.split(",")]
    tokens = [1, 64]
    lines = ["| model | ranks | link | tokens | ms/run | tokens/s | ladder vs standard | reductions per run |",
             "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        bundles = {}
        for name in ("ladder_residual", "standard_residual"):
            text = run(["cargo", "run", "-q", "--release", "-p", "seam-frontends", "--example", "moe_text",
                        "--", name, "--d-model", str(args.d_model), "--ffn", str(args.ffn),
                        "--layers", str(args.layers), "--heads", str(args.heads)])
            src = Path(tmp) / f"{name}.seam"
            src.write_text(text)
            for n in [1] + ranks:
                out = Path(tmp) / f"{name}_tp{n}.seamb"
                extra = ["--tensor-parallel", str(n)] if n > 1 else []
                run([args.seam, "compile", str(src), "-o", str(out), "--random-weights", "3"] + extra, env=env)
                bundles[(name, n)] = out
        results = {}
        for name in ("ladder_residual", "standard_residual"):
            results[(name, 1, "-")] = bench([args.seam, "bench", str(bundles[(name, 1)])], tokens, args.iters, env)
        for rate in args.rates.split(","):
            for n in ranks:
                subprocess.run(["bash", str(HOSTS), "up", str(n), rate], check=True, env=env)
                try:
                    for name in ("ladder_residual", "standard_residual"):
                        cmd = ["bash", str(HOSTS), "mpirun", str(n), args.seam, "bench", str(bundles[(name, n)])]
                        results[(name, n, rate)] = bench(cmd, tokens, args.iters, env)
                finally:
                    subprocess.run(["bash", str(HOSTS), "down", str(n)], env=env)
        for (name, n, rate), rows in results.items():
            for t in tokens:
                ms, red = rows[t]
                std = results[("standard_residual", n, rate)][t][0]
                speed = f"{std / ms:.2f}x" if name == "ladder_residual" else ""
                lines.append(f"| {name} | {n} | {rate} | {t} | {ms:.2f} | {t * 1000 / ms:.1f} | {speed} | {red} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
