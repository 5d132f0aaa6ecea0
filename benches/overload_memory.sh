#!/usr/bin/env bash
# Memory under call-rate overload (issue #13): steps of calls offered above what Parley
# accepts, through the demo-style IVR transfer of benches/ivr_bridge_load.sh (+15550100
# routed to a flow transferring to +15550199 through a trunk to a sipp UAS echoing RTP;
# each accepted call plays 21 s of G.711 both ways). Per step: calls answered, shed with
# 503 (Parley's own counter), Parley's peak and settled resident memory.
#
#   benches/overload_memory.sh                       # steps 800 1000 1200 calls/s, 5 s each
#   STEPS="200 400" SECS=10 benches/overload_memory.sh
#   TRIM=1 benches/overload_memory.sh                # then malloc_trim(0) through gdb
#
# Default configuration (PARLEY_SIP_MAX_CALLS 2000, PARLEY_SIP_MAX_CALL_RATE 200/s)
# unless set in the environment. Loopback only, ephemeral ports. Builds nothing: uses
# $PARLEY_BIN (default: the release binary in $CARGO_TARGET_DIR or ./target).
set -euo pipefail

STEPS=${STEPS:-800 1000 1200}
SECS=${SECS:-5}
SETTLE=${SETTLE:-30}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BIN=${PARLEY_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/parley}
[ -x "$BIN" ] || { echo "no parley binary at $BIN (cargo build --release --bin parley)" >&2; exit 2; }
command -v sipp >/dev/null || { echo "sipp not installed (Debian package sip-tester)" >&2; exit 2; }

work=$(mktemp -d /tmp/parley-overload.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

(cd "$work" && PARLEY_DATA_DIR="$work/data" PARLEY_HTTP_ADDR=127.0.0.1:0 PARLEY_SIP_ADDR=127.0.0.1:0 \
    PARLEY_RTP_PORTS=20000-59999 RUST_LOG=error \
    exec "$BIN" serve --demo > "$work/parley.out" 2> "$work/parley.err") &
pids+=($!)
for _ in $(seq 100); do grep -q "Parley listening" "$work/parley.out" 2>/dev/null && break; sleep 0.1; done
sip=$(sed -n 's/^SIP listening on udp:\([^ ]*\).*/\1/p' "$work/parley.out")
http=$(sed -n 's/^Parley listening on \([^ ]*\).*/\1/p' "$work/parley.out")
admin_pw=$(sed -n 's/.*admin@demo.parley.test.* \([^ ]*\)$/\1/p' "$work/parley.out" | head -n 1)
[ -n "$sip" ] && [ -n "$http" ] || { echo "parley did not start:"; cat "$work/parley.out" "$work/parley.err"; exit 1; }
parley_pid=$(pgrep -n -f "^$BIN serve --demo")

api() { # method path [json]
    curl -sf -X "$1" "$http$2" -H "authorization: Bearer $token" -H 'content-type: application/json' ${3:+-d "$3"}
}
token=$(curl -sf "$http/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"tenant\":\"demo\",\"email\":\"admin@demo.parley.test\",\"password\":\"$admin_pw\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
uas_port=$(free_port)
api POST /api/v1/trunks "{\"name\":\"carrier\",\"outbound_target\":\"127.0.0.1:$uas_port\",\"caller_id\":\"+15550100\"}" > /dev/null
api POST /api/v1/ivr/import '{"version":1,"id":"bridge","start":"go","nodes":{"go":{"type":"transfer","target":{"number":"+15550199"}}}}' > /dev/null
api POST /api/v1/ivr/flows/bridge/publish > /dev/null
api PUT /api/v1/ivr/numbers/%2B15550100 '{"flow_id":"bridge"}' > /dev/null

counter() { api GET /api/v1/sip/metrics | python3 -c "import json,sys; print(next((c['value'] for c in json.load(sys.stdin) if c['name'] == '$1'), 0))"; }
kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$parley_pid/status"; }

total=0
for r in $STEPS; do total=$((total + r * SECS)); done
(cd "$work" && exec sipp -sf "$here/sipp/uas_bench.xml" -i 127.0.0.1 -bind_local -p "$uas_port" -mp "$(free_port)" \
    -rtp_echo -m "$total" -timeout 600s -nostdin > uas.out 2>&1) &
pids+=($!)

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "idle: RSS $(( $(kib VmRSS) / 1024 )) MiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
for rate in $STEPS; do
    calls=$((rate * SECS))
    shed0=$(counter sip_overload_rejected_total)
    ans0=$(counter sip_calls_answered_total)
    set +e
    (cd "$work" && sipp -sf "$here/sipp/uac_ivr_bridge.xml" -i 127.0.0.1 -bind_local -p "$(free_port)" -mp "$(free_port)" \
        -s 15550100 -r "$rate" -l "$calls" -m "$calls" -timeout 120s -nostdin "$sip" > "uac_$rate.out" 2>&1)
    set -e
    peak=$(kib VmHWM)
    end=$(kib VmRSS)
    sleep "$SETTLE"
    echo "step $rate calls/s x ${SECS} s ($calls offered): answered $(( $(counter sip_calls_answered_total) - ans0 )), shed with 503 $(( $(counter sip_overload_rejected_total) - shed0 )); RSS peak so far $((peak / 1024)) MiB, at step end $((end / 1024)) MiB, ${SETTLE} s later $(( $(kib VmRSS) / 1024 )) MiB; load $(cut -d' ' -f1-3 /proc/loadavg)"
done
echo "active calls at the end: $(counter sip_calls_active)"
# TRIM=1: ask glibc to return its free memory (gdb attached, malloc_trim(0)): what RSS
# then drops by was freed memory the allocator kept, not memory Parley still holds.
if [ -n "${TRIM:-}" ] && command -v gdb >/dev/null; then
    gdb -p "$parley_pid" -batch -ex 'call (int) malloc_trim(0)' > /dev/null 2>&1 || true
    echo "after malloc_trim(0): RSS $(( $(kib VmRSS) / 1024 )) MiB"
fi
