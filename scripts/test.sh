#!/usr/bin/env bash
# The whole test suite, as the README says: the local PostgreSQL cases and the
# foreign-client tests included. Installs the foreign clients first
# (interop/install.sh), points the PostgreSQL cases at the local server when
# it answers (MANDATE_TEST_POSTGRES_URL, default
# postgres://postgres@127.0.0.1:5432/test), runs `cargo test --workspace`
# (or `cargo test` with the arguments given, e.g. `-p mandate-policy`), and
# ends with the list of everything that was skipped and why. Under CI=true a skip is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."

skips="$(mktemp)"
trap 'rm -f "$skips"' EXIT
export MANDATE_TEST_SKIP_LOG="$skips"
note_skip() { echo "$1" >>"$skips"; }

# PostgreSQL: the multi-replica backend, tested for real.
export MANDATE_TEST_POSTGRES_URL="${MANDATE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
pg_hostport="${MANDATE_TEST_POSTGRES_URL#*@}"; pg_hostport="${pg_hostport%%/*}"
pg_host="${pg_hostport%%:*}"; pg_port="${pg_hostport##*:}"; [ "$pg_port" = "$pg_host" ] && pg_port=5432
if command -v pg_isready >/dev/null && ! pg_isready -q -h "$pg_host" -p "$pg_port"; then
  note_skip "PostgreSQL cases: no server answers at $pg_host:$pg_port (start one, or set MANDATE_TEST_POSTGRES_URL)"
  unset MANDATE_TEST_POSTGRES_URL
elif ! command -v pg_isready >/dev/null && ! (exec 3<>"/dev/tcp/$pg_host/$pg_port") 2>/dev/null; then
  note_skip "PostgreSQL cases: nothing listens on $pg_host:$pg_port (start a server, or set MANDATE_TEST_POSTGRES_URL)"
  unset MANDATE_TEST_POSTGRES_URL
fi

# The foreign clients (openid-client, oidc-provider, PyJWT, the MCP SDKs).
if ! bash interop/install.sh; then
  echo "scripts/test.sh: the interop clients could not be installed; their tests are skipped" >&2
fi

# Under CI a skip fails the test that skips (mandate_testkit::skip), so the
# run stops being green; `--no-fail-fast` runs everything either way.
# No arguments: the whole workspace; else what they select (`-p mandate-policy`).
[ $# -eq 0 ] && set -- --workspace
CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}" cargo test --no-fail-fast "$@"
status=$?

echo
if [ -s "$skips" ]; then
  echo "== skipped (count, what: why)"
  sort "$skips" | uniq -c | sed 's/^ */  /'
  if [ "${CI:-}" = "true" ] && [ "$status" -eq 0 ]; then
    echo "CI=true: a skipped test is a failure" >&2
    status=1
  fi
else
  echo "== nothing skipped"
fi
exit "$status"
