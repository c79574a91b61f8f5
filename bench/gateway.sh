#!/usr/bin/env bash
# Load test of the gateway on loopback: what Mandate's `/gw/<resource>` adds
# over calling the upstream directly, next to nginx as a plain reverse proxy.
# Usage: bench/gateway.sh [seconds] [rate] [connections]
#
# Upstream: nginx on 127.0.0.1:18430 answering `200 ok` to any POST after
# reading (and discarding) the whole body: the cheapest possible upstream, so
# the proxies' own cost is what shows.
# (a) direct:  POST http://127.0.0.1:18430/echo
# (b) nginx:   POST http://127.0.0.1:18431/echo, nginx proxying to the upstream
#     with keep-alive connections, the body buffered in memory, and the
#     agent's Authorization replaced by `Bearer upstream-secret` (the work the
#     gateway does, less the token check and policy)
# (c) mandate: POST http://127.0.0.1:18420/gw/bench/echo with the agent's
#     `Authorization: Bearer <Mandate access token>`; the resource `bench`
#     (kind http) injects the secret `bench-key` as the upstream credential.
# Each with 1 KiB and 64 KiB bodies: first at a FIXED RATE (hey, `rate`
# requests/s in all over `connections` workers; p50/p99 and the throughput
# reached), then at max throughput (wrk, `connections` connections).
# Then MCP: `tools/call` of `echo` (one request at a time, bench/mcp_echo.py)
# straight to interop/mcp_upstream.py and through the gateway (resource
# `mcp-bench`, kind mcp).
#
# Needs nginx (Debian: apt-get install -y nginx-light), hey (fixed rate;
# Debian: apt-get install -y hey), wrk (Debian: apt-get install -y wrk), node
# and `bash interop/install.sh` once. hey keeps each worker at rate/connections
# requests/s but does not correct for coordinated omission (a stalled request
# delays the next one instead of counting its wait): keep the rate well under
# the max-throughput figures, where that never happens.
# Builds the release binary first; MANDATE_BIN=path runs that binary instead.
# GW_ONLY_BASELINE=1 skips Mandate (rows (a) and (b) and the direct MCP line).
# Last, the cost of scrubbing answers: GETs of 1 KiB and 64 KiB JSON answers
# through a scrubbing route and a --no-scrub-responses one;
# GW_SCRUB_ONLY=1 runs only those rows.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; rate=${2:-1000}; conns=${3:-8}
threads=$(( conns < 2 ? 1 : 2 ))
per_worker=$(( (rate + conns - 1) / conns ))
port=18420; up=18430; px=18431; mcp_up=18432
for tool in nginx:nginx-light hey:hey wrk:wrk; do
  command -v "${tool%%:*}" >/dev/null || PATH="$PATH:/usr/sbin" command -v "${tool%%:*}" >/dev/null \
    || { echo "bench/gateway.sh: ${tool%%:*} is missing (apt-get install -y ${tool#*:})" >&2; exit 1; }
done
nginx_bin=$(PATH="$PATH:/usr/sbin" command -v nginx)
[ -x interop/.venv/bin/python ] && [ -d interop/node_modules/jose ] \
  || { echo "bench/gateway.sh: run bash interop/install.sh first" >&2; exit 1; }
with_mandate=1; [ -n "${GW_ONLY_BASELINE:-}" ] && with_mandate=
if [ -n "$with_mandate" ] && [ -z "${MANDATE_BIN:-}" ]; then
  cargo build -q --release -p mandate
fi
bin=${MANDATE_BIN:-target/release/mandate}
dir=$(mktemp -d)
pid=; mcp_pid=
cleanup() {
  set +e
  [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null
  for p in $mcp_pid $pid; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT

# Bodies: printable bytes, as a JSON or text payload would be.
head -c 768 /dev/urandom | base64 -w0 > "$dir/body-1k"
head -c 49152 /dev/urandom | base64 -w0 > "$dir/body-64k"
# Answers for the response-scrubbing rows: the same kind of bytes, as JSON.
# nginx's workers (not root) read them: the folder is theirs to traverse.
mkdir -p "$dir/www"; chmod 711 "$dir"; chmod 755 "$dir/www"
for size in 1k 64k; do printf '{"data":"%s"}' "$(cat "$dir/body-$size")" > "$dir/www/resp-$size"; done
chmod 644 "$dir"/www/resp-*

# One nginx, two servers: the upstream and the plain reverse proxy.
mkdir -p "$dir/nginx"
cat > "$dir/nginx.conf" <<EOF
worker_processes ${NGINX_WORKERS:-2};
pid $dir/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/nginx/body;
  proxy_temp_path $dir/nginx/proxy;
  fastcgi_temp_path $dir/nginx/fastcgi;
  uwsgi_temp_path $dir/nginx/uwsgi;
  scgi_temp_path $dir/nginx/scgi;
  keepalive_requests 1000000;
  client_max_body_size 1m;
  client_body_buffer_size 128k;
  upstream bench_upstream { server 127.0.0.1:$up; keepalive 64; }
  server {
    listen 127.0.0.1:$up;
    location = /resp-1k { alias $dir/www/resp-1k; default_type application/json; }
    location = /resp-64k { alias $dir/www/resp-64k; default_type application/json; }
    location / { return 200 "ok\n"; }
  }
  server {
    listen 127.0.0.1:$px;
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer upstream-secret";
    }
  }
}
EOF
"$nginx_bin" -c "$dir/nginx.conf" -e "$dir/nginx/error.log"
for _ in $(seq 1 50); do curl -sf -d x "127.0.0.1:$px/echo" >/dev/null && break; sleep 0.1; done

