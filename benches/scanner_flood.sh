#!/usr/bin/env bash
# Parley under a SIP scanner flood (issue #13): sipvicious-style OPTIONS, REGISTER (with
# forged credentials) and INVITE (to premium-looking numbers) from SOURCES loopback
# addresses (127.0.1.x) at FLOOD_PPS packets/s in all, while CALLS legitimate calls run
# from the demo trunk's address (sipp UAC -> Parley B2BUA -> sipp UAS registered as
# extension 1001). Prints legitimate call success, Parley CPU and peak resident memory,
# and the ban/throttle counters.
#
#   benches/scanner_flood.sh                              # 100 calls, 5000 pps, 100 sources
#   PARLEY_BIN=target/debug/parley benches/scanner_flood.sh
#
# Bounded: CALLS calls, the flood stops when the calls are done (at most TIMEOUT s).
set -euo pipefail

CALLS=${CALLS:-100}
RATE=${RATE:-10}
FLOOD_PPS=${FLOOD_PPS:-5000}
SOURCES=${SOURCES:-100}
TIMEOUT=${TIMEOUT:-120}
# The flood lasts as long as the calls are offered, plus margins before and after.
FLOOD_SECS=${FLOOD_SECS:-$((CALLS / RATE + 8))}
. "$(dirname "$0")/lib.sh"
bench_init flood sipp curl
start_parley
# Calls to the demo number ring the agents directly (no IVR).
login
unroute_demo_number

uas_port=$(free_port)
start_uas "$uas_port" "$CALLS" "$TIMEOUT"
register 1001 "$ext_pw" "$uas_port"

# The scanner: round-robin over SOURCES sockets, paced to FLOOD_PPS, until stopped.
cat > "$work/scanner.py" <<'PY'
import socket, sys, time, itertools
target = sys.argv[1].rsplit(":", 1); target = (target[0], int(target[1]))
pps, sources, seconds = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = []
for i in range(sources):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.1.%d" % (10 + i), 0)); s.setblocking(False); socks.append(s)
nonces = {}  # per source: the last nonce a 401 gave it (svcrack answers challenges)
def msg(kind, n, me):
    h = "%s:%d" % me
    cid = "scan%d" % n
    if kind == 0:
        return ("OPTIONS sip:100@%s:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\n"
                "From: \"sipvicious\"<sip:100@1.1.1.1>;tag=%d\r\nTo: <sip:100@1.1.1.1>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\n"
                "User-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n") % (target[0], target[1], h, cid, n, cid)
    if kind == 1:
        ext = 1000 + n % 50
        return ("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\n"
                "From: <sip:%d@%s>;tag=%d\r\nTo: <sip:%d@%s>\r\nCall-ID: %s\r\nCSeq: 1 REGISTER\r\nContact: <sip:%d@%s>\r\n"
                "Authorization: Digest username=\"%d\", realm=\"demo\", nonce=\"%s\", uri=\"sip:%s\", response=\"%032x\", qop=auth, nc=%08x, cnonce=\"x\", algorithm=MD5\r\n"
                "User-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n") % (target[0], h, cid, ext, target[0], n, ext, target[0], cid, ext, h, ext, nonces.get(me, "%064x" % n), target[0], n, n % 0xffffffff + 1)
    return ("INVITE sip:00972595%06d@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\n"
            "From: <sip:100@%s>;tag=%d\r\nTo: <sip:00972595%06d@%s>\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\nContact: <sip:100@%s>\r\n"
            "User-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n") % (n % 1000000, target[0], h, cid, target[0], n, n % 1000000, target[0], cid, h)
start = time.monotonic(); sent = 0
addrs = [s.getsockname() for s in socks]
for n in itertools.count():
    if time.monotonic() - start > seconds: break
    due = start + n / pps
    now = time.monotonic()
    if due > now: time.sleep(due - now)
    i = n % sources
    try:
        socks[i].sendto(msg(n % 3, n, addrs[i]).encode(), target); sent += 1
    except BlockingIOError:
        pass
    try:
        while True:
            data = socks[i].recv(65536)
            k = data.find(b'nonce="')
            if k >= 0:
                nonces[addrs[i]] = data[k + 7:data.index(b'"', k + 7)].decode()
    except BlockingIOError:
        pass
el = time.monotonic() - start
print("flood: %d packets in %.1f s = %.0f packets/s from %d sources" % (sent, el, sent / el, sources))
PY
python3 "$work/scanner.py" "$sip" "$FLOOD_PPS" "$SOURCES" "$FLOOD_SECS" > "$work/scanner.out" 2>&1 &
scanner=$!
pids+=($scanner)
sleep 2  # the flood is under way before the first legitimate call

rss_peak=0
( while kill -0 "$parley_pid" 2>/dev/null; do awk '/VmRSS/ {print $2}' "/proc/$parley_pid/status"; sleep 0.5; done > "$work/rss.txt" ) &
pids+=($!)
cpu0=$(cpu_ticks)
start=$(date +%s.%N)
set +e
(cd "$work" && sipp -sf "$here/sipp/uac_bench.xml" -i 127.0.0.1 -bind_local -p "$(free_port)" -mp "$(free_port)" \
    -s 15550100 -r "$RATE" -l "$CALLS" -m "$CALLS" -timeout "${TIMEOUT}s" -nostdin \
    -trace_stat -stf uac_stat.csv -fd 1 "$sip" > uac.out 2>&1)
uac_rc=$?
set -e
end=$(date +%s.%N)
cpu1=$(cpu_ticks)
wait "$scanner" 2>/dev/null || true
ok=$(uac_stat 'SuccessfulCall(C)')
failed=$(uac_stat 'FailedCall(C)')
elapsed=$(echo "$end - $start" | bc -l)
cpu_s=$(echo "($cpu1 - $cpu0) / $(getconf CLK_TCK)" | bc -l)
rss_peak=$(sort -n "$work/rss.txt" | tail -n 1)
metrics=$(api GET /api/v1/sip/metrics)
m() { echo "$metrics" | python3 -c "import json,sys; print({c['name']: c['value'] for c in json.load(sys.stdin)}.get('$1'))"; }
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); binary: $BIN"
echo "legitimate: $CALLS calls at $RATE calls/s, sipp exit $uac_rc: $ok ok, $failed failed ($(echo "100 * $ok / $CALLS" | bc -l | xargs printf %.1f) %)"
cat "$work/scanner.out"
echo "parley CPU: $(printf %.2f "$cpu_s") s over $(printf %.1f "$elapsed") s ($(echo "100 * $cpu_s / $elapsed" | bc -l | xargs printf %.0f) % of one core); peak RSS $((rss_peak / 1024)) MiB"
for c in sip_requests_in_total sip_throttled_total sip_auth_failures_total sip_bans_total sip_banned_dropped_total sip_responses_suppressed_total; do
    echo "$c: $(m $c)"
done
