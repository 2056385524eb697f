#!/usr/bin/env bash
# Runs the project's checks and tests on every target Python (default: 3.8 and 3.12): ruff;
# ShellCheck over every shell script (when it is installed: it says so when it is not);
# then pytest on each Python.
#
# Usage: bash tests/run.sh [pytest args...]     the checks and the tests
#        bash tests/run.sh --lint               ruff and shellcheck only
# Environment:
#   WORKER_TEST_PYTHONS  the Pythons, default "3.8 3.12"
#   WORKER_TEST_DEPS     locked (default): each Python's venv .ci-venvs/pyXY synced from the
#                        hashed dev lock (what the nodes run, plus the test tools);
#                        newest: .ci-venvs/pyXY-newest resolved afresh from pyproject.toml's
#                        ranges at their newest versions (CI runs it for 3.12)
#   UV, RUFF, SHELLCHECK paths of those tools (default: found or installed here)
# The az CLI's tests (tests/test_batch_az.py) use .ci-venvs/azure-cli, synced here from
# locks/azure-cli.txt (a Python 3.12 venv of its own: azure-cli pins its own Azure SDKs).
#   WORKER_TEST_HOST_CHANGES=1  also run the tests that change this machine outside their
#                        own folders (apt packages and /etc/apt, as root); .ci/run sets it
set -Eeuo pipefail

readonly UV_VERSION="0.13.9"
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
readonly ROOT
readonly VENVS="$ROOT/.ci-venvs"

log() { printf '%s run.sh: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
trap 'log "failed at line $LINENO"' ERR

find_python() {  # $1 = X.Y -> path of a working interpreter of that version
  local version=$1 candidate
  # pyenv's versions first: its shims on PATH fail unless that version is the active one.
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python"$version" \
    "$(command -v "python$version" || true)"; do
    if [[ -x $candidate ]] && "$candidate" -c pass 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "run.sh: Python $version not found; install it (e.g. pyenv install $version)" >&2
  return 2
}

ensure_uv() {
  if [[ -n ${UV:-} ]]; then return; fi
  UV=$(command -v uv || true)
  if [[ -z $UV ]]; then
    local tools="$VENVS/tools"
    if [[ ! -x $tools/bin/uv ]]; then
      log "installing uv $UV_VERSION into $tools"
      "$(find_python 3.12)" -m venv "$tools"
      "$tools/bin/python" -m pip install --quiet "uv==$UV_VERSION"
    fi
    UV=$tools/bin/uv
  fi
}

venv_path() {  # $1 = X.Y -> the venv the tests of that Python run in
  local tag="py${1/./}"
  if [[ $DEPS == newest ]]; then echo "$VENVS/$tag-newest"; else echo "$VENVS/$tag"; fi
}

sync_venv() {  # $1 = X.Y: create or update .ci-venvs/pyXY from locks/dev-pyXY.txt
  local version=$1 tag="py${1/./}" venv stamp want
  venv=$(venv_path "$version")
  stamp="$venv/.lock-sha256"
  want=$(sha256sum "$ROOT/locks/dev-$tag.txt" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)
  if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    log "syncing $venv from locks/dev-$tag.txt"
    "$UV" venv --quiet --allow-existing --python "$(find_python "$version")" "$venv"
    VIRTUAL_ENV=$venv "$UV" pip sync --quiet --require-hashes "$ROOT/locks/dev-$tag.txt"
    VIRTUAL_ENV=$venv "$UV" pip install --quiet --no-deps -e "$ROOT"
    echo "$want" >"$stamp"
  fi
}

sync_azure_cli() {  # .ci-venvs/azure-cli: the az CLI of locks/azure-cli.txt, for its tests
  local venv="$VENVS/azure-cli" stamp want python
  python=$(find_python 3.12) || { log "no Python 3.12: the az CLI's tests will skip"; return 0; }
  stamp="$venv/.lock-sha256"
  want=$(sha256sum "$ROOT/locks/azure-cli.txt" | cut -d' ' -f1)
  if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    log "syncing $venv from locks/azure-cli.txt"
    "$UV" venv --quiet --allow-existing --python "$python" "$venv"
    VIRTUAL_ENV=$venv "$UV" pip sync --quiet --require-hashes "$ROOT/locks/azure-cli.txt"
    echo "$want" >"$stamp"
  fi
}

newest_venv() {  # $1 = X.Y: .ci-venvs/pyXY-newest, resolved afresh, newest in the ranges
  local version=$1 venv
  venv=$(venv_path "$version")
  log "resolving $venv from pyproject.toml's ranges (newest versions)"
  "$UV" venv --quiet --clear --python "$(find_python "$version")" "$venv"
  VIRTUAL_ENV=$venv "$UV" pip install --quiet --upgrade --resolution highest -e "${ROOT}[dev]"
  log "newest: $(VIRTUAL_ENV=$venv "$UV" pip freeze --quiet |
    grep -E '^(azure-|duckdb|pyarrow|tqdm|trustme|pytest=)' | tr '\n' ' ')"
}

lint_python() {
  local ruff=${RUFF:-$(venv_path "$1")/bin/ruff}
  log "ruff check (target py38)"
  (cd "$ROOT" && "$ruff" check worker tests bench examples bootstrap)
}

lint_shell() {
  local shellcheck=${SHELLCHECK:-$(command -v shellcheck || true)} scripts
  if [[ -z $shellcheck || ! -x $shellcheck ]]; then
    log "shellcheck is not installed: the shell scripts were NOT checked" \
      "(apt-get install shellcheck; .ci/run installs it)"
    return 0
  fi
  mapfile -t scripts < <(cd "$ROOT" && find . -path ./.ci-venvs -prune -o -path ./.worker \
    -prune -o -path ./.git -prune -o \( -name '*.sh' -o -path ./.ci/run \) -type f -print | sort)
  (cd "$ROOT" && "$shellcheck" -x "${scripts[@]}")
  log "shellcheck: ${#scripts[@]} scripts clean"
}

main() {
  cd "$ROOT"
  DEPS=${WORKER_TEST_DEPS:-locked}
  [[ $DEPS == locked || $DEPS == newest ]] ||
    { log "WORKER_TEST_DEPS=$DEPS: use locked or newest"; return 2; }
  local version status=0 lint_only=0
  read -r -a versions <<<"${WORKER_TEST_PYTHONS:-3.8 3.12}"
  if [[ ${1:-} == --lint ]]; then lint_only=1; shift; fi
  if ((!lint_only)) || [[ -z ${RUFF:-} ]]; then
    ensure_uv
    for version in "${versions[@]}"; do
      if [[ $DEPS == newest ]]; then newest_venv "$version"; else sync_venv "$version"; fi
    done
    if ((!lint_only)) && [[ " ${versions[*]} " == *" 3.12 "* ]]; then sync_azure_cli; fi
  fi
  lint_python "${versions[0]}"
  lint_shell
  ((lint_only)) && return 0
  for version in "${versions[@]}"; do
    log "pytest on Python $version ($DEPS dependencies)"
    "$(venv_path "$version")/bin/python" -m pytest "$@" || status=$?
  done
  return "$status"
}

main "$@"
