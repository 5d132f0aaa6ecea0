#!/usr/bin/env bash
# SIP call-setup benchmark: sipp UAC -> Parley B2BUA -> sipp UAS registered as agent 1001.
#
#   benches/sip_load.sh                      # 2000 short calls offered at 200 calls/s
#   CALLS=5000 RATE=500 LIMIT=400 benches/sip_load.sh
#   PARLEY_SIP_MAX_CALL_RATE=0 CALLS=20000 RATE=2000 LIMIT=2000 benches/sip_load.sh
#
# Parley's own overload limits apply (PARLEY_SIP_MAX_CALL_RATE, default 200 calls/s, and
# PARLEY_SIP_MAX_CALLS): offered beyond them, calls get 503 + Retry-After and count as
# failed here. Set them in the environment to measure the B2BUA itself.
#
# Everything runs on 127.0.0.1 with ephemeral ports; the run is bounded by CALLS and by
# sipp's -timeout. It builds nothing: it uses $PARLEY_BIN (default: the release binary
# in $CARGO_TARGET_DIR or ./target). Prints calls/s and INVITE->180 / INVITE->200
# p50/p99 (ms), timed per call inside the sipp caller scenario (-trace_logs).
set -euo pipefail

CALLS=${CALLS:-2000}
RATE=${RATE:-200}
LIMIT=${LIMIT:-200}
TIMEOUT=${TIMEOUT:-120}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BIN=${PARLEY_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/parley}
[ -x "$BIN" ] || { echo "no parley binary at $BIN (cargo build --release --bin parley)" >&2; exit 2; }
command -v sipp >/dev/null || { echo "sipp not installed (Debian package sip-tester)" >&2; exit 2; }

work=$(mktemp -d /tmp/parley-sip-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Default configuration: the load comes from the demo trunk's address (127.0.0.1), which
# the unauthenticated-request throttle exempts.
(cd "$work" && PARLEY_DATA_DIR="$work/data" PARLEY_HTTP_ADDR=127.0.0.1:0 PARLEY_SIP_ADDR=127.0.0.1:0 \
    RUST_LOG=error \
    exec "$BIN" serve --demo > "$work/parley.out" 2> "$work/parley.err") &
pids+=($!)
for _ in $(seq 100); do grep -q "Parley listening" "$work/parley.out" 2>/dev/null && break; sleep 0.1; done
sip=$(sed -n 's/^SIP listening on udp:\([^ ]*\).*/\1/p' "$work/parley.out")
pw=$(sed -n 's/.*SIP extension 1001 password: \([^ ]*\).*/\1/p' "$work/parley.out")
[ -n "$sip" ] && [ -n "$pw" ] || { echo "parley did not start:"; cat "$work/parley.out" "$work/parley.err"; exit 1; }
parley_pid=$(pgrep -n -f "^$BIN serve --demo" || true)

# B2BUA: the demo number rings the agents directly (its IVR route removed), as in
# tests/sip.rs start_b2bua.
http=$(sed -n 's/^Parley listening on \([^ ]*\).*/\1/p' "$work/parley.out")
admin_pw=$(sed -n 's/.*admin@demo.parley.test.* \([^ ]*\)$/\1/p' "$work/parley.out" | head -n 1)
token=$(curl -sf "$http/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"tenant\":\"demo\",\"email\":\"admin@demo.parley.test\",\"password\":\"$admin_pw\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
curl -sf -X DELETE "$http/api/v1/ivr/numbers/%2B15550100" -H "authorization: Bearer $token" > /dev/null \
    || { echo "could not unroute the demo number"; exit 1; }

uas_port=$(free_port)
(cd "$work" && exec sipp -sf "$here/sipp/uas_bench.xml" -i 127.0.0.1 -bind_local -p "$uas_port" -mp "$(free_port)" \
    -m "$CALLS" -timeout "${TIMEOUT}s" -nostdin > uas.out 2>&1) &
uas=$!
pids+=($uas)
(cd "$work" && sipp -sf "$root/tests/sipp/register.xml" -i 127.0.0.1 -bind_local -p "$(free_port)" -mp "$(free_port)" \
    -m 1 -s 1001 -au 1001 -ap "$pw" -key contact_port "$uas_port" -timeout 10s -timeout_error -nostdin "$sip" > reg.out 2>&1) \
    || { echo "REGISTER failed"; cat "$work/reg.out"; exit 1; }

cpu0=$( [ -n "$parley_pid" ] && awk '{print $14 + $15}' "/proc/$parley_pid/stat" || echo 0)
start=$(date +%s.%N)
set +e
(cd "$work" && sipp -sf "$here/sipp/uac_bench.xml" -i 127.0.0.1 -bind_local -p "$(free_port)" -mp "$(free_port)" \
    -s 15550100 -r "$RATE" -l "$LIMIT" -m "$CALLS" -timeout "${TIMEOUT}s" -nostdin \
    -trace_logs -trace_stat -stf uac_stat.csv -fd 1 "$sip" > uac.out 2>&1)
uac_rc=$?
set -e
end=$(date +%s.%N)
cpu1=$( [ -n "$parley_pid" ] && awk '{print $14 + $15}' "/proc/$parley_pid/stat" || echo 0)
wait "$uas" 2>/dev/null || true

stats="$work/uac_stat.csv"
last=$(tail -n 1 "$stats")
col() { head -n 1 "$stats" | tr ';' '\n' | grep -n -x "$1" | head -n 1 | cut -d: -f1; }
ok=$(echo "$last" | cut -d';' -f"$(col 'SuccessfulCall(C)')")
failed=$(echo "$last" | cut -d';' -f"$(col 'FailedCall(C)')")
elapsed=$(echo "$end - $start" | bc -l)
cpu_s=$(echo "($cpu1 - $cpu0) / $(getconf CLK_TCK)" | bc -l)

logs=$(ls "$work"/uac_bench_*_logs.log | head -n 1)
pct() { # $1 measure name, $2 percentile; logged in microseconds, printed in ms
    awk -v n="$1" '$(NF-1) == n { print $NF }' "$logs" | sort -n | awk -v p="$2" '{ a[NR] = $1 } END { if (NR == 0) { print "n/a"; exit } i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; if (i > NR) i = NR; printf "%.3f", a[i] / 1000 }'
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "offered: $CALLS calls at $RATE calls/s (max $LIMIT concurrent), sipp exit $uac_rc"
echo "completed: $ok ok, $failed failed in $(printf %.2f "$elapsed") s => $(echo "$ok / $elapsed" | bc -l | xargs printf %.1f) calls/s"
echo "parley CPU: $(printf %.2f "$cpu_s") s => $(echo "$cpu_s * 1000 / ($ok + 0.000001)" | bc -l | xargs printf %.3f) ms CPU per call"
echo "INVITE->180 ms: p50 $(pct invite_180 50)  p99 $(pct invite_180 99)"
echo "INVITE->200 ms: p50 $(pct invite_200 50)  p99 $(pct invite_200 99)"
if [ -n "$parley_pid" ] && [ -r "/proc/$parley_pid/status" ]; then
    kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$parley_pid/status"; }
    rss_end=$(kib VmRSS)
    sleep "${SETTLE:-10}"
    echo "parley memory: peak $(( $(kib VmHWM) / 1024 )) MiB, at the end $(( rss_end / 1024 )) MiB, ${SETTLE:-10} s later $(( $(kib VmRSS) / 1024 )) MiB"
fi
