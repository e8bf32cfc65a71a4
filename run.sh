#!/usr/bin/env bash
# Runs the pinned Deno (tools/deno, installed from npm on first use) with the given arguments.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deno="$here/tools/deno/node_modules/.bin/deno"
if [ ! -x "$deno" ]; then
  npm ci --prefix "$here/tools/deno" --no-audit --no-fund --loglevel=error >&2
fi
cd "$here"
exec "$deno" "$@"
