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
. "$(dirname "$0")/lib.sh"
bench_init sip sipp curl
# Default configuration: the load comes from the demo trunk's address (127.0.0.1), which
# the unauthenticated-request throttle exempts.
start_parley
login
unroute_demo_number

uas_port=$(free_port)
start_uas "$uas_port" "$CALLS" "$TIMEOUT"
register 1001 "$ext_pw" "$uas_port"

cpu0=$(cpu_ticks)
start=$(date +%s.%N)
set +e
(cd "$work" && sipp -sf "$here/sipp/uac_bench.xml" -i 127.0.0.1 -bind_local -p "$(free_port)" -mp "$(free_port)" \
    -s 15550100 -r "$RATE" -l "$LIMIT" -m "$CALLS" -timeout "${TIMEOUT}s" -nostdin \
    -trace_logs -trace_stat -stf uac_stat.csv -fd 1 "$sip" > uac.out 2>&1)
uac_rc=$?
set -e
end=$(date +%s.%N)
cpu1=$(cpu_ticks)
wait "$uas" 2>/dev/null || true

ok=$(uac_stat 'SuccessfulCall(C)')
failed=$(uac_stat 'FailedCall(C)')
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
