#!/usr/bin/env bash
# Load test of the token endpoint on loopback with wrk, and of node
# oidc-provider's as the peer, in the same run.
# Usage: bench/token.sh [sqlite|postgres] [seconds] [connections]
#
# Mandate: the jwt-bearer grant with a Kubernetes-style service-account token
# as the assertion (one token, reused for the run as a pod reuses its projected
# token), mapped by a binding rule to an agent, a Cedar policy evaluated
# (`token:issue`), an ES256 access token signed, and the issuance recorded
# durably (token row and audit event) before the answer.
# Peer: node oidc-provider (interop/oidc_provider_peer.mjs), client_credentials
# with client_secret_basic, ES256 JWT access tokens for one resource; one node
# process (PEER_WORKERS=N for N processes), in-memory storage.
#
# Needs wrk (Debian package `wrk`), node, and `bash interop/install.sh` once.
# Builds the release binary first; MANDATE_BIN=path runs that binary instead.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}; secs=${2:-10}; conns=${3:-8}
threads=$(( conns < 2 ? 1 : 2 ))
command -v wrk >/dev/null || { echo "bench/token.sh: wrk is missing (apt-get install wrk)" >&2; exit 1; }
[ -d interop/node_modules/oidc-provider ] || { echo "bench/token.sh: run bash interop/install.sh first" >&2; exit 1; }
if [ -z "${MANDATE_BIN:-}" ]; then
  cargo build -q --release -p mandate
fi
bin=${MANDATE_BIN:-target/release/mandate}
dir=$(mktemp -d)
port=18420; peer_port=18421
args=(serve --data-dir "$dir/data" --listen "127.0.0.1:$port")
if [ "$backend" = postgres ]; then
  db="mandate_bench_$$"
  psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $db"
  args+=(--database "postgres://postgres@127.0.0.1:5432/$db")
fi
pid=; peer=
cleanup() {
  set +e
  for p in $peer $pid; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  if [ "$backend" = postgres ]; then
    psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
MANDATE_LOG=warn "$bin" "${args[@]}" > "$dir/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do curl -sf "127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
export MANDATE_URL="http://127.0.0.1:$port" MANDATE_TOKEN_FILE="$dir/data/admin-token"

# A "cluster" key pair, its public JWKS registered inline on a kubernetes provider.
mkdir "$dir/keys"
node interop/openid_client.mjs keygen "$dir/keys" >/dev/null
"$bin" provider add k8s --kind kubernetes --issuer https://k8s.bench.test --audience mandate \
  --jwks-file "$dir/keys/k8s-jwks.json" >/dev/null
"$bin" agent register bench-bot --owner ann@example.com --kind autonomous --label env=prod >/dev/null
"$bin" binding add --provider k8s --agent bench-bot \
  --match kubernetes.io.namespace=bench --match kubernetes.io.serviceaccount.name=bench-bot >/dev/null
"$bin" resource add api --audience https://api.bench.test --scopes read,write >/dev/null
cat > "$dir/bench.cedar" <<'EOF'
@id("active-agents-get-tokens")
permit (principal, action == Mandate::Action::"token:issue", resource)
when { principal.status == "active" };
EOF
"$bin" policy push "$dir/bench.cedar" -m bench >/dev/null

assertion=$(node interop/openid_client.mjs sa-token "$dir/keys" https://k8s.bench.test mandate bench bench-bot $(( secs + 600 )))
form="grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=$assertion&resource=https%3A%2F%2Fapi.bench.test&scope=read%20write"
# One request first: the measure means nothing unless it is a 200 with a token.
check=$(curl -s -o "$dir/check.json" -w '%{http_code}' -d "$form" "http://127.0.0.1:$port/oauth2/token")
if [ "$check" != 200 ]; then
  echo "bench/token.sh: mandate answered $check: $(cat "$dir/check.json")" >&2; exit 1
fi
echo "mandate ($backend), jwt-bearer, policy on, audit durable; wrk -t$threads -c$conns -d${secs}s:"
WRK_BODY="$form" wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s bench/token.lua \
  "http://127.0.0.1:$port/oauth2/token" | tail -n 1
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

# The peer, on the same machine, with the same load.
NODE_ENV=production node interop/oidc_provider_peer.mjs "$peer_port" "${PEER_WORKERS:-1}" > "$dir/peer.log" 2>&1 &
peer=$!
for _ in $(seq 1 50); do grep -qs listening "$dir/peer.log" && break; sleep 0.2; done
peer_form="grant_type=client_credentials&resource=https%3A%2F%2Fapi.bench.test&scope=read%20write"
peer_auth="Basic $(printf 'bench:bench-secret' | base64)"
check=$(curl -s -o "$dir/check.json" -w '%{http_code}' -H "Authorization: $peer_auth" -d "$peer_form" "http://127.0.0.1:$peer_port/token")
if [ "$check" != 200 ]; then
  echo "bench/token.sh: oidc-provider answered $check: $(cat "$dir/check.json")" >&2; exit 1
fi
echo "node oidc-provider $(node -p 'require("./interop/node_modules/oidc-provider/package.json").version') (${PEER_WORKERS:-1} process), client_credentials, in-memory; wrk -t$threads -c$conns -d${secs}s:"
WRK_BODY="$peer_form" WRK_AUTH="$peer_auth" wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s bench/token.lua \
  "http://127.0.0.1:$peer_port/token" | tail -n 1
