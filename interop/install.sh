#!/usr/bin/env bash
# Installs the interop test's foreign clients: openid-client, jose and
# oidc-provider from interop/package-lock.json into interop/node_modules, and
# PyJWT and the MCP Python SDK (mcp) from interop/requirements.txt into the
# virtualenv interop/.venv.
# Idempotent: each part is redone only when its lockfile changed since the
# last successful install. Needs node >= 20.19 with npm, and python3 with venv.
set -euo pipefail
cd "$(dirname "$0")"

for tool in node npm python3; do
  command -v "$tool" >/dev/null || { echo "interop/install.sh: $tool is missing" >&2; exit 1; }
done

stamp() { sha256sum "$1" | cut -d' ' -f1; }

if [ "$(cat node_modules/.interop-stamp 2>/dev/null)" != "$(stamp package-lock.json)" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  stamp package-lock.json > node_modules/.interop-stamp
fi

if [ "$(cat .venv/.interop-stamp 2>/dev/null)" != "$(stamp requirements.txt)" ]; then
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  stamp requirements.txt > .venv/.interop-stamp
fi

echo "interop: node $(node --version)," \
  "openid-client $(node -p 'require("./node_modules/openid-client/package.json").version')," \
  "oidc-provider $(node -p 'require("./node_modules/oidc-provider/package.json").version')," \
  "$(.venv/bin/python -c 'import jwt; print("PyJWT", jwt.__version__)')," \
  "$(.venv/bin/python -c 'from importlib.metadata import version; print("mcp", version("mcp"))')"
