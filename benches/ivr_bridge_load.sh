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
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BIN=${PARLEY_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/parley}
[ -x "$BIN" ] || { echo "no parley binary at $BIN (cargo build --release --bin parley)" >&2; exit 2; }
command -v sipp >/dev/null || { echo "sipp not installed (Debian package sip-tester)" >&2; exit 2; }

work=$(mktemp -d /tmp/parley-ivr-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

(cd "$work" && PARLEY_DATA_DIR="$work/data" PARLEY_HTTP_ADDR=127.0.0.1:0 PARLEY_SIP_ADDR=127.0.0.1:0 \
    PARLEY_RTP_PORTS=30000-39999 RUST_LOG=error \
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

(cd "$work" && exec sipp -sf "$here/sipp/uas_bench.xml" -i 127.0.0.1 -bind_local -p "$uas_port" -mp "$(free_port)" \
    -rtp_echo -m "$CALLS" -timeout "${TIMEOUT}s" -nostdin > uas.out 2>&1) &
pids+=($!)

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
cpu0=$(awk '{print $14 + $15}' "/proc/$parley_pid/stat"); t0=$(date +%s.%N)
sleep "$window"
cpu1=$(awk '{print $14 + $15}' "/proc/$parley_pid/stat"); t1=$(date +%s.%N)
set +e
wait "$uac"; uac_rc=$?
set -e

stats="$work/uac_stat.csv"
last=$(tail -n 1 "$stats")
col() { head -n 1 "$stats" | tr ';' '\n' | grep -n -x "$1" | head -n 1 | cut -d: -f1; }
ok=$(echo "$last" | cut -d';' -f"$(col 'SuccessfulCall(C)')")
failed=$(echo "$last" | cut -d';' -f"$(col 'FailedCall(C)')")
pct=$(echo "($cpu1 - $cpu0) / $ticks / ($t1 - $t0) * 100" | bc -l)
sleep 2
cust=$(api GET "/api/v1/customers/lookup?kind=phone&value=%2B15550123" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
loss=$(python3 - "$http" "$token" "$cust" <<'PY'
import json, sys, urllib.request
http, token, cust = sys.argv[1:]
lost = expected = calls = answered = 0
cursor = None
while True:
    url = f"{http}/api/v1/customers/{cust}/timeline?limit=200" + (f"&cursor={cursor}" if cursor else "")
    req = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"})
    page = json.load(urllib.request.urlopen(req))
    for i in page["items"]:
        body = json.loads(i["body"])
        calls += 1
        answered += any(e.get("type") == "transfer" and e.get("outcome") == "answered" for e in body.get("ivr_trail", []))
        q = body.get("quality") or {}
        lost += max(q.get("cumulative_lost", 0), 0)
        expected += q.get("packets_expected", 0)
    cursor = page.get("next_cursor")
    if not cursor:
        break
print(f"{calls} calls stored, {answered} bridged; caller legs: {lost} lost of {expected} expected ({100.0 * lost / max(expected, 1):.3f} %)")
PY
)
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "calls: $CALLS concurrent (offered at $RATE/s), sipp exit $uac_rc: $ok ok, $failed failed"
echo "parley CPU with all calls up: $(printf %.1f "$pct") % of one core => $(echo "$pct / $CALLS" | bc -l | xargs printf %.4f) % per bridged call"
echo "$loss"
