#!/usr/bin/env python3
"""Load benchmark of `seam serve`: C concurrent clients on loopback.

Starts the release `seam serve BUNDLE` twice — with `--max-batch 1` (batch-1
serving: one sequence at a time) for each client count in --baseline-clients,
and with `--max-batch B` (continuous batching) for each in --clients — and
sends the same mixed workload: max(N, C) requests (prompt lengths and output
lengths varied, fixed seed; the first N are the same in every run), at most C
in flight at once, each streamed with server-sent events from
`POST /v1/completions` (prompts as token-id arrays, greedy; max_tokens bounds
every request, and a request that meets the model's EOS ends early — the
same in both servers, so the comparison holds). Reports per run:

- aggregate decode tokens/s: completion tokens of all requests / wall time;
- time to first token (p50, p95) and per-token latency (p50, p95 of each
  request's mean gap between streamed tokens);
- failed or lost requests (any non-200 answer, or fewer tokens than asked).

The headline ratio is batched serving's aggregate tokens/s at C clients over
batch-1 serving of the same requests one after another (one client). Only the
standard library is used.

    benches/serve_load.py BUNDLE [--clients 1,4,16,64] [--baseline-clients 1,16]
        [--requests 16]
        [--max-batch 16] [--prompt-max 48] [--output-max 32]
        [--seam target/release/seam] [--out results.md]
"""

import argparse
import http.client
import json
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def workload(n, vocab, seed, prompt_max, output_max):
    """N requests: prompts of 4..prompt_max tokens, 8..output_max new tokens,
    fixed seed."""
    rng = random.Random(seed)
    return [
        {
            "prompt": [rng.randrange(1, vocab) for _ in range(rng.randint(4, prompt_max))],
            "max_tokens": rng.randint(8, output_max),
        }
        for _ in range(n)
    ]


def start_server(seam, bundle, max_batch):
    proc = subprocess.Popen(
        [str(seam), "serve", str(bundle), "--port", "0", "--max-batch", str(max_batch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith("listening on http://"):
            host_port = line.strip().removeprefix("listening on http://")
            host, port = host_port.rsplit(":", 1)
            return proc, host, int(port)
    raise SystemExit(f"seam serve (max batch {max_batch}) exited before listening")


def one_request(host, port, body):
    """Streams one completion; returns (ok, tokens, ttft, token gaps)."""
    conn = http.client.HTTPConnection(host, port, timeout=600)
    started = time.perf_counter()
    payload = dict(body, stream=True, temperature=0)
    conn.request("POST", "/v1/completions", json.dumps(payload), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        resp.read()
        return False, 0, None, []
    times = []
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data: "):
            continue
        data = line[len("data: "):]
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if "error" in chunk:
            return False, len(times), None, []
        if chunk["choices"] and chunk["choices"][0].get("text") is not None:
            times.append(time.perf_counter())
    conn.close()
    if not times:
        return False, 0, None, []
    gaps = [b - a for a, b in zip(times, times[1:])]
    return True, len(times), times[0] - started, gaps


def run_load(host, port, requests, clients):
    """At most `clients` requests in flight; returns the run's figures."""
    results = [None] * len(requests)
    next_index = [0]
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(requests):
                return
            results[i] = one_request(host, port, requests[i])

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ok = [r for r in results if r and r[0]]
    tokens = sum(r[1] for r in ok)
    ttft = sorted(r[2] for r in ok)
    per_token = sorted(statistics.mean(r[3]) for r in ok if r[3])
    return {
        "clients": clients,
        "requests": len(requests),
        "failed": len(requests) - len(ok),
        "tokens": tokens,
        "wall_s": wall,
        "tok_s": tokens / wall,
        "ttft_p50": pct(ttft, 50),
        "ttft_p95": pct(ttft, 95),
        "tpot_p50": pct(per_token, 50),
        "tpot_p95": pct(per_token, 95),
    }


def pct(xs, p):
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--clients", default="1,4,16,64")
    ap.add_argument("--baseline-clients", default="1,16")
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=1000, help="prompt ids are drawn below this")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--prompt-max", type=int, default=48, help="longest prompt (tokens)")
    ap.add_argument("--output-max", type=int, default=32, help="most new tokens per request")
    ap.add_argument("--seam", type=Path, default=ROOT / "target" / "release" / "seam")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    runs = [(1, [int(c) for c in args.baseline_clients.split(",")]),
            (args.max_batch, [int(c) for c in args.clients.split(",")])]
    most = max(max(counts) for _, counts in runs)
    everything = workload(max(args.requests, most), args.vocab, args.seed, args.prompt_max, args.output_max)
    rows = []
    for max_batch, counts in runs:
        proc, host, port = start_server(args.seam, args.bundle, max_batch)
        try:
            for clients in counts:
                r = run_load(host, port, everything[: max(args.requests, clients)], clients)
                r["max_batch"] = max_batch
                rows.append(r)
                print(
                    f"max-batch {max_batch:3} clients {clients:3} requests {r['requests']:3}: "
                    f"{r['tok_s']:8.1f} tok/s, "
                    f"TTFT p50 {r['ttft_p50']*1e3:8.1f} ms p95 {r['ttft_p95']*1e3:8.1f} ms, "
                    f"per token p50 {r['tpot_p50']*1e3:7.1f} ms p95 {r['tpot_p95']*1e3:7.1f} ms, "
                    f"failed {r['failed']}",
                    flush=True,
                )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    sequential = next(r["tok_s"] for r in rows if r["max_batch"] == 1 and r["clients"] == 1) \
        if any(r["max_batch"] == 1 and r["clients"] == 1 for r in rows) else float("nan")
    lines = [
        f"# seam serve load: {args.bundle.name}, max batch {args.max_batch}, "
        f"prompts 4-{args.prompt_max} tokens, 8-{args.output_max} new tokens",
        "",
        "| max batch | clients | requests | tok/s | vs sequential batch-1 | TTFT p50 ms | TTFT p95 ms | per-token p50 ms | per-token p95 ms | failed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["tok_s"] / sequential
        lines.append(
            f"| {r['max_batch']} | {r['clients']} | {r['requests']} | {r['tok_s']:.1f} | {ratio:.2f}x | "
            f"{r['ttft_p50']*1e3:.0f} | {r['ttft_p95']*1e3:.0f} | {r['tpot_p50']*1e3:.1f} | "
            f"{r['tpot_p95']*1e3:.1f} | {r['failed']} |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)
    if any(r["failed"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
