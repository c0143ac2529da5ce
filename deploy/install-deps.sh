#!/usr/bin/env bash
# Installs, only when missing, every Debian package Flotilla needs to build,
# test and run its demo.  Idempotent: a second run installs nothing and says
# so.  Runs as root, or through sudo when not root.
set -euo pipefail

packages=(
    build-essential cmake pkg-config git ca-certificates
    clang libclang-rt-14-dev            # fuzzing (libFuzzer) and sanitizers
    clang-tidy                          # static analysis in CI
    libpq-dev                           # PostgreSQL client
    libzmq3-dev libczmq-dev             # transport, CurveZMQ, zauth/zcert
    libmsgpack-dev                      # wire format
    libsodium-dev                       # Ed25519, BLAKE2b, secure memory
    libssl-dev                          # SHA-256 (libcrypto, SHA-NI)
    libpg-query-dev libprotobuf-c-dev   # the PostgreSQL parser
    libyaml-dev                         # configuration
    libjansson-dev                      # JSON output
    libcmocka-dev                       # unit tests
    libmicrohttpd-dev                   # metrics endpoint
    postgresql-15 postgresql-client-15  # tests, demo, benchmarks
    procps iproute2 util-linux          # ps, ss, runuser in scripts
    bc hyperfine                        # benchmarks under bench/
    python3-jsonschema python3-rfc3987  # SARIF output checked against its schema
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#packages[@]} packages already installed"
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    else
        echo "install-deps: missing packages: ${missing[*]}" >&2
        echo "install-deps: run this script as root (or install sudo)" >&2
        exit 1
    fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
