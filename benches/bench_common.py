"""Helpers shared by the benchmarks under benches/ (decode_vs_torch.py, roofline.py).

The Mixtral-shaped `large` checkpoint (built here with transformers, fixed random
weights), running the release `seam` and parsing `seam generate`, timing transformers'
greedy `generate` the same way, and the per-run result records with their
`median [min-max]` summary. Importing this module imports torch and transformers.
"""

import json
import math
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


def large_checkpoint(cache=CACHE):
    """The large checkpoint folder `cache`/large, built (once per config) with transformers."""
    path = cache / "large"
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

    def add(self, prefill, decode, ids=None):
        if self.ids is not None and ids is not None and ids != self.ids:
            sys.exit(f"greedy ids changed between runs: {self.ids} then {ids}")
        self.prefill.append(prefill)
        self.decode.append(decode)
        self.ids = ids if ids is not None else self.ids


def seam(*args, seam_bin=SEAM):
    """Runs the release `seam` and returns its stdout; exits with its stderr on failure."""
    out = subprocess.run([str(seam_bin), *map(str, args)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"seam {' '.join(map(str, args))} failed:\n{out.stderr}")
    return out.stdout


def seam_generate(bundle, prompt, new, *extra, seam_bin=SEAM):
    """One `seam generate` run: (prefill tokens/s, decode tokens/s, greedy ids)."""
    out = seam("generate", bundle, "--prompt-ids", ",".join(map(str, prompt)),
               "--max-new-tokens", new, *extra, seam_bin=seam_bin)
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
    """One transformers measurement: (prefill tokens/s, decode tokens/s, greedy ids).

    Prefill is the time of a `max_new_tokens=1` call; decode tokens/s is
    (new - 1) / (time of the `max_new_tokens=new` call - prefill time), the same split
    as `seam generate` (the prefill yields the first token, each decode step one more).
    """
    prefill_s, _ = torch_generate(model, prompt, 1)
    total_s, ids = torch_generate(model, prompt, new)
    return len(prompt) / prefill_s, (new - 1) / max(total_s - prefill_s, 1e-9), ids


def spread(values, digits=1):
    """`median [min-max]` of tokens/s values."""
    return (f"{statistics.median(values):.{digits}f} "
            f"[{min(values):.{digits}f}-{max(values):.{digits}f}]")


def first_difference(a, b):
    """The first position where the id lists `a` and `b` differ."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
