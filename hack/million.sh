#!/usr/bin/env bash
# Holds CONNS idle, authenticated connections spread over GATEWAYS gateway processes on this
# machine, with the load tool (tcpgwctl bench, raw driver) as the clients, and prints each
# gateway's memory per connection. Sized by default for 1,000,000 connections on a 16-core
# machine with 32 GiB or more; at a small size it is a smoke test (hack/million_test.go runs
# it with CONNS=600 GATEWAYS=2 in `go test ./hack/`).
#
#   hack/million.sh                        # 1M: checks the kernel settings first (below)
#   APPLY=1 hack/million.sh                # as root: sets what is missing, then runs
#   CONNS=57000 GATEWAYS=3 hack/million.sh # 3 x 19000, within a 20000-file hard limit
#
# Knobs (environment): CONNS (1000000), GATEWAYS (4), HOLD (60s: how long every connection is
# held before the gateways are measured, once all are connected), MEASURE (30s: how long they
# are held after that, the load tool's measured window), RAMP (20000 new connections
# per second per gateway), PROCS (load-tool processes per gateway; default: as many as its
# open-file limit needs), BIN (a directory with gateway and tcpgwctl already built; default:
# built from this checkout into OUT), OUT (a new temporary directory: configs, logs,
# summary.txt), APPLY (1: set missing kernel settings with sysctl, as root), CHECK_ONLY (1:
# check the settings and stop).
#
# Kernel settings for CONNS connections (both ends on this machine: 2 sockets per connection),
# checked before the run, each with the value it needs:
#   fs.nr_open                     >= the most files one process opens (a gateway's share + 256);
#                                     the ceiling of RLIMIT_NOFILE, which the script raises
#   fs.file-max                    >= 2 x CONNS + 65536 (every socket is an open file)
#   net.ipv4.ip_local_port_range   "1024 65535": 64511 ports per source address (Go binds the
#                                     source address before connect, so a port is used once per
#                                     address, whatever the destination)
#   source addresses               ceil(CONNS / 58000) loopback addresses: each gateway's clients
#                                     use their own 127.G.0.0/22 (1024 addresses; every 127/8
#                                     address is local on Linux, nothing to configure)
#   net.core.somaxconn             >= 65535 and net.ipv4.tcp_max_syn_backlog >= 65535: the
#                                     accept queue during the ramp
#   net.ipv4.tcp_mem               >= "1048576 1572864 2097152" pages (4/6/8 GiB): an idle
#                                     socket holds no buffer, but pushes to 1M sockets and the
#                                     ramp's handshakes do; below the pressure mark the kernel
#                                     shrinks buffers, above the max it drops
#   net.netfilter.nf_conntrack_max >= 2 x CONNS when the conntrack module is loaded (not
#                                     needed otherwise; loopback flows are tracked too)
#   memory                         MemAvailable >= CONNS x 18 KiB: ~7 KiB in the gateway,
#                                     ~6 KiB in the load tool, ~4 KiB of kernel socket state
#                                     (two sockets), with headroom
set -euo pipefail

CONNS=${CONNS:-1000000}
GATEWAYS=${GATEWAYS:-4}
HOLD=${HOLD:-60s}
MEASURE=${MEASURE:-30s}
RAMP=${RAMP:-20000}
APPLY=${APPLY:-0}
CHECK_ONLY=${CHECK_ONLY:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "million: $*" >&2; exit 1; }
(( CONNS >= GATEWAYS && GATEWAYS >= 1 )) || die "CONNS ($CONNS) must be >= GATEWAYS ($GATEWAYS) >= 1"
(( GATEWAYS <= 200 )) || die "at most 200 gateways (each gets a 127.G.0.0/22 of client addresses)"

per_gw=$(( (CONNS + GATEWAYS - 1) / GATEWAYS ))
need_files=$(( per_gw + 256 ))

# Raise this shell's open-file limit (inherited by the gateways) as far as needed and allowed.
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && (( hard < need_files )); then
  ulimit -Hn "$need_files" 2>/dev/null || true
fi
hard=$(ulimit -Hn)
[[ $hard == unlimited ]] && hard=$need_files
# Only ever raised: a lower limit would also starve the go build below.
soft=$(ulimit -n)
want=$(( hard < need_files ? hard : need_files ))
if [[ $soft != unlimited ]] && (( soft < want )); then
  ulimit -n "$want"
fi
nofile=$(ulimit -n)
[[ $nofile == unlimited ]] && nofile=$need_files
# The load tool needs a process per (nofile - 256) connections of a gateway.
per_proc=$(( nofile - 256 ))
(( per_proc > 0 )) || die "open-file limit $nofile is too low"
PROCS=${PROCS:-$(( (per_gw + per_proc - 1) / per_proc ))}

