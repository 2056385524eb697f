#!/usr/bin/env bash
# Runs the project's checks and tests on every target Python (default: 3.8 and 3.11).
# Each Python gets a venv in .ci-venvs/, synced from the hashed dev lock (uv, installed here
# if missing). Usage: bash tests/run.sh [pytest args...]
# Environment: WORKER_TEST_PYTHONS ("3.8 3.11"), UV (path to a uv binary).
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
      "$(find_python 3.11)" -m venv "$tools"
      "$tools/bin/python" -m pip install --quiet "uv==$UV_VERSION"
    fi
    UV=$tools/bin/uv
  fi
}

sync_venv() {  # $1 = X.Y: create or update .ci-venvs/pyXY from locks/dev-pyXY.txt
  local version=$1 tag="py${1/./}" venv stamp want
  venv="$VENVS/$tag"
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

main() {
  cd "$ROOT"
  ensure_uv
  local version tag status=0
  read -r -a versions <<<"${WORKER_TEST_PYTHONS:-3.8 3.11}"
  for version in "${versions[@]}"; do sync_venv "$version"; done
  tag="py${versions[0]/./}"
  log "ruff check (target py38)"
  "$VENVS/$tag/bin/ruff" check worker tests bench examples bootstrap
  for version in "${versions[@]}"; do
    tag="py${version/./}"
    log "pytest on Python $version"
    "$VENVS/$tag/bin/python" -m pytest "$@" || status=$?
  done
  return "$status"
}

main "$@"
