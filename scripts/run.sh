#!/usr/bin/env bash
# Runs Parley on the embedded default in demo mode: SQLite in ./data, the demo tenant
# (created on the first start, its logins printed once; its trunk trusts 127.0.0.1),
# web UI and API on :8080, SIP on :5060. Extra arguments go to `parley serve`
# (e.g. --http-addr 127.0.0.1:9000); configuration: parley.toml / PARLEY_* env.
# A production server runs `parley serve` without --demo (see SECURITY.md).
set -euo pipefail
cd "$(dirname "$0")/.."
"$(dirname "$0")/setup.sh"
exec cargo run --release --locked --bin parley -- serve --demo "$@"
