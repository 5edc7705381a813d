#!/usr/bin/env bash
# Shard sets under mpirun (issue: tensor parallelism over MPI): builds `seam`
# with `--features mpi`, compiles models with --tensor-parallel 2 and 4, runs
# every rank with `mpirun --oversubscribe` (each rank its own lavapipe device)
# and checks them against the single-device run; then the refusals: a wrong
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
echo "mpi-test: refusals ok (wrong rank count, mixed sets)"

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
