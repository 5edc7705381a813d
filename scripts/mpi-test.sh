#!/usr/bin/env bash
# Shard sets under mpirun (issue: tensor parallelism over MPI): builds `seam`
# with `--features mpi`, compiles models with --tensor-parallel 2 and 4, runs
# every rank with `mpirun --oversubscribe` (each rank its own lavapipe device)
# and checks them against the single-device run, serves a 2-rank set over
# HTTP (`seam serve` under mpirun) against one device; then the refusals: a wrong
# rank count and ranks of different compiles fail on every rank, none hangs.
# Skips, saying so, where OpenMPI (mpirun, libmpi) or libclang is missing
# (`.ci/run` installs them: openmpi-bin libopenmpi-dev libclang-dev).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mpirun >/dev/null || ! command -v mpicc >/dev/null; then
    echo "mpi-test: skipped (OpenMPI not installed: apt-get install openmpi-bin libopenmpi-dev libclang-dev)" >&2
    exit 0
fi
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
# Root is allowed here (CI runs as root); every reduction fails after 60 s.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export SEAM_COLLECTIVE_TIMEOUT_S=60
cargo build -q -p seam-cli --features mpi
seam=target/debug/seam
mpi() { timeout 300 mpirun --oversubscribe -np "$1" "${@:2}"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The largest |a - b| over the largest |b| of two f32 .npy files.
compare() {
    python3 - "$1" "$2" <<'PY'
import struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<H", b[8:10])[0]
    data = b[10 + n:]
    return struct.unpack("<%df" % (len(data) // 4), data)
a, b = load(sys.argv[1]), load(sys.argv[2])
assert len(a) == len(b), (len(a), len(b))
scale = max(abs(x) for x in b)
print("%.3e" % (max(abs(x - y) for x, y in zip(a, b)) / scale))
PY
}

check_forward() { # MODEL RANKS: a .seam file (random weights) or a checkpoint folder (its own)
    local name=$(basename "$1" .seam) weights=()
    [[ "$1" == *.seam ]] && weights=(--random-weights 3)
    $seam compile "$1" -o "$tmp/$name.seamb" "${weights[@]}" --force >/dev/null
    $seam compile "$1" -o "$tmp/${name}_tp.seamb" "${weights[@]}" --tensor-parallel "$2" --force >/dev/null
    $seam run "$tmp/$name.seamb" --tokens 1,2,3,4,5,6,7 --out "$tmp/one.npy" --force >/dev/null
    mpi "$2" $seam run "$tmp/${name}_tp.seamb" --tokens 1,2,3,4,5,6,7 --out "$tmp/tp.npy" --force >/dev/null
    local err=$(compare "$tmp/tp.npy" "$tmp/one.npy")
    echo "mpi-test: $name forward, $2 ranks: max relative difference $err"
    python3 -c "import sys; sys.exit(0 if float('$err') <= 1e-4 else 1)" \
        || { echo "mpi-test: $name at $2 ranks differs from one device by $err" >&2; exit 1; }
}

check_generate() { # MODEL RANKS
    local name=$(basename "$1" .seam)
    $seam compile "$1" -o "$tmp/$name.seamb" --random-weights 3 --max-seq-len 64 --force >/dev/null
    $seam compile "$1" -o "$tmp/${name}_tp.seamb" --random-weights 3 --max-seq-len 64 --tensor-parallel "$2" --force >/dev/null
    local one=$($seam generate "$tmp/$name.seamb" --prompt-ids 1,2,3,4 --max-new-tokens 12 | grep '^generated:')
    local tp=$(mpi "$2" $seam generate "$tmp/${name}_tp.seamb" --prompt-ids 1,2,3,4 --max-new-tokens 12 | grep '^generated:')
    echo "mpi-test: $name generate, $2 ranks: $tp (one device: ${one#generated: })"
    [ "$one" = "$tp" ] || { echo "mpi-test: $name at $2 ranks generated other tokens" >&2; exit 1; }
}

# `seam serve` under mpirun: rank 0 serves and the other rank follows its
# engine. The HF llama fixture (it has a tokenizer) single-device and as a
# 2-rank set; the same greedy requests (some at once, so steps batch them)
# to both must give the same completions; the 2-rank server idles past the
# reduction timeout (keep-alives hold the follower), then SIGINT to rank 0
# must end every rank with status 0.
check_serve() {
    $seam compile tests/fixtures/hf/llama -o "$tmp/serve.seamb" --max-seq-len 64 --force >/dev/null
    $seam compile tests/fixtures/hf/llama -o "$tmp/serve_tp.seamb" --max-seq-len 64 --tensor-parallel 2 --force >/dev/null
    timeout 300 $seam serve "$tmp/serve.seamb" --port 0 >"$tmp/one.out" 2>"$tmp/one.err" &
    local one=$!
    SEAM_COLLECTIVE_TIMEOUT_S=3 timeout 300 mpirun --oversubscribe -np 2 \
        $seam serve "$tmp/serve_tp.seamb" --port 0 >"$tmp/tp.out" 2>"$tmp/tp.err" &
    local tp=$!
    local k
    for k in $(seq 120); do
        grep -q listening "$tmp/one.out" 2>/dev/null && grep -q listening "$tmp/tp.out" 2>/dev/null && break
        sleep 0.5
    done
    local url_one=$(sed -n 's/^listening on //p' "$tmp/one.out") url_tp=$(sed -n 's/^listening on //p' "$tmp/tp.out")
    [ -n "$url_one" ] && [ -n "$url_tp" ] || { echo "mpi-test: a server did not start" >&2; cat "$tmp/one.err" "$tmp/tp.err" >&2; kill $one $tp; exit 1; }
    python3 - "$url_one" "$url_tp" <<'PY' || { kill $one $tp; exit 1; }
import json, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
prompts = [[1, 2, 3, 4], [5, 6, 7], "hello world", [9, 8, 7, 6, 5, 4, 3, 2], "the end"]
def complete(url, prompt):
    body = json.dumps({"prompt": prompt, "max_tokens": 12, "temperature": 0}).encode()
    req = urllib.request.Request(url + "/v1/completions", body, {"content-type": "application/json"})
    r = json.load(urllib.request.urlopen(req, timeout=120))
    return r["choices"][0]["text"], r["choices"][0]["finish_reason"], r["usage"]["completion_tokens"]
def batch(url):
    with ThreadPoolExecutor(len(prompts)) as pool:
        return list(pool.map(lambda p: complete(url, p), prompts))
one, tp = sys.argv[1], sys.argv[2]
t = time.time(); want = batch(one); t_one = time.time() - t
t = time.time(); got = batch(tp); t_tp = time.time() - t
assert got == want, (got, want)
time.sleep(5)  # idle past the 3 s reduction timeout
again = batch(tp)
assert again == want, (again, want)
metrics = urllib.request.urlopen(tp + "/metrics", timeout=10).read().decode()
tokens = [l for l in metrics.splitlines() if l.startswith("seam_generated_tokens_total")][0]
print("mpi-test: serve, 2 ranks: %d concurrent greedy completions equal one device's (%d tokens each; %.2f s vs %.2f s on one device), equal again after 5 s idle; %s"
      % (len(want), want[0][2], t_tp, t_one, tokens))
PY
    # SIGINT straight to the servers (a background job's SIGINT would be
    # ignored by the shell's `timeout`): rank 0 and the single-device seam.
    local mpirun=$(pgrep -P $tp -x mpirun) seam_one=$(pgrep -P $one -x seam) ranks rank0 p
    ranks=$(pgrep -P "$mpirun")
    for p in $ranks; do
        tr '\0' '\n' <"/proc/$p/environ" | grep -qx OMPI_COMM_WORLD_RANK=0 && rank0=$p
    done
    local started=$(date +%s.%N)
    kill -INT "$rank0" "$seam_one"
    local status=0
    wait $tp || status=$?
    local took=$(python3 -c "import time; print('%.2f' % (time.time() - $started))")
    wait $one || { echo "mpi-test: the single-device server did not stop cleanly" >&2; exit 1; }
    [ "$status" = 0 ] || { echo "mpi-test: mpirun seam serve ended with $status" >&2; cat "$tmp/tp.err" >&2; exit 1; }
    for p in $ranks $mpirun $seam_one; do
        if kill -0 "$p" 2>/dev/null; then echo "mpi-test: process $p outlived its server" >&2; exit 1; fi
    done
    echo "mpi-test: serve, 2 ranks: SIGINT to rank 0 ended every rank with status 0 in $took s"
}

check_forward examples/ladder_residual.seam 2
check_forward examples/ladder_residual.seam 4
check_forward examples/mixtral_tiny.seam 2
# The Hugging Face fixtures with their own weights: dense, and MoE expert-parallel.
for fixture in llama mixtral qwen2_moe; do
    check_forward tests/fixtures/hf/$fixture 2
    check_forward tests/fixtures/hf/$fixture 4
done
check_generate examples/mixtral_tiny_kv.seam 2
check_generate examples/mixtral_tiny_kv.seam 4
check_serve

# A model over one device's memory budget runs as 2 ranks holding half each.
$seam compile examples/ladder_residual.seam -o "$tmp/big.seamb" --random-weights 3 --force >/dev/null
$seam compile examples/ladder_residual.seam -o "$tmp/halves.seamb" --random-weights 3 --tensor-parallel 2 --force >/dev/null
total=$(stat -c %s "$tmp/big.seamb"); half=$(stat -c %s "$tmp/halves.rank0.seamb")
budget=$(( (total + half) / 2 ))
if out=$($seam run "$tmp/big.seamb" --tokens 1,2,3 --memory-budget "$budget" 2>&1); then
    echo "mpi-test: the whole model ran within a budget below its weights" >&2; exit 1
fi
grep -q "over the budget" <<<"$out" || { echo "mpi-test: unexpected error: $out" >&2; exit 1; }
mpi 2 $seam run "$tmp/halves.seamb" --tokens 1,2,3 --memory-budget "$budget" >/dev/null
echo "mpi-test: a $total-byte bundle refused under a $budget-byte budget runs as 2 ranks of $half bytes"

# A 2-rank set under 3 ranks: every rank fails, naming the mismatch.
$seam compile examples/ladder_residual.seam -o "$tmp/set.seamb" --random-weights 3 --tensor-parallel 2 --force >/dev/null
if out=$(mpi 3 $seam run "$tmp/set.seamb" --tokens 1,2 2>&1); then
    echo "mpi-test: a 2-rank set ran under 3 ranks" >&2; exit 1
fi
grep -q "shard set" <<<"$out" || { echo "mpi-test: unexpected error: $out" >&2; exit 1; }
# Ranks from two different compiles: refused on every rank.
$seam compile examples/ladder_residual.seam -o "$tmp/other.seamb" --random-weights 4 --tensor-parallel 2 --force >/dev/null
cp "$tmp/other.rank1.seamb" "$tmp/set.rank1.seamb"
if out=$(mpi 2 $seam run "$tmp/set.seamb" --tokens 1,2 2>&1); then
    echo "mpi-test: ranks of different compiles ran together" >&2; exit 1
fi
grep -q "different shard sets" <<<"$out" || { echo "mpi-test: unexpected error: $out" >&2; exit 1; }
# A routing trace would hold rank-local expert ids: refused under mpirun.
if out=$(mpi 2 $seam serve "$tmp/serve_tp.seamb" --port 0 --routing-trace "$tmp/trace.jsonl" 2>&1); then
    echo "mpi-test: seam serve recorded a routing trace under mpirun" >&2; exit 1
fi
grep -q "routing-trace cannot be recorded under mpirun" <<<"$out" || { echo "mpi-test: unexpected error: $out" >&2; exit 1; }
echo "mpi-test: refusals ok (wrong rank count, mixed sets, --routing-trace)"

# Two emulated hosts (network namespaces over a 1 Gbit/s link, OpenMPI's TCP
# transport between them): the 2-rank ladder set equals one device. Needs root.
status=0
bash scripts/netns-hosts.sh up 2 1gbit 2>"$tmp/netns.err" || status=$?
if [ "$status" = 3 ]; then
    echo "mpi-test: emulated hosts skipped: $(cat "$tmp/netns.err")" >&2
elif [ "$status" != 0 ]; then
    cat "$tmp/netns.err" >&2; bash scripts/netns-hosts.sh down 2; exit 1
else
    trap 'bash scripts/netns-hosts.sh down 2; rm -rf "$tmp"' EXIT
    $seam compile examples/ladder_residual.seam -o "$tmp/hosts.seamb" --random-weights 3 --tensor-parallel 2 --force >/dev/null
    timeout 300 bash scripts/netns-hosts.sh mpirun 2 $seam run "$tmp/hosts.seamb" --tokens 1,2,3,4,5,6,7 --out "$tmp/hosts.npy" --force >/dev/null
    $seam compile examples/ladder_residual.seam -o "$tmp/one.seamb" --random-weights 3 --force >/dev/null
    $seam run "$tmp/one.seamb" --tokens 1,2,3,4,5,6,7 --out "$tmp/one.npy" --force >/dev/null
    err=$(compare "$tmp/hosts.npy" "$tmp/one.npy")
    echo "mpi-test: ladder_residual over 2 emulated hosts (1 Gbit/s, TCP): max relative difference $err"
    python3 -c "import sys; sys.exit(0 if float('$err') <= 1e-4 else 1)" \
        || { echo "mpi-test: the 2-host run differs from one device by $err" >&2; exit 1; }
fi
