#!/usr/bin/env bash
# Load test of the AuthZEN evaluation endpoint on loopback with wrk.
# Usage: bench/authzen.sh [sqlite|postgres] [seconds] [connections]
# Needs wrk (Debian package `wrk`). Builds the release binary first.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}; secs=${2:-10}; conns=${3:-8}
# MANDATE_BIN=path uses that binary instead of building (for A/B runs).
if [ -z "${MANDATE_BIN:-}" ]; then
  cargo build -q --release -p mandate
fi
bin=${MANDATE_BIN:-target/release/mandate}
dir=$(mktemp -d)
port=18420
args=(serve --data-dir "$dir/data" --listen "127.0.0.1:$port")
if [ "$backend" = postgres ]; then
  db="mandate_bench_$$"
  psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $db"
  args+=(--database "postgres://postgres@127.0.0.1:5432/$db")
fi
MANDATE_LOG=warn "$bin" "${args[@]}" > "$dir/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; [ "$backend" = postgres ] && psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"; rm -rf "$dir"' EXIT
for _ in $(seq 1 50); do curl -sf "127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
export MANDATE_URL="http://127.0.0.1:$port" MANDATE_TOKEN_FILE="$dir/data/admin-token"
"$bin" policy push examples/policies/*.cedar -m bench >/dev/null
"$bin" agent register deploy-bot --owner ann@example.com --kind autonomous --label env=prod --label trust-provider=k8s-prod >/dev/null
MANDATE_TOKEN=$(cat "$dir/data/admin-token") wrk -t"$(( conns < 2 ? 1 : 2 ))" -c"$conns" -d"${secs}s" --latency -s bench/authzen.lua "http://127.0.0.1:$port/access/v1/evaluation" | tail -n 1
