#!/usr/bin/env python3
"""DDT encoder sharing: time per sample and the error sharing introduces.

One run: compiles examples/ddt.seam (random weights, -O2) once, then samples
it with `seam sample` under `uniform:K` for K = 1..4 (K = 1 shares nothing),
REPEATS times each, and reports the median time per sample, the speed-up
over K = 1 and the relative L2 error of the final latent against K = 1.
Writes a markdown table to --out.

    cargo build --release -p seam-cli
    python3 benches/ddt_sharing.py --seam target/release/seam \
        --out benches/results/ddt-2026-11-30.md
"""

import argparse
import re
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seam", default="target/release/seam")
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benches/results/ddt-2026-11-30.md")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ddt-"))
    bundle = tmp / "ddt.seamb"
    run([a.seam, "compile", "examples/ddt.seam", "--random-weights", "7", "-O", "2",
         "-o", str(bundle)])
    rows = []
    for k in range(1, 5):
        times, lines = [], ""
        for r in range(a.repeats):
            npy = tmp / f"k{k}-{r}.npy"
            out = run([a.seam, "sample", str(bundle), "--steps", str(a.steps),
                       "--share-schedule", f"uniform:{k}", "--seed", str(a.seed),
                       "--out", str(npy), "--force"])
            times.append(float(re.search(r"sample: ([\d.]+) ms", out).group(1)))
            lines = out
        disp = re.findall(r"(computing|reusing): (\d+) dispatches", lines)
        rows.append((k, statistics.median(times), np.load(tmp / f"k{k}-0.npy"), dict(disp)))
    base_t, base_x = rows[0][1], rows[0][2]
    text = [
        f"# DDT encoder sharing ({a.steps} Euler steps, examples/ddt.seam, -O2, random weights 7, seed {a.seed})",
        "",
        f"Command: `python3 benches/ddt_sharing.py --seam {a.seam} --steps {a.steps} "
        f"--repeats {a.repeats}` (median of {a.repeats} samples per K).",
        "",
        "| K (uniform:K) | encoder runs | ms / sample | speed-up vs K=1 | rel. L2 vs K=1 | dispatches computing / reusing |",
        "|---|---|---|---|---|---|",
    ]
    for k, t, x, d in rows:
        rel = float(np.linalg.norm(x - base_x) / np.linalg.norm(base_x))
        runs = len(range(0, a.steps, k))
        text.append(f"| {k} | {runs} | {t:.2f} | {base_t / t:.2f}x | {rel:.3e} | "
                    f"{d.get('computing', '-')} / {d.get('reusing', '-')} |")
    Path(a.out).write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
