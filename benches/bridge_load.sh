#!/usr/bin/env bash
# System benchmark of bridged calls through Parley's media engine with a synthetic caller:
#   benches/bridge_caller.rs (offers one codec: CODEC=opus (default, opus/48000/2), pcma
#   or pcmu; 20 ms frames) -> Parley: +15550100 routed to a flow that transfers to
#   +15550199 -> out through a trunk to a sipp UAS with -rtp_echo (PCMU).
# Each call is two RTP legs in Parley mixed in a room; with Opus, Parley decodes and
# re-encodes Opus on the caller leg and G.711 on the far leg, both ways (transcoding).
# Unlike benches/ivr_bridge_load.sh (sipp plays a pcap through raw sockets, which every
# UDP datagram on the host is then offered to) nothing here opens a raw socket.
# Parley's CPU is read from /proc by the caller over a window in which every call is up.
# Loss, per hop:
#   caller -> Parley   what Parley's caller legs measured (RFC 3550, stored with each call)
#   Parley <-> far end what Parley's far legs measured on the echo of their own packets
#                      (all ended legs' figures from /api/v1/sip/metrics minus the callers')
#   Parley -> caller   what the caller counted (RFC 3550, per leg)
# plus the share of 20 ms frames in which the caller hears its own echo (decoded on a
# sample of the calls).
#
#   benches/bridge_load.sh                       # 100 concurrent Opus calls
#   CALLS=500 RATE=50 WINDOW=10 benches/bridge_load.sh
#   CODEC=pcma CALLS=300 benches/bridge_load.sh  # G.711 both sides
#
# Loopback only, ephemeral ports; bounded (the caller gives up after TIMEOUT s, sipp
# after TIMEOUT s). Uses $PARLEY_BIN (default: the release binary in $CARGO_TARGET_DIR
# or ./target); builds the caller with `cargo bench --no-run` unless $BRIDGE_CALLER names it.
set -euo pipefail

CODEC=${CODEC:-opus}
CALLS=${CALLS:-100}
RATE=${RATE:-50}
WINDOW=${WINDOW:-10}
TIMEOUT=${TIMEOUT:-180}
. "$(dirname "$0")/lib.sh"
bench_init bridge sipp curl
CALLER=${BRIDGE_CALLER:-}
if [ -z "$CALLER" ]; then
    CALLER=$(cd "$root" && cargo bench -p parley --bench bridge_caller --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "bridge_caller" and m.get("executable"):
        print(m["executable"])')
fi
[ -x "$CALLER" ] || { echo "could not build the caller (cargo bench --bench bridge_caller --no-run)" >&2; exit 2; }

start_parley PARLEY_RTP_PORTS=30000-39999
login

uas_port=$(free_port)
bridge_flow "$uas_port"

start_uas "$uas_port" "$CALLS" "$TIMEOUT" -rtp_echo

# Host-wide UDP receive-buffer overflows (any socket: Parley's, sipp's, the caller's).
rcvbuf_errors() { awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c }' /proc/net/snmp; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
drops_before=$(rcvbuf_errors)
set +e
"$CALLER" --sip "$sip" --number +15550100 --codec "$CODEC" --calls "$CALLS" --rate "$RATE" --window "$WINDOW" \
    --pid "$parley_pid" --timeout "$TIMEOUT" > "$work/caller.out" 2> "$work/caller.err"
caller_rc=$?
set -e
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
drops=$(( $(rcvbuf_errors) - drops_before ))
sleep 2

api GET /api/v1/sip/metrics > "$work/metrics.json"
loss=$(python3 - "$work/metrics.json" $(caller_loss) <<'PY'
import json, sys
metrics = sys.argv[1]
calls, answered, lost, expected = map(int, sys.argv[2:])
m = {c["name"]: c["value"] for c in json.load(open(metrics))}
all_exp, all_lost = m.get("media_ended_rtp_expected_total", 0), m.get("media_ended_rtp_lost_total", 0)
far_exp, far_lost = all_exp - expected, all_lost - lost
pct = lambda l, e: 100.0 * l / max(e, 1)
print(f"{calls} calls stored, {answered} bridged")
print(f"caller -> parley (parley's caller legs): {lost} lost of {expected} expected ({pct(lost, expected):.3f} %)")
print(f"parley -> far end -> parley (parley's far legs, echo of their own packets): {far_lost} lost of {far_exp} expected ({pct(far_lost, far_exp):.3f} %)")
print(f"parley media: {m.get('media_datagrams_in_total')} datagrams in, {m.get('media_datagrams_out_total')} out, "
      f"{m.get('media_send_errors_total')} send errors, {m.get('media_late_ticks_total')} late ticks")
PY
)
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $load_before before, $load_after after"
echo "caller exit $caller_rc"
cat "$work/caller.out"
[ "$caller_rc" -eq 0 ] || cat "$work/caller.err"
echo "$loss"
echo "host UDP receive-buffer overflows during the run (all sockets): $drops"
