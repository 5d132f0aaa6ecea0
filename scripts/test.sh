#!/usr/bin/env bash
# The whole test suite: set-up, formatting, lints, every test on SQLite and PostgreSQL.
# Under CI=true nothing may be skipped: a missing PostgreSQL or speech model fails.
set -euo pipefail
cd "$(dirname "$0")/.."

"$(dirname "$0")/setup.sh" --test

# Reuse a build directory outside the clone when possible (CI clones afresh each time).
if [ -z "${CARGO_TARGET_DIR:-}" ] && { [ -w /var/tmp ] || mkdir -p /var/tmp/parley-target 2>/dev/null; }; then
  export CARGO_TARGET_DIR=/var/tmp/parley-target
fi

# The speech model for transcription tests: configuration first, then the shared test model.
if [ -z "${PARLEY_SPEECH_MODEL:-}" ] && [ -f ../shared/models/ggml-tiny.en.bin ]; then
  PARLEY_SPEECH_MODEL="$(cd ../shared/models && pwd)/ggml-tiny.en.bin"
  export PARLEY_SPEECH_MODEL
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
cargo test --workspace --locked
