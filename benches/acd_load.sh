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
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BIN=${PARLEY_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/parley}
[ -x "$BIN" ] || { echo "no parley binary at $BIN (cargo build --release --bin parley)" >&2; exit 2; }
for t in sipp curl jq; do command -v $t >/dev/null || { echo "$t not installed" >&2; exit 2; }; done

work=$(mktemp -d /tmp/parley-acd-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

(cd "$work" && PARLEY_DATA_DIR="$work/data" PARLEY_HTTP_ADDR=127.0.0.1:0 PARLEY_SIP_ADDR=127.0.0.1:0 \
    RUST_LOG=error \
    exec "$BIN" serve --demo > "$work/parley.out" 2> "$work/parley.err") &
pids+=($!)
for _ in $(seq 300); do grep -q "Parley listening" "$work/parley.out" 2>/dev/null && break; sleep 0.1; done
sip=$(sed -n 's/^SIP listening on udp:\([^ ]*\).*/\1/p' "$work/parley.out")
http=$(sed -n 's/^Parley listening on \([^ ]*\).*/\1/p' "$work/parley.out")
adminpw=$(sed -n 's/.*admin@demo.parley.test.* \([^ ]*\)$/\1/p' "$work/parley.out" | head -n 1)
[ -n "$sip" ] && [ -n "$http" ] && [ -n "$adminpw" ] || { echo "parley did not start:"; cat "$work/parley.out" "$work/parley.err"; exit 1; }
parley_pid=$(pgrep -n -f "^$BIN serve --demo" || true)

api() { # method path [json]
    curl -sf -X "$1" "$http/api/v1$2" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' ${3:+-d "$3"}
}
tok=$(curl -sf "$http/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"tenant\":\"demo\",\"email\":\"admin@demo.parley.test\",\"password\":\"$adminpw\"}" | jq -r .token)

# A flow that enqueues at once, on the demo number.
api POST /ivr/import '{"version":1,"id":"acdbench","start":"q","nodes":{"q":{"type":"enqueue","queue":"bench","on_answered":"bye"},"bye":{"type":"hangup"}}}' >/dev/null
api POST /ivr/flows/acdbench/publish >/dev/null
api PUT /ivr/numbers/%2B15550100 '{"flow_id":"acdbench"}' >/dev/null
api POST /queues '{"name":"bench","ring_timeout_s":10,"wrap_up_s":1,"announce_interval_s":10,"max_missed_offers":0}' >/dev/null

uas_port=$(free_port)
(cd "$work" && exec sipp -sf "$here/sipp/uas_bench.xml" -i 127.0.0.1 -bind_local -p "$uas_port" -mp "$(free_port)" \
    -rtp_echo -m "$CALLS" -timeout "${TIMEOUT}s" -nostdin > uas.out 2>&1) &
uas=$!
pids+=($uas)

echo "creating and registering $AGENTS agents..." >&2
for i in $(seq "$AGENTS"); do
    ext=$((5000 + i))
    id=$(api POST /users "{\"email\":\"bench$i@demo.parley.test\",\"name\":\"Bench $i\",\"role\":\"agent\",\"password\":\"long enough pw\"}" | jq -r .id)
    api PUT "/users/$id/sip" "{\"extension\":\"$ext\",\"password\":\"bench sip pw $i\"}" >/dev/null
    (cd "$work" && sipp -sf "$root/tests/sipp/register.xml" -i 127.0.0.1 -bind_local -p "$(free_port)" -mp "$(free_port)" \
        -m 1 -s "$ext" -au "$ext" -ap "bench sip pw $i" -key contact_port "$uas_port" -timeout 10s -timeout_error \
        -nostdin "$sip" > "reg$i.out" 2>&1) || { echo "REGISTER $ext failed"; cat "$work/reg$i.out"; exit 1; }
    api PUT "/users/$id/presence" '{"status":"available"}' >/dev/null
done
for _ in $(seq 200); do
    free=$(api GET /queues/live | jq '.[0].agents_free // 0')
    [ "$free" -ge "$AGENTS" ] && break
    sleep 0.1
done

metric() { api GET /sip/metrics | jq -r ".[] | select(.name == \"$1\") | .value"; }
steps0=$(metric acd_route_steps_total)
cpu0=$( [ -n "$parley_pid" ] && awk '{print $14 + $15}' "/proc/$parley_pid/stat" || echo 0)
t0=$(date -u +%Y-%m-%dT%H:%M:%SZ)
start=$(date +%s.%N)
set +e
(cd "$work" && sipp -sf "$here/sipp/uac_acd.xml" -i 127.0.0.1 -bind_local -p "$(free_port)" -mp "$(free_port)" \
    -s 15550100 -r "$RATE" -m "$CALLS" -d "$TALK_MS" -timeout "${TIMEOUT}s" -nostdin \
    -trace_stat -stf uac_stat.csv -fd 1 "$sip" > uac.out 2>&1)
uac_rc=$?
set -e
end=$(date +%s.%N)
cpu1=$( [ -n "$parley_pid" ] && awk '{print $14 + $15}' "/proc/$parley_pid/stat" || echo 0)
sleep 2 # the last calls' records
t1=$(date -u -d '+1 minute' +%Y-%m-%dT%H:%M:%SZ)

stats="$work/uac_stat.csv"
last=$(tail -n 1 "$stats")
col() { head -n 1 "$stats" | tr ';' '\n' | grep -n -x "$1" | head -n 1 | cut -d: -f1; }
ok=$(echo "$last" | cut -d';' -f"$(col 'SuccessfulCall(C)')")
failed=$(echo "$last" | cut -d';' -f"$(col 'FailedCall(C)')")
elapsed=$(echo "$end - $start" | bc -l)
cpu_s=$(echo "($cpu1 - $cpu0) / $(getconf CLK_TCK)" | bc -l)
q=$(api GET "/stats/queues?from=$t0&to=$t1")
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
api GET /sip/metrics | jq -r '.[] | select(.name | startswith("acd_route_step_us_le")) | "  \(.name) \(.value)"'
