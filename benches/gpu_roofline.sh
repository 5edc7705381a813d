#!/usr/bin/env bash
# Decode at the roofline on a real GPU, Seam and PyTorch side by side in one run.
#
# 1. The device's memory bandwidth: a device-to-device copy through PyTorch
#    (bytes read + written / time, best of 20 after warm-up).
# 2. Seam's product kernels alone: the `kernels` bench of seam-runtime (GEMV
#    M = 1 at K = 4096, N = 11008 and the SmolLM2 shapes, per weight format),
#    GB/s of weight bytes; PyTorch's own GEMV (f32 and f16 `x @ W`) on the same
#    shape for reference.
# 3. A Llama-shaped model with random weights, made here with transformers
#    (hidden 2048, 8 layers, 32 heads / 8 kv heads, intermediate 5632, vocab
#    32000: TinyLlama-1.1B's shape, half its layers), compiled by `seam` at f32, f16, q8_0 and
#    q4_0 with a KV cache, decoded greedily with `seam generate`; PyTorch eager
#    (transformers generate, greedy, KV cache) in f32 and f16 on the same
#    weights. Per result: decode tokens/s, weight bytes a decode step streams
#    (the bundle's product weights, or the checkpoint's parameters × bytes),
#    effective GB/s and % of the measured bandwidth.
#
# Usage: benches/gpu_roofline.sh SEAM_BINARY KERNELS_BENCH_BINARY OUT_DIR
# (build both here with `cargo build --release -p seam-cli` and
# `cargo bench -p seam-runtime --bench kernels --no-run`). Needs python3 with
# torch and transformers, and a Vulkan driver for the GPU.
set -uo pipefail
SEAM=$1; KBENCH=$2; OUT=$3
WORK=${WORK:-$(mktemp -d)}   # the checkpoint and bundles (gigabytes)
mkdir -p "$OUT"
export WGPU_BACKEND=${WGPU_BACKEND:-vulkan} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
python3 - <<'PY' 2>&1 | tee "$OUT/bandwidth.txt"
import torch, time
n = 1 << 30
a = torch.empty(n, dtype=torch.uint8, device="cuda"); b = torch.empty_like(a)
for _ in range(3): b.copy_(a)
torch.cuda.synchronize(); best = 1e9
for _ in range(20):
    s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
    s.record(); b.copy_(a); e.record(); torch.cuda.synchronize()
    best = min(best, s.elapsed_time(e) / 1e3)
print(f"copy bandwidth: {2 * n / best / 1e9:.0f} GB/s (read + write)")
for dt in (torch.float32, torch.float16):
    x = torch.randn(1, 4096, device="cuda", dtype=dt); w = torch.randn(4096, 11008, device="cuda", dtype=dt)
    for _ in range(10): x @ w
    torch.cuda.synchronize(); best = 1e9
    for _ in range(50):
        s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
        s.record(); x @ w; e.record(); torch.cuda.synchronize()
        best = min(best, s.elapsed_time(e) / 1e3)
    print(f"torch GEMV {dt}: {w.numel() * w.element_size() / best / 1e9:.0f} GB/s of weights ({best * 1e6:.0f} us)")
PY
SEAM_BENCH_QUANT_ONLY=1 timeout 150 "$KBENCH" --bench 2>&1 | tee "$OUT/kernels.txt" | tail -40
python3 - "$WORK/ckpt" <<'PY'
import sys, torch, transformers
cfg = transformers.LlamaConfig(hidden_size=2048, num_hidden_layers=8, num_attention_heads=32,
    num_key_value_heads=8, intermediate_size=5632, vocab_size=32000, max_position_embeddings=2048,
    tie_word_embeddings=False)
torch.manual_seed(0)
m = transformers.LlamaForCausalLM(cfg).to(torch.float32)
m.save_pretrained(sys.argv[1], safe_serialization=True)
print("checkpoint", sum(p.numel() for p in m.parameters()) / 1e9, "B params")
PY
PROMPT=$(python3 -c "print(','.join(str(1 + (i * 37) % 31000) for i in range(16)))")
for fmt in f32 f16 q8_0 q4_0; do
  timeout 300 "$SEAM" compile "$WORK/ckpt" -o "$WORK/m_$fmt.seamb" --max-seq-len 128 --weights "$fmt" --force 2>&1 | tail -2
  timeout 120 "$SEAM" generate "$WORK/m_$fmt.seamb" --prompt-ids "$PROMPT" --max-new-tokens 64 2>&1 | grep -E "prefill|decode" | sed "s/^/seam $fmt: /"
  "$SEAM" inspect "$WORK/m_$fmt.seamb" 2>&1 | grep "weights by storage" | sed "s/^/seam $fmt: /"
  rm -f "$WORK/m_$fmt.seamb"
done 2>&1 | tee "$OUT/seam.txt"
python3 - "$WORK/ckpt" "$PROMPT" <<'PY' 2>&1 | grep -v Warning | tee "$OUT/torch.txt"
import sys, time, torch, transformers
ids = torch.tensor([[int(t) for t in sys.argv[2].split(",")]], device="cuda")
for dt in (torch.float32, torch.float16):
    m = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=dt).cuda().eval()
    bytes_ = sum(p.numel() * p.element_size() for p in m.parameters()) - m.model.embed_tokens.weight.numel() * m.model.embed_tokens.weight.element_size()
    def run(n):
        torch.cuda.synchronize(); t = time.perf_counter()
        m.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        torch.cuda.synchronize(); return time.perf_counter() - t
    run(4); pre = min(run(1) for _ in range(3)); full = min(run(64) for _ in range(3))
    tps = 63 / (full - pre)
    print(f"torch {dt}: decode {tps:.1f} tok/s, {bytes_ / 1e9:.2f} GB/token, {bytes_ * tps / 1e9:.0f} GB/s; prefill {16 / pre:.0f} tok/s")
PY
