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
. "$(dirname "$0")/lib.sh"
bench_init overload sipp curl

start_parley PARLEY_RTP_PORTS=20000-59999
login
uas_port=$(free_port)
bridge_flow "$uas_port"

kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$parley_pid/status"; }

total=0
for r in $STEPS; do total=$((total + r * SECS)); done
start_uas "$uas_port" "$total" 600 -rtp_echo

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "idle: RSS $(( $(kib VmRSS) / 1024 )) MiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
for rate in $STEPS; do
    calls=$((rate * SECS))
    shed0=$(sip_counter sip_overload_rejected_total)
    ans0=$(sip_counter sip_calls_answered_total)
    set +e
    (cd "$work" && sipp -sf "$here/sipp/uac_ivr_bridge.xml" -i 127.0.0.1 -bind_local -p "$(free_port)" -mp "$(free_port)" \
        -s 15550100 -r "$rate" -l "$calls" -m "$calls" -timeout 120s -nostdin "$sip" > "uac_$rate.out" 2>&1)
    set -e
    peak=$(kib VmHWM)
    end=$(kib VmRSS)
    sleep "$SETTLE"
    echo "step $rate calls/s x ${SECS} s ($calls offered): answered $(( $(sip_counter sip_calls_answered_total) - ans0 )), shed with 503 $(( $(sip_counter sip_overload_rejected_total) - shed0 )); RSS peak so far $((peak / 1024)) MiB, at step end $((end / 1024)) MiB, ${SETTLE} s later $(( $(kib VmRSS) / 1024 )) MiB; load $(cut -d' ' -f1-3 /proc/loadavg)"
done
echo "active calls at the end: $(sip_counter sip_calls_active)"
# TRIM=1: ask glibc to return its free memory (gdb attached, malloc_trim(0)): what RSS
# then drops by was freed memory the allocator kept, not memory Parley still holds.
if [ -n "${TRIM:-}" ] && command -v gdb >/dev/null; then
    gdb -p "$parley_pid" -batch -ex 'call (int) malloc_trim(0)' > /dev/null 2>&1 || true
    echo "after malloc_trim(0): RSS $(( $(kib VmRSS) / 1024 )) MiB"
fi
