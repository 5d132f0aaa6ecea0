#!/usr/bin/env bash
# Voice ACD benchmark: sipp callers -> Parley IVR (a flow that enqueues at once) -> ACD
# router -> AGENTS agents (each its own extension, all registered to one sipp UAS that
# answers at once and echoes RTP) -> bridged media -> the caller hangs up after TALK_MS.
#
#   benches/acd_load.sh                          # 100 calls at 5 calls/s, 20 agents
#   CALLS=1200 RATE=20 AGENTS=200 TALK_MS=5000 benches/acd_load.sh
#
# Bounded: CALLS calls, sipp's -timeout, everything on 127.0.0.1 with ephemeral ports.
# Builds nothing: $PARLEY_BIN (default the release binary in $CARGO_TARGET_DIR or
# ./target). Prints Parley's CPU per call, the router's routing-step latency (p99 bucket
# bound and the histogram, from /api/v1/sip/metrics), and lost calls: calls the caller
# did not complete, and calls without an "answered" call record.
set -euo pipefail

CALLS=${CALLS:-100}
RATE=${RATE:-5}
AGENTS=${AGENTS:-20}
TALK_MS=${TALK_MS:-3000}
TIMEOUT=${TIMEOUT:-300}
. "$(dirname "$0")/lib.sh"
bench_init acd sipp curl jq
start_parley
login

# A flow that enqueues at once, on the demo number.
api POST /api/v1/ivr/import '{"version":1,"id":"acdbench","start":"q","nodes":{"q":{"type":"enqueue","queue":"bench","on_answered":"bye"},"bye":{"type":"hangup"}}}' >/dev/null
api POST /api/v1/ivr/flows/acdbench/publish >/dev/null
api PUT /api/v1/ivr/numbers/%2B15550100 '{"flow_id":"acdbench"}' >/dev/null
api POST /api/v1/queues '{"name":"bench","ring_timeout_s":10,"wrap_up_s":1,"announce_interval_s":10,"max_missed_offers":0}' >/dev/null

uas_port=$(free_port)
start_uas "$uas_port" "$CALLS" "$TIMEOUT" -rtp_echo

echo "creating and registering $AGENTS agents..." >&2
for i in $(seq "$AGENTS"); do
    ext=$((5000 + i))
    id=$(api POST /api/v1/users "{\"email\":\"bench$i@demo.parley.test\",\"name\":\"Bench $i\",\"role\":\"agent\",\"password\":\"long enough pw\"}" | jq -r .id)
    api PUT "/api/v1/users/$id/sip" "{\"extension\":\"$ext\",\"password\":\"bench sip pw $i\"}" >/dev/null
    register "$ext" "bench sip pw $i" "$uas_port"
    api PUT "/api/v1/users/$id/presence" '{"status":"available"}' >/dev/null
done
for _ in $(seq 200); do
    free=$(api GET /api/v1/queues/live | jq '.[0].agents_free // 0')
    [ "$free" -ge "$AGENTS" ] && break
    sleep 0.1
done

metric() { api GET /api/v1/sip/metrics | jq -r ".[] | select(.name == \"$1\") | .value"; }
steps0=$(metric acd_route_steps_total)
cpu0=$(cpu_ticks)
t0=$(date -u +%Y-%m-%dT%H:%M:%SZ)
start=$(date +%s.%N)
set +e
(cd "$work" && sipp -sf "$here/sipp/uac_acd.xml" -i 127.0.0.1 -bind_local -p "$(free_port)" -mp "$(free_port)" \
    -s 15550100 -r "$RATE" -m "$CALLS" -d "$TALK_MS" -timeout "${TIMEOUT}s" -nostdin \
    -trace_stat -stf uac_stat.csv -fd 1 "$sip" > uac.out 2>&1)
uac_rc=$?
set -e
end=$(date +%s.%N)
cpu1=$(cpu_ticks)
sleep 2 # the last calls' records
t1=$(date -u -d '+1 minute' +%Y-%m-%dT%H:%M:%SZ)

ok=$(uac_stat 'SuccessfulCall(C)')
failed=$(uac_stat 'FailedCall(C)')
elapsed=$(echo "$end - $start" | bc -l)
cpu_s=$(echo "($cpu1 - $cpu0) / $(getconf CLK_TCK)" | bc -l)
q=$(api GET "/api/v1/stats/queues?from=$t0&to=$t1")
answered=$(echo "$q" | jq '[.[].answered] | add // 0')
asa=$(echo "$q" | jq '.[0].asa_s // 0')
steps1=$(metric acd_route_steps_total)

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); binary: $BIN"
echo "offered: $CALLS calls at $RATE calls/s to $AGENTS agents, talk $TALK_MS ms, sipp exit $uac_rc"
echo "completed: $ok ok, $failed failed in $(printf %.2f "$elapsed") s; answered by an agent (call records): $answered"
echo "lost calls: $((CALLS - answered))"
echo "ASA: ${asa} s"
echo "parley CPU: $(printf %.2f "$cpu_s") s => $(echo "$cpu_s * 1000 / ($ok + 0.000001)" | bc -l | xargs printf %.1f) ms CPU per call (IVR answer, media, queue, bridge, records)"
echo "routing steps: $((steps1 - steps0)); step latency p99 <= $(metric acd_route_step_p99_us) us (whole run); histogram:"
api GET /api/v1/sip/metrics | jq -r '.[] | select(.name | startswith("acd_route_step_us_le")) | "  \(.name) \(.value)"'
