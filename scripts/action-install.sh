#!/usr/bin/env bash
# The Action's install step (action.yml runs it; tests/e2e/ship.rs runs it
# against a local server): puts the relctl that belongs to this checkout of the
# action on the job's PATH.
#
# 1. The version is the action checkout's own (Cargo.toml [package] version,
#    tag v<version>), or the `version` input (RELCTL_VERSION) when set.
# 2. The action's commit: a composite action runs from
#    _actions/<owner>/<repo>/<ref>/, so a last path component of 40 hex digits
#    is the pinned commit; a checkout used as `./` answers `git rev-parse HEAD`.
#    Any other ref (a tag such as v1.2.0 or v1, or a branch) has no commit to
#    compare: the binary's version must equal the checkout's version.
#    (github.action_ref is not used: it is empty or wrong inside composite
#    actions, actions/runner#2473.)
# 3. Downloads relctl-<arch>-unknown-linux-gnu.tar.gz and SHA256SUMS of that
#    release, checks the asset's line, unpacks it and reads `relctl --version`:
#    "relctl <version> (commit <sha>)" must name the version and, when the
#    action's commit is known, that commit.
# 4. Otherwise it builds the checkout with cargo (the runner's CARGO_HOME cache
#    when there is one), after one notice line that says why.
#
# Environment: GITHUB_ACTION_PATH, RUNNER_TEMP, GITHUB_PATH (set by the
# runner); RELCTL_VERSION, GH_TOKEN, ACTION_REPOSITORY (from the step's env:);
# RELCTL_RELEASES_URL replaces https://github.com/<repo>/releases/download
# for the project's own tests (no input sets it). Nothing here is ever
# interpolated by the workflow: every value arrives as an environment variable.
set -euo pipefail

fail() { echo "::error title=relctl install::$*" >&2; exit 1; }

action_path=${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is not set: run this as the step of the action}
temp=${RUNNER_TEMP:?RUNNER_TEMP is not set}
dest="$temp/relctl-bin"
mkdir -p "$dest"

# The first `version = "..."` of Cargo.toml's [package] table.
package_version() {
  awk '/^\[/ { inpkg = ($0 == "[package]") }
       inpkg && /^version *= *"/ { sub(/^version *= *"/, ""); sub(/".*/, ""); print; exit }' "$1"
}

# The action's own commit, or nothing when its ref is not one (see 2. above).
action_commit() {
  local ref
  ref=$(basename "$action_path")
  if [[ $ref =~ ^[0-9a-f]{40}$ ]]; then
    echo "$ref"
  elif [ -e "$action_path/.git" ] &&
       [ "$(git -C "$action_path" rev-parse --show-toplevel 2>/dev/null)" = "$(cd "$action_path" && pwd -P)" ]; then
    git -C "$action_path" rev-parse HEAD 2>/dev/null || true
  fi
}

# owner/repo of the action: the step's github.action_repository, else its path, else the workflow's.
action_repository() {
  if [ -n "${ACTION_REPOSITORY:-}" ]; then
    echo "$ACTION_REPOSITORY"
  elif [[ $action_path =~ /_actions/([^/]+)/([^/]+)/[^/]+/?$ ]]; then
    echo "${BASH_REMATCH[1]}/${BASH_REMATCH[2]}"
  else
    echo "${GITHUB_REPOSITORY:-}"
  fi
}

# download URL FILE: curl with the token (if any) in a header read from a pipe, never on the command line.
download() {
  if [ -n "${GH_TOKEN:-}" ]; then
    curl -fsSL --retry 3 -H @<(printf 'Authorization: Bearer %s\n' "$GH_TOKEN") -o "$2" "$1"
  else
    curl -fsSL --retry 3 -o "$2" "$1"
  fi
}

# try_release: installs the release asset into $dest, or prints why not (one line) and returns 1.
try_release() {
  local repo base asset dl expected actual line
  repo=$(action_repository)
  if [ -z "${RELCTL_RELEASES_URL:-}" ] && [ -z "$repo" ]; then
    echo "the action's repository is unknown"; return 1
  fi
  base="${RELCTL_RELEASES_URL:-https://github.com/$repo/releases/download}/$tag"
  asset="relctl-$(uname -m)-unknown-linux-gnu.tar.gz"
  dl=$(mktemp -d "$temp/relctl-download.XXXXXX")
  download "$base/$asset" "$dl/$asset" 2>/dev/null || { echo "release $tag has no asset $asset"; return 1; }
  download "$base/SHA256SUMS" "$dl/SHA256SUMS" 2>/dev/null || { echo "release $tag has no SHA256SUMS"; return 1; }
  expected=$(awk -v f="$asset" '$2 == f || $2 == "*" f { print $1; exit }' "$dl/SHA256SUMS")
  [ -n "$expected" ] || { echo "SHA256SUMS of $tag does not list $asset"; return 1; }
  actual=$(sha256sum "$dl/$asset" | cut -d' ' -f1)
  [ "$actual" = "$expected" ] || { echo "$asset of $tag does not match its SHA256SUMS"; return 1; }
  mkdir -p "$dl/unpacked"
  tar -xzf "$dl/$asset" -C "$dl/unpacked" relctl 2>/dev/null || { echo "$asset of $tag holds no relctl"; return 1; }
  line=$(timeout 60 "$dl/unpacked/relctl" --version 2>/dev/null) || { echo "relctl of $tag does not run here"; return 1; }
  if [[ ! $line =~ ^relctl\ ([^ ]+)\ \(commit\ ([0-9a-f]{40}|unknown)\)$ ]]; then
    echo "relctl of $tag says '$line', not its version and commit"; return 1
  fi
  [ "${BASH_REMATCH[1]}" = "$version" ] || { echo "relctl of $tag is version ${BASH_REMATCH[1]}, not $version"; return 1; }
  if [ -n "$commit" ] && [ "${BASH_REMATCH[2]}" != "$commit" ]; then
    echo "relctl of $tag was built from commit ${BASH_REMATCH[2]}, not the action's commit $commit"; return 1
  fi
  mv "$dl/unpacked/relctl" "$dest/relctl"
  rm -rf "$dl"
}

# from_source: cargo install of the action's checkout (with the commit it stands for, when known).
from_source() {
  command -v cargo >/dev/null || fail "cargo is needed to build relctl from source (install Rust, e.g. with rustup)"
  local root="$temp/relctl-cargo"
  RELCTL_BUILD_COMMIT="$commit" cargo install --locked --root "$root" --path "$action_path"
  cp "$root/bin/relctl" "$dest/relctl"
}

[ -f "$action_path/Cargo.toml" ] || fail "$action_path/Cargo.toml is missing: is GITHUB_ACTION_PATH the action's checkout?"
checkout_version=$(package_version "$action_path/Cargo.toml")
[ -n "$checkout_version" ] || fail "no [package] version in $action_path/Cargo.toml"
if [ -n "${RELCTL_VERSION:-}" ]; then
  version=${RELCTL_VERSION#v}
  tag="v$version"
else
  tag="v$checkout_version"
  version=$checkout_version
fi
commit=$(action_commit)

if reason=$(try_release); then
  echo "relctl: installed the release asset of $tag: $("$dest/relctl" --version)"
else
  echo "::notice title=relctl::building relctl from source: $reason"
  from_source
  echo "relctl: built from source: $("$dest/relctl" --version)"
fi
echo "$dest" >>"${GITHUB_PATH:?GITHUB_PATH is not set}"
