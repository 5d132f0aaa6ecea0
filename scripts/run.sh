#!/usr/bin/env bash
# Runs Parley on the embedded default: SQLite in ./data, demo tenant on first start,
# web UI and API on :8080, SIP on :5060. Extra arguments go to `parley serve`
# (e.g. --demo, --http-addr 127.0.0.1:9000); configuration: parley.toml / PARLEY_* env.
set -euo pipefail
cd "$(dirname "$0")/.."
"$(dirname "$0")/setup.sh"
exec cargo run --release --locked --bin parley -- serve "$@"