problems=0
# need NAME CURRENT WANT SETTING: reports a setting below what the run needs (and sets it with
# APPLY=1).
need() {
  local name=$1 cur=$2 want=$3 set=$4
  if (( cur >= want )); then
    return
  fi
  if [[ $APPLY == 1 ]]; then
    echo "million: setting $set (was $cur)"
    sysctl -q -w "$set"
  else
    echo "million: $name is $cur, needs >= $want: sysctl -w '$set'" >&2
    problems=$((problems + 1))
  fi
}
sysval() { tr -s ' \t' ' ' < "/proc/sys/$1" | cut -d' ' -f"${2:-1}"; }

need fs.nr_open "$(sysval fs/nr_open)" "$need_files" "fs.nr_open=$(( need_files > 1048576 ? need_files : 1048576 ))"
need fs.file-max "$(sysval fs/file-max)" $(( 2 * CONNS + 65536 )) "fs.file-max=$(( 2 * CONNS + 65536 ))"
if (( nofile < need_files )); then
  echo "million: open files per process limited to $nofile (hard limit; $need_files wanted): a gateway holds at most $(( nofile - 256 ))" >&2
  if (( per_gw > nofile - 256 )); then problems=$((problems + 1)); fi
fi
lo=$(sysval net/ipv4/ip_local_port_range 1); hi=$(sysval net/ipv4/ip_local_port_range 2)
ports=$(( hi - lo + 1 ))
# Per gateway, its clients' addresses: 1024 of them, each good for ~90% of the port range.
if (( per_gw > 1024 * ports * 9 / 10 )); then
  echo "million: $per_gw connections per gateway need more than the 1024 source addresses it gets" >&2
  problems=$((problems + 1))
fi
if (( ports < 60000 )) && (( CONNS > 200000 )); then
  need net.ipv4.ip_local_port_range "$ports" 64511 "net.ipv4.ip_local_port_range=1024 65535"
fi
if (( CONNS > 100000 )); then
  need net.core.somaxconn "$(sysval net/core/somaxconn)" 65535 "net.core.somaxconn=65535"
  need net.ipv4.tcp_max_syn_backlog "$(sysval net/ipv4/tcp_max_syn_backlog)" 65535 "net.ipv4.tcp_max_syn_backlog=65535"
  need "net.ipv4.tcp_mem (max)" "$(sysval net/ipv4/tcp_mem 3)" 2097152 "net.ipv4.tcp_mem=1048576 1572864 2097152"
fi
if [[ -r /proc/sys/net/netfilter/nf_conntrack_max ]]; then
  need net.netfilter.nf_conntrack_max "$(sysval net/netfilter/nf_conntrack_max)" $(( 2 * CONNS )) "net.netfilter.nf_conntrack_max=$(( 2 * CONNS ))"
fi
avail_kib=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
if (( avail_kib < CONNS * 18 )); then
  echo "million: MemAvailable is $(( avail_kib / 1024 )) MiB, $(( CONNS * 18 / 1024 )) MiB wanted" >&2
  problems=$((problems + 1))
fi
echo "million: $CONNS connections, $GATEWAYS gateways x $per_gw, $PROCS load-tool processes per gateway, open files per process $nofile"
(( problems == 0 )) || die "$problems setting(s) short of what $CONNS connections need (see above; APPLY=1 sets the sysctls)"
[[ $CHECK_ONLY == 1 ]] && exit 0
OUT=${OUT:-$(mktemp -d /tmp/tcpgw-million.XXXXXX)}
mkdir -p "$OUT"
echo "million: logs, configurations and summary.txt in $OUT"

if [[ -z ${BIN:-} ]]; then
  BIN=$OUT/bin
  (cd "$ROOT" && CGO_ENABLED=0 go build -o "$BIN/gateway" ./cmd/gateway && CGO_ENABLED=0 go build -o "$BIN/tcpgwctl" ./cmd/tcpgwctl)
fi
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$OUT/hs256.secret"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# free_port prints a TCP port nothing listens on now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

declare -a gw_pid gw_addr gw_pprof tool_pid
for ((g = 0; g < GATEWAYS; g++)); do
  addr=127.0.0.1:$(free_port); admin=127.0.0.1:$(free_port); pprof=127.0.0.1:$(free_port)
  cat > "$OUT/gateway-$g.yaml" <<EOF
serverID: million-$g
listen:
  clients: $addr
  admin: $admin
  control: $OUT/gateway-$g.sock
  pprof: $pprof
limits:
  maxConnections: $(( per_gw + 1000 ))
  maxPendingHandshakes: $(( per_gw + 1000 ))
  handshakeTimeout: 60s
  heartbeatInterval: 30s
  idleTimeout: 10m
  perAddress:
    maxConnections: $(( per_gw + 1000 ))
    handshakesPerSecond: 1000000
    handshakeBurst: 1000000
auth:
  jwt:
    hs256SecretFile: $OUT/hs256.secret
    issuer: tcpgw-million
    audience: tcpgateway
logging:
  level: warn
