#!/usr/bin/env bash
# Emulated hosts for multi-rank runs: N network namespaces (seamns1…seamnsN,
# addresses 10.77.0.1…N) joined by veth pairs to one bridge, each link shaped
# to RATE with tc (`tbf`; `netem` adds DELAY where the kernel has sch_netem),
# and an ssh stand-in that OpenMPI's launcher uses to start a rank "on" a host
# (in its namespace) — the path a two-host run takes, over TCP.
#
#   scripts/netns-hosts.sh up N RATE [DELAY]   e.g. up 2 10gbit 20us
#   scripts/netns-hosts.sh mpirun N ARGS…      mpirun across the N hosts
#   scripts/netns-hosts.sh down N
#
# Needs root (CAP_NET_ADMIN) and iproute2; `up` exits 3, saying why, where
# namespaces cannot be made.
set -euo pipefail
cmd=${1:?up|mpirun|down}; n=${2:?N}
agent=/tmp/seam-netns-ssh
# Removes every emulated host and the bridge (what an interrupted run left too).
teardown() {
    for ns in $(ip netns list 2>/dev/null | awk '/^seamns/ {print $1}'); do
        ip netns del "$ns" 2>/dev/null || true
    done
    # A namespace whose processes linger goes away later: drop its links now.
    for link in $(ip -o link show | awk -F': ' '$2 ~ /^v[0-9]+-br@/ {sub(/@.*/, "", $2); print $2}'); do
        ip link del "$link" 2>/dev/null || true
    done
    ip link del br-seam 2>/dev/null || true
}

case "$cmd" in
up)
    rate=${3:?RATE}; delay=${4:-}
    if ! ip netns add seamns-probe 2>/dev/null; then
        echo "netns-hosts: cannot create network namespaces here (needs root and CAP_NET_ADMIN)" >&2
        exit 3
    fi
    ip netns del seamns-probe
    teardown
    ip link add br-seam type bridge
    ip link set br-seam up
    for i in $(seq 1 "$n"); do
        ip netns add "seamns$i"
        ip link add "v$i-ns" type veth peer name "v$i-br"
        ip link set "v$i-ns" netns "seamns$i"
        ip link set "v$i-br" master br-seam up
        ip netns exec "seamns$i" ip addr add "10.77.0.$i/24" dev "v$i-ns"
        ip netns exec "seamns$i" ip link set "v$i-ns" up
        ip netns exec "seamns$i" ip link set lo up
        if [ -n "$delay" ] && ip netns exec "seamns$i" tc qdisc add dev "v$i-ns" root netem rate "$rate" delay "$delay" 2>/dev/null; then
            :
        else
            [ -n "$delay" ] && echo "netns-hosts: no netem in this kernel: $rate without the $delay delay" >&2
            ip netns exec "seamns$i" tc qdisc add dev "v$i-ns" root tbf rate "$rate" burst 256kb latency 5ms
        fi
    done
    ;;
mpirun)
    shift 2
    cat >"$agent" <<'SH'
#!/bin/sh
# ssh stand-in: "[options] HOST COMMAND..." runs COMMAND in HOST's namespace.
while [ $# -gt 0 ]; do case "$1" in -*) shift;; *) break;; esac; done
host=$1; shift
exec ip netns exec "seamns${host##*.}" sh -c "$*"
SH
    chmod +x "$agent"
    hosts=$(seq -s, -f "10.77.0.%g" 1 "$n")
    exec ip netns exec seamns1 mpirun --host "$hosts" -np "$n" \
        --mca plm_rsh_agent "$agent" --mca btl tcp,self \
        --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
        -x WGPU_BACKEND -x SEAM_COLLECTIVE_TIMEOUT_S -x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM \
        "$@"
    ;;
down)
    teardown
    ;;
*) echo "netns-hosts: unknown command $cmd" >&2; exit 2 ;;
esac
