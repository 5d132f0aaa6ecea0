#!/usr/bin/env bash
# System benchmark of bridged calls through Parley's media engine:
#   sipp UAC (plays g711a.pcap, PCMA) -> Parley: +15550100 routed to a flow that transfers
#   to +15550199 -> out through a trunk to a sipp UAS with -rtp_echo (PCMU).
# Each call is two RTP legs in Parley mixed in a room (PCMA <-> PCMU). Parley's CPU is
# read from /proc between two points where all CALLS calls are up; loss is what Parley's
# caller legs report (RFC 3550 cumulative lost / expected, from the quality figures
# stored with each call on the timeline).
#
#   benches/ivr_bridge_load.sh               # 100 concurrent calls
#   CALLS=500 RATE=50 benches/ivr_bridge_load.sh
#
# Loopback only, ephemeral ports; bounded by sipp -timeout. Builds nothing: uses
# $PARLEY_BIN (default: the release binary in $CARGO_TARGET_DIR or ./target).
set -euo pipefail

CALLS=${CALLS:-100}
RATE=${RATE:-50}
TIMEOUT=${TIMEOUT:-120}
. "$(dirname "$0")/lib.sh"
bench_init ivr sipp curl

start_parley PARLEY_RTP_PORTS=30000-39999
login

uas_port=$(free_port)
bridge_flow "$uas_port"

start_uas "$uas_port" "$CALLS" "$TIMEOUT" -rtp_echo

(cd "$work" && exec sipp -sf "$here/sipp/uac_ivr_bridge.xml" -i 127.0.0.1 -bind_local -p "$(free_port)" -mp "$(free_port)" \
    -s 15550100 -r "$RATE" -l "$CALLS" -m "$CALLS" -timeout "${TIMEOUT}s" -nostdin \
    -trace_stat -stf uac_stat.csv -fd 1 "$sip" > uac.out 2>&1) &
uac=$!
pids+=($uac)

# Measure while every call is up: ramp-up takes CALLS/RATE s, each call holds 21 s.
ramp=$(( (CALLS + RATE - 1) / RATE ))
sleep $((ramp + 2))
window=$(( 21 - ramp - 4 ))
[ "$window" -ge 3 ] || { echo "ramp-up too slow for the 21 s hold: raise RATE" >&2; exit 1; }
ticks=$(getconf CLK_TCK)
cpu0=$(cpu_ticks); t0=$(date +%s.%N)
sleep "$window"
cpu1=$(cpu_ticks); t1=$(date +%s.%N)
set +e
wait "$uac"; uac_rc=$?
set -e

ok=$(uac_stat 'SuccessfulCall(C)')
failed=$(uac_stat 'FailedCall(C)')
pct=$(echo "($cpu1 - $cpu0) / $ticks / ($t1 - $t0) * 100" | bc -l)
sleep 2
read -r calls answered lost expected < <(caller_loss)
loss="$calls calls stored, $answered bridged; caller legs: $lost lost of $expected expected ($(echo "100 * $lost / ($expected + ($expected == 0))" | bc -l | xargs printf %.3f) %)"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "calls: $CALLS concurrent (offered at $RATE/s), sipp exit $uac_rc: $ok ok, $failed failed"
echo "parley CPU with all calls up: $(printf %.1f "$pct") % of one core => $(echo "$pct / $CALLS" | bc -l | xargs printf %.4f) % per bridged call"
echo "$loss"