EOF
  "$BIN/gateway" -config "$OUT/gateway-$g.yaml" > "$OUT/gateway-$g.log" 2>&1 &
  gw_pid[g]=$!; pids+=("$!"); gw_addr[g]=$addr; gw_pprof[g]=$pprof
  for i in $(seq 300); do
    curl -fs "http://$admin/readyz" > /dev/null 2>&1 && break
    kill -0 "${gw_pid[g]}" 2>/dev/null || die "gateway $g exited: $(tail -5 "$OUT/gateway-$g.log")"
    sleep 0.1
  done
  curl -fs "http://$admin/readyz" > /dev/null || die "gateway $g not ready: $(tail -5 "$OUT/gateway-$g.log")"
done
sleep 1

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# heap_kib PPROF: live heap + goroutine stacks after a forced GC, in KiB.
heap_kib() {
  curl -fs "http://$1/debug/pprof/heap?gc=1&debug=1" |
    awk '/^# HeapAlloc = / {h = $4} /^# Stack = / {s = $4} END {printf "%d\n", (h + s) / 1024}'
}
declare -a rss0 heap0
for ((g = 0; g < GATEWAYS; g++)); do
  heap0[g]=$(heap_kib "${gw_pprof[g]}"); rss0[g]=$(rss_kib "${gw_pid[g]}")
done

# One load tool per gateway, its clients from 127.(10+g).0.0/22; each holds its connections
# for HOLD after they are all up (its warm-up), then MEASURE more (its measured window), at
# whose start the gateways are measured.
for ((g = 0; g < GATEWAYS; g++)); do
  "$BIN/tcpgwctl" bench -json -addr "${gw_addr[g]}" -secret-file "$OUT/hs256.secret" \
    -issuer tcpgw-million -audience tcpgateway -user-prefix "m$g-" \
    -conns "$per_gw" -procs "$PROCS" -sources "127.$((10 + g)).0.0/22" -ramp "$RAMP" \
    -rate 0 -warmup "$HOLD" -duration "$MEASURE" -timeout 60s > "$OUT/tool-$g.json" 2> "$OUT/tool-$g.log" &
  tool_pid[g]=$!; pids+=("$!")
done
# Measured once every tool has held all its connections for HOLD ("phase=measure-start").
for ((g = 0; g < GATEWAYS; g++)); do
  until grep -q 'phase=measure-start' "$OUT/tool-$g.log" 2>/dev/null; do
    kill -0 "${tool_pid[g]}" 2>/dev/null || die "load tool $g ended early: $(tail -5 "$OUT/tool-$g.log")"
    sleep 0.5
  done
done

declare -a rss1 heap1 cpu
for ((g = 0; g < GATEWAYS; g++)); do
  rss1[g]=$(rss_kib "${gw_pid[g]}"); heap1[g]=$(heap_kib "${gw_pprof[g]}")
  cpu[g]=$(awk '{printf "%.1f", ($14 + $15) / 100}' "/proc/${gw_pid[g]}/stat")
done
load=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "| gateway | connections | RSS before → holding (MiB) | RSS KiB per connection | live heap+stacks KiB per connection | gateway CPU s (user+sys) |"
  echo "|---|---:|---:|---:|---:|---:|"
} > "$OUT/summary.txt"
established=0; failed=0; total_rss=0; total_heap=0
for ((g = 0; g < GATEWAYS; g++)); do
  wait "${tool_pid[g]}" || die "load tool $g failed: $(tail -5 "$OUT/tool-$g.log")"
  e=$(grep -o '"established": *[0-9]*' "$OUT/tool-$g.json" | grep -o '[0-9]*$')
  l=$(grep -o '"connectionsLost": *[0-9]*' "$OUT/tool-$g.json" | grep -o '[0-9]*$')
  established=$(( established + e )); failed=$(( failed + per_gw - e + l ))
  total_rss=$(( total_rss + rss1[g] - rss0[g] )); total_heap=$(( total_heap + heap1[g] - heap0[g] ))
  awk -v g="$g" -v e="$e" -v r0="${rss0[g]}" -v r1="${rss1[g]}" -v h0="${heap0[g]}" -v h1="${heap1[g]}" -v c="${cpu[g]}" \
    'BEGIN {printf "| %d | %d | %.1f → %.1f | %.2f | %.2f | %s |\n", g, e, r0/1024, r1/1024, (r1-r0)/(e?e:1), (h1-h0)/(e?e:1), c}' >> "$OUT/summary.txt"
done
awk -v e="$established" -v n="$(( per_gw * GATEWAYS ))" -v f="$failed" -v r="$total_rss" -v h="$total_heap" -v l="$load" \
  'BEGIN {printf "million: established %d of %d, failed or lost %d; gateways together: RSS %.2f KiB, live heap+stacks %.2f KiB per connection; load average %s\n", e, n, f, r/(e?e:1), h/(e?e:1), l}' >> "$OUT/summary.txt"
cat "$OUT/summary.txt"
(( established == per_gw * GATEWAYS && failed == 0 ))