# The MCP upstream: stateless, JSON answers (one request, one answer).
interop/.venv/bin/python interop/mcp_upstream.py "$mcp_up" --stateless --json-response > "$dir/mcp.log" 2>&1 &
mcp_pid=$!
for _ in $(seq 1 50); do grep -qs LISTENING "$dir/mcp.log" && break; sleep 0.2; done

gw_token=; mcp_token=
if [ -n "$with_mandate" ]; then
  MANDATE_LOG=warn "$bin" serve --data-dir "$dir/data" --listen "127.0.0.1:$port" > "$dir/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 50); do curl -sf "127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
  export MANDATE_URL="http://127.0.0.1:$port" MANDATE_TOKEN_FILE="$dir/data/admin-token"
  # As bench/token.sh: an agent mapped from a "cluster" service-account token.
  mkdir "$dir/keys"
  node interop/openid_client.mjs keygen "$dir/keys" >/dev/null
  "$bin" provider add k8s --kind kubernetes --issuer https://k8s.bench.test --audience mandate \
    --jwks-file "$dir/keys/k8s-jwks.json" >/dev/null
  "$bin" agent register bench-bot --owner ann@example.com --kind autonomous >/dev/null
  "$bin" binding add --provider k8s --agent bench-bot \
    --match kubernetes.io.namespace=bench --match kubernetes.io.serviceaccount.name=bench-bot >/dev/null
  printf 'upstream-secret' | "$bin" secret set bench-key >/dev/null
  "$bin" resource add bench --upstream "http://127.0.0.1:$up/" --kind http --credential bench-key --scopes read >/dev/null
  "$bin" resource add bench-raw --upstream "http://127.0.0.1:$up/" --kind http --credential bench-key \
    --scopes read --no-scrub-responses >/dev/null
  "$bin" resource add mcp-bench --upstream "http://127.0.0.1:$mcp_up/mcp" --kind mcp --credential bench-key --scopes read >/dev/null
  cat > "$dir/bench.cedar" <<'EOF'
