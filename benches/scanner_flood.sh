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
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BIN=${PARLEY_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/parley}
[ -x "$BIN" ] || { echo "no parley binary at $BIN (cargo build --release --bin parley)" >&2; exit 2; }
command -v sipp >/dev/null || { echo "sipp not installed (Debian package sip-tester)" >&2; exit 2; }

work=$(mktemp -d /tmp/parley-flood-bench.XXXXXX)
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
parley_pid=$!
pids+=($parley_pid)
for _ in $(seq 300); do grep -q "Parley listening" "$work/parley.out" 2>/dev/null && break; sleep 0.1; done
sip=$(sed -n 's/^SIP listening on udp:\([^ ]*\).*/\1/p' "$work/parley.out")
http=$(sed -n 's/^Parley listening on \(http:[^ ]*\).*/\1/p' "$work/parley.out")
pw=$(sed -n 's/.*SIP extension 1001 password: \([^ ]*\).*/\1/p' "$work/parley.out")
admin_pw=$(sed -n 's/.*admin@demo.parley.test.* \([^ ]*\)$/\1/p' "$work/parley.out" | head -n 1)
[ -n "$sip" ] && [ -n "$pw" ] || { echo "parley did not start:"; cat "$work/parley.out" "$work/parley.err"; exit 1; }
# Calls to the demo number ring the agents directly (no IVR).
tok=$(curl -s "$http/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"tenant\":\"demo\",\"email\":\"admin@demo.parley.test\",\"password\":\"$admin_pw\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
curl -s -o /dev/null -X DELETE -H "authorization: Bearer $tok" "$http/api/v1/ivr/numbers/%2B15550100"

uas_port=$(free_port)
(cd "$work" && exec sipp -sf "$here/sipp/uas_bench.xml" -i 127.0.0.1 -bind_local -p "$uas_port" -mp "$(free_port)" \
    -m "$CALLS" -timeout "${TIMEOUT}s" -nostdin > uas.out 2>&1) &
uas=$!
pids+=($uas)
(cd "$work" && sipp -sf "$root/tests/sipp/register.xml" -i 127.0.0.1 -bind_local -p "$(free_port)" -mp "$(free_port)" \
    -m 1 -s 1001 -au 1001 -ap "$pw" -key contact_port "$uas_port" -timeout 10s -timeout_error -nostdin "$sip" > reg.out 2>&1) \
    || { echo "REGISTER failed"; cat "$work/reg.out"; exit 1; }

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
cpu0=$(awk '{print $14 + $15}' "/proc/$parley_pid/stat")
start=$(date +%s.%N)
set +e
(cd "$work" && sipp -sf "$here/sipp/uac_bench.xml" -i 127.0.0.1 -bind_local -p "$(free_port)" -mp "$(free_port)" \
    -s 15550100 -r "$RATE" -l "$CALLS" -m "$CALLS" -timeout "${TIMEOUT}s" -nostdin \
    -trace_stat -stf uac_stat.csv -fd 1 "$sip" > uac.out 2>&1)
uac_rc=$?
set -e
end=$(date +%s.%N)
cpu1=$(awk '{print $14 + $15}' "/proc/$parley_pid/stat")
wait "$scanner" 2>/dev/null || true
stats="$work/uac_stat.csv"
last=$(tail -n 1 "$stats")
col() { head -n 1 "$stats" | tr ';' '\n' | grep -n -x "$1" | head -n 1 | cut -d: -f1; }
ok=$(echo "$last" | cut -d';' -f"$(col 'SuccessfulCall(C)')")
failed=$(echo "$last" | cut -d';' -f"$(col 'FailedCall(C)')")
elapsed=$(echo "$end - $start" | bc -l)
cpu_s=$(echo "($cpu1 - $cpu0) / $(getconf CLK_TCK)" | bc -l)
rss_peak=$(sort -n "$work/rss.txt" | tail -n 1)
metrics=$(curl -s -H "authorization: Bearer $tok" "$http/api/v1/sip/metrics")
m() { echo "$metrics" | python3 -c "import json,sys; print({c['name']: c['value'] for c in json.load(sys.stdin)}.get('$1'))"; }
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); binary: $BIN"
echo "legitimate: $CALLS calls at $RATE calls/s, sipp exit $uac_rc: $ok ok, $failed failed ($(echo "100 * $ok / $CALLS" | bc -l | xargs printf %.1f) %)"
cat "$work/scanner.out"
echo "parley CPU: $(printf %.2f "$cpu_s") s over $(printf %.1f "$elapsed") s ($(echo "100 * $cpu_s / $elapsed" | bc -l | xargs printf %.0f) % of one core); peak RSS $((rss_peak / 1024)) MiB"
for c in sip_requests_in_total sip_throttled_total sip_auth_failures_total sip_bans_total sip_banned_dropped_total sip_responses_suppressed_total; do
    echo "$c: $(m $c)"
done
