# Shared set-up of the system benchmarks (sourced, not run): the Parley binary, a work
# folder cleaned up on exit, ephemeral ports, a demo Parley on 127.0.0.1, an admin token
# and the API, the echoing sipp far end, agent registration and the bridge flow.
#
#   . "$(dirname "$0")/lib.sh"
#   bench_init acd sipp curl          # $here $root $BIN $work, tools checked, cleanup trap
#   start_parley PARLEY_RTP_PORTS=30000-39999
#   login                             # $token; then: api GET /api/v1/sip/metrics
# shellcheck shell=bash

# bench_init NAME [TOOL...]: locates the binary ($PARLEY_BIN, default the release binary in
# $CARGO_TARGET_DIR or ./target), checks the tools, makes $work and the exit trap that
# stops every pid in $pids and removes $work (kept with KEEP=1).
bench_init() {
    local name=$1 t
    shift
    here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
    root=$(cd "$here/.." && pwd)
    BIN=${PARLEY_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/parley}
    [ -x "$BIN" ] || { echo "no parley binary at $BIN (cargo build --release --bin parley)" >&2; exit 2; }
    for t in "$@"; do
        command -v "$t" >/dev/null || { echo "$t not installed${t/#sipp/ (Debian package sip-tester)}" >&2; exit 2; }
    done
    work=$(mktemp -d "/tmp/parley-$name-bench.XXXXXX")
    pids=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_parley [VAR=value...]: `parley serve --demo` on ephemeral loopback ports with the
# given extra environment; sets $sip, $http, $admin_pw, $ext_pw (extension 1001's SIP
# password) and $parley_pid, or prints Parley's output and exits.
start_parley() {
    (cd "$work" && exec env PARLEY_DATA_DIR="$work/data" PARLEY_HTTP_ADDR=127.0.0.1:0 PARLEY_SIP_ADDR=127.0.0.1:0 \
        RUST_LOG=error "$@" "$BIN" serve --demo > "$work/parley.out" 2> "$work/parley.err") &
    pids+=($!)
    for _ in $(seq 300); do grep -q "Parley listening" "$work/parley.out" 2>/dev/null && break; sleep 0.1; done
    sip=$(sed -n 's/^SIP listening on udp:\([^ ]*\).*/\1/p' "$work/parley.out")
    http=$(sed -n 's/^Parley listening on \(http:[^ ]*\).*/\1/p' "$work/parley.out")
    admin_pw=$(sed -n 's/.*admin@demo.parley.test.* \([^ ]*\)$/\1/p' "$work/parley.out" | head -n 1)
    ext_pw=$(sed -n 's/.*SIP extension 1001 password: \([^ ]*\).*/\1/p' "$work/parley.out")
    [ -n "$sip" ] && [ -n "$http" ] && [ -n "$admin_pw" ] \
        || { echo "parley did not start:"; cat "$work/parley.out" "$work/parley.err"; exit 1; }
    parley_pid=$(pgrep -n -f "^$BIN serve --demo" || true)
}

# login: the demo admin's bearer token in $token.
login() {
    token=$(curl -sf "$http/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"tenant\":\"demo\",\"email\":\"admin@demo.parley.test\",\"password\":\"$admin_pw\"}" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    [ -n "$token" ] || { echo "admin login failed" >&2; exit 1; }
}

# api METHOD PATH [JSON]: one authenticated API call (PATH from /api/v1/...); fails on an
# HTTP error.
api() {
    curl -sf -X "$1" "$http$2" -H "authorization: Bearer $token" -H 'content-type: application/json' ${3:+-d "$3"}
}

# sip_counter NAME: the value of one counter of /api/v1/sip/metrics (0 when absent).
sip_counter() { api GET /api/v1/sip/metrics | python3 -c "import json,sys; print(next((c['value'] for c in json.load(sys.stdin) if c['name'] == '$1'), 0))"; }

# start_uas PORT CALLS TIMEOUT_S [SIPP_ARG...]: the far end (benches/sipp/uas_bench.xml) in
# the background, its pid in $uas.
start_uas() {
    local port=$1 calls=$2 timeout=$3
    shift 3
    (cd "$work" && exec sipp -sf "$here/sipp/uas_bench.xml" -i 127.0.0.1 -bind_local -p "$port" -mp "$(free_port)" \
        "$@" -m "$calls" -timeout "${timeout}s" -nostdin > uas.out 2>&1) &
    uas=$!
    pids+=($uas)
}

# register EXT PASSWORD CONTACT_PORT: registers EXT with a contact at CONTACT_PORT (the UAS).
register() {
    (cd "$work" && sipp -sf "$root/tests/sipp/register.xml" -i 127.0.0.1 -bind_local -p "$(free_port)" -mp "$(free_port)" \
        -m 1 -s "$1" -au "$1" -ap "$2" -key contact_port "$3" -timeout 10s -timeout_error -nostdin "$sip" > "reg$1.out" 2>&1) \
        || { echo "REGISTER $1 failed"; cat "$work/reg$1.out"; exit 1; }
}

# unroute_demo_number: the demo number rings the agents directly (its IVR route removed), as
# in tests/sip.rs start_b2bua.
unroute_demo_number() {
    api DELETE /api/v1/ivr/numbers/%2B15550100 > /dev/null || { echo "could not unroute the demo number"; exit 1; }
}

# bridge_flow UAS_PORT: a trunk to 127.0.0.1:UAS_PORT and a flow on the demo number that
# transfers every call out through it to +15550199.
bridge_flow() {
    api POST /api/v1/trunks "{\"name\":\"carrier\",\"outbound_target\":\"127.0.0.1:$1\",\"caller_id\":\"+15550100\"}" > /dev/null
    api POST /api/v1/ivr/import '{"version":1,"id":"bridge","start":"go","nodes":{"go":{"type":"transfer","target":{"number":"+15550199"}}}}' > /dev/null
    api POST /api/v1/ivr/flows/bridge/publish > /dev/null
    api PUT /api/v1/ivr/numbers/%2B15550100 '{"flow_id":"bridge"}' > /dev/null
}

# cpu_ticks: Parley's user + system CPU so far, in clock ticks (0 without a pid).
cpu_ticks() { if [ -n "${parley_pid:-}" ]; then awk '{print $14 + $15}' "/proc/$parley_pid/stat"; else echo 0; fi; }

# uac_stat COLUMN: the last value of COLUMN (e.g. 'SuccessfulCall(C)') in the sipp caller's
# statistics file, $work/uac_stat.csv (-trace_stat -stf uac_stat.csv).
uac_stat() {
    local stats="$work/uac_stat.csv" c
    c=$(head -n 1 "$stats" | tr ';' '\n' | grep -n -x "$1" | head -n 1 | cut -d: -f1)
    tail -n 1 "$stats" | cut -d';' -f"$c"
}

# caller_loss: "calls bridged lost expected" over the demo caller's (+15550123) stored calls
# (benches/caller_loss.py).
caller_loss() {
    local cust
    cust=$(api GET "/api/v1/customers/lookup?kind=phone&value=%2B15550123" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    python3 "$here/caller_loss.py" "$http" "$token" "$cust"
}
