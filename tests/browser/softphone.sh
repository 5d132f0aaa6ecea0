#!/bin/sh
# Runs tests/browser/softphone.spec.mjs in a network namespace that has only `lo`
# (nothing can leave loopback; Chromium then needs --allow-loopback-in-peer-connection).
# Needs root (unshare -n), Debian chromium, node and `npm ci` in tests/browser.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$here/node_modules/playwright-core" ] || (cd "$here" && npm ci --no-audit --no-fund >/dev/null)
exec unshare -n sh -c "ip link set lo up && node '$here/softphone.spec.mjs'"