@id("agents-get-tokens")
permit (principal is Mandate::Agent, action == Mandate::Action::"token:issue", resource)
when { principal.status == "active" };
@id("agents-call-routes")
permit (principal is Mandate::Agent, action in [Mandate::Action::"http:request", Mandate::Action::"mcp:tools/call"], resource)
when { principal.status == "active" };
EOF
  "$bin" policy push "$dir/bench.cedar" -m bench >/dev/null
  assertion=$(node interop/openid_client.mjs sa-token "$dir/keys" https://k8s.bench.test mandate bench bench-bot $(( secs * 12 + 900 )))
  token_for() { # resource URL -> access token on stdout
    local form code
    form="grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=$assertion&scope=read"
    code=$(curl -s -o "$dir/token.json" -w '%{http_code}' --data "$form" --data-urlencode "resource=$1" "$MANDATE_URL/oauth2/token")
    if [ "$code" != 200 ]; then
      echo "bench/gateway.sh: token for $1: mandate answered $code: $(cat "$dir/token.json")" >&2; return 1
    fi
    interop/.venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' < "$dir/token.json"
  }
  gw_token=$(token_for "${GW_AUDIENCE:-$MANDATE_URL/gw/bench}")
  mcp_token=$(token_for "${GW_MCP_AUDIENCE:-$MANDATE_URL/gw/mcp-bench}")
  raw_token=$(token_for "$MANDATE_URL/gw/bench-raw")
  # One request first: the measure means nothing unless it is a 200 from the upstream.
  code=$(curl -s -o "$dir/check.out" -w '%{http_code}' -H "Authorization: Bearer $gw_token" -d x "$MANDATE_URL/gw/bench/echo")
  if [ "$code" != 200 ] || [ "$(cat "$dir/check.out")" != ok ]; then
    echo "bench/gateway.sh: the gateway answered $code: $(head -c 300 "$dir/check.out")" >&2; exit 1
  fi
fi

targets=("direct|http://127.0.0.1:$up/echo|" "nginx|http://127.0.0.1:$px/echo|")
[ -n "$with_mandate" ] && targets+=("mandate|http://127.0.0.1:$port/gw/bench/echo|$gw_token")

# hey at a fixed rate -> "p50_ms p99_ms reqs_per_s non200"
fixed_rate() { # url body_file(- for a GET) token
  local args=(-z "${secs}s" -c "$conns" -q "$per_worker")
  if [ "$2" = - ]; then args+=(-m GET); else args+=(-m POST -D "$2" -T application/json); fi
  [ -n "$3" ] && args+=(-H "Authorization: Bearer $3")
  hey "${args[@]}" "$1" | awk '
    /Requests\/sec:/ { rps = $2 }
    /^ +50% in/ { p50 = $3 * 1000 }
    /^ +99% in/ { p99 = $3 * 1000 }
    /^Status code distribution:/ { sec = "status"; next }
    /^Error distribution:/ { sec = "error"; next }
    sec == "status" && /^ +\[[0-9]+\]/ { if ($1 != "[200]") bad += $2 }
    sec == "error" && /^ +\[[0-9]+\]/ { n = $1; gsub(/[^0-9]/, "", n); bad += n }
    END { printf "%.2f %.2f %.0f %d\n", p50, p99, rps, bad }'
}
# wrk flat out -> its one summary line (bench/token.lua posts WRK_BODY).
max_rate() { # url body_file(- for a GET) token
  local auth=; [ -n "$3" ] && auth="Bearer $3"
  local method=POST body=; if [ "$2" = - ]; then method=GET; else body="$(cat "$2")"; fi
  WRK_METHOD="$method" WRK_BODY="$body" WRK_AUTH="$auth" wrk -t"$threads" -c"$conns" -d"${secs}s" --latency \
    -s bench/token.lua "$1" | tail -n 1
}

echo "fixed rate: $rate requests/s (hey -c$conns -q$per_worker, ${secs}s); max: wrk -t$threads -c$conns -d${secs}s"
printf '%-8s %-6s | %9s %9s %9s %6s | %s\n' target body p50_ms p99_ms req/s non200 "max throughput (wrk)"
[ -n "${GW_SCRUB_ONLY:-}" ] && targets=()
for t in "${targets[@]}"; do
  IFS='|' read -r name url tok <<< "$t"
  for size in 1k 64k; do
    read -r p50 p99 rps bad <<< "$(fixed_rate "$url" "$dir/body-$size" "$tok")"
    max=$(max_rate "$url" "$dir/body-$size" "$tok")
    printf '%-8s %-6s | %9s %9s %9s %6s | %s\n' "$name" "$size" "$p50" "$p99" "$rps" "$bad" "$max"
  done
done

# Response scrubbing: GETs of a 1 KiB and a 64 KiB JSON answer, through the
# route that scrubs every answer for the injected secret (`bench`, the
# default) and the one that does not (`bench-raw`, --no-scrub-responses),
# in the same run, beside direct and nginx.
echo "answers of 1k/64k to GETs (scrubbed: the default; raw: --no-scrub-responses):"
scrub=("direct|http://127.0.0.1:$up|" "nginx|http://127.0.0.1:$px|")
[ -n "$with_mandate" ] && scrub+=("scrubbed|http://127.0.0.1:$port/gw/bench|$gw_token" "raw|http://127.0.0.1:$port/gw/bench-raw|$raw_token")
for t in "${scrub[@]}"; do
  IFS='|' read -r name base tok <<< "$t"
  for size in 1k 64k; do
    read -r p50 p99 rps bad <<< "$(fixed_rate "$base/resp-$size" - "$tok")"
    max=$(max_rate "$base/resp-$size" - "$tok")
    printf '%-8s %-6s | %9s %9s %9s %6s | %s\n' "$name" "$size" "$p50" "$p99" "$rps" "$bad" "$max"
  done
done
[ -n "${GW_SCRUB_ONLY:-}" ] && exit 0

echo "MCP tools/call echo, one request at a time (bench/mcp_echo.py):"
printf '  %-8s ' direct
interop/.venv/bin/python bench/mcp_echo.py "http://127.0.0.1:$mcp_up/mcp"
if [ -n "$with_mandate" ]; then
  printf '  %-8s ' mandate
  interop/.venv/bin/python bench/mcp_echo.py "http://127.0.0.1:$port/gw/mcp-bench" --token "$mcp_token"
fi
