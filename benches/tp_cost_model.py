#!/usr/bin/env python3
"""Ladder Residual vs standard at TP=8 on H100s with NVLink: an analytic model.

Per layer and token step, each rank runs attention and the MLP on its 1/N of the
heads and hidden units, then all-reduces the [tokens, d] partial after each (two
all-reduces per layer). The model assumes:
- compute is the larger of the weight stream (bytes / HBM bandwidth) and the
  FLOPs (2·params·tokens / peak), each at EFFICIENCY of the datasheet figure,
  plus a fixed launch overhead per module;
- an all-reduce is a ring: 2·(N−1)/N · bytes / link bandwidth, plus a latency
  per step (2·(N−1) steps);
- standard residual: every all-reduce is on the critical path (compute + comm);
- ladder residual: module k's all-reduce overlaps module k+1's compute, so a
  module costs max(compute, comm) (the paper's form; the first/last are exposed).
Datasheet constants (H100 SXM5): 3.35 TB/s HBM3, 989 TFLOP/s dense bf16,
NVLink 4 450 GB/s per direction; bf16 activations and weights. Llama-3-70B
shapes (d 8192, ffn 28672, 64 query / 8 kv heads, 80 layers).

    python3 benches/tp_cost_model.py
"""

HBM = 3.35e12
FLOPS = 989e12
LINK = 450e9
HOP_LATENCY = 3e-6
LAUNCH = 4e-6
EFFICIENCY = 0.6
D, FFN, HEADS, KV, HEAD_DIM, LAYERS = 8192, 28672, 64, 8, 128, 80
BYTES = 2


def module_times(n, tokens):
    attn_params = D * HEADS * HEAD_DIM * 2 + D * KV * HEAD_DIM * 2
    mlp_params = 3 * D * FFN
    out = []
    for params in (attn_params, mlp_params):
        p = params / n
        stream = p * BYTES / (HBM * EFFICIENCY)
        math = 2 * p * tokens / (FLOPS * EFFICIENCY)
        compute = max(stream, math) + LAUNCH
        size = tokens * D * BYTES
        comm = 2 * (n - 1) / n * size / LINK + 2 * (n - 1) * HOP_LATENCY
        out.append((compute, comm))
    return out


def main():
    n = 8
    print("| tokens per step | standard ms/step | ladder ms/step | all-reduce share (standard) | ladder speed-up |")
    print("|---|---|---|---|---|")
    for tokens in (1, 8, 32, 128, 512, 2048):
        mods = module_times(n, tokens) * LAYERS
        standard = sum(c + m for c, m in mods)
        comm = sum(m for _, m in mods)
        ladder = sum(max(c, m) for c, m in mods) + mods[-1][1]
        print(f"| {tokens} | {standard * 1e3:.2f} | {ladder * 1e3:.2f} | {comm / standard:.0%} | {standard / ladder:.2f}x |")


if __name__ == "__main__":
    main()
