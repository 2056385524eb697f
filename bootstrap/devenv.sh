#!/usr/bin/env bash
# A handler author's environment: the worker (editable, from this checkout), the emulators and
# the pytest plugin, at exactly the nodes' versions, in a venv of its own.
#
# Usage: bash bootstrap/devenv.sh [--python 3.8|3.12] [--venv DIR] [-r REQUIREMENTS]...
#   --python X.Y  the nodes' Python to match (default 3.8, the nodes' default; 3.12 also for
#                 deploy, status, logs, results and rerun, which need Python 3.9 or later)
#   --venv DIR    where the venv goes (default .worker/dev-pyXY in this checkout)
#   -r FILE       also install a project's requirements, the worker's pins held fixed
# Environment: WORKER_PYTHON (the interpreter to use), PYENV_ROOT (where pyenv's Pythons are).
#
# The venv gets locks/dev-pyXY.txt (the node lock's pins plus the test tools: trustme, pytest,
# ruff, pandas, uv, the package command's tools) with pip, hash-checked, then this checkout
# with `pip install -e`. A rerun with nothing changed exits at once.
# Exit codes: 0 ready, 2 bad option or a venv of another Python, 3 no Python X.Y found,
# 7 an install failed.
set -Eeuo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
readonly ROOT
readonly -a SUPPORTED=("3.8" "3.12")

PY_VERSION="3.8"
VENV=""
REQUIREMENTS=()

log() { printf '%s devenv: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
die() { printf 'devenv: %s\n' "$2" >&2; exit "$1"; }
# The comment block at the top of this file, without its "# " (and nothing after it).
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }
trap 'die 7 "failed at line $LINENO: $BASH_COMMAND"' ERR

parse_args() {
  while (($#)); do
    case $1 in
      --python) PY_VERSION=${2:-}; shift 2 || die 2 "--python needs X.Y" ;;
      --venv) VENV=${2:-}; shift 2 || die 2 "--venv needs a folder" ;;
      -r | --requirements) REQUIREMENTS+=("$(realpath -- "${2:?}")"); shift 2 ;;
      -h | --help) usage; exit 0 ;;
      *) die 2 "unknown option $1; see bash bootstrap/devenv.sh --help" ;;
    esac
  done
  [[ " ${SUPPORTED[*]} " == *" $PY_VERSION "* ]] ||
    die 2 "--python $PY_VERSION: the worker is locked for ${SUPPORTED[*]} only"
  VENV=${VENV:-$ROOT/.worker/dev-py${PY_VERSION/./}}
  local file
  for file in "${REQUIREMENTS[@]}"; do
    [[ -f $file ]] || die 2 "-r $file: no such file"
  done
}

# A working interpreter of $PY_VERSION: WORKER_PYTHON, pythonX.Y on PATH, pyenv's versions.
find_python() {
  local candidate
  for candidate in "${WORKER_PYTHON:-}" "$(command -v "python$PY_VERSION" || true)" \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$PY_VERSION".*/bin/"python$PY_VERSION"; do
    [[ -n $candidate && -x $candidate ]] || continue
    if [[ $("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) \
      == "$PY_VERSION" ]]; then
      echo "$candidate"
      return 0
    fi
  done
  die 3 "no Python $PY_VERSION found (WORKER_PYTHON, python$PY_VERSION on PATH, pyenv); install it (e.g. pyenv install $PY_VERSION) or set WORKER_PYTHON"
}

make_venv() {
  local have
  if [[ -x $VENV/bin/python ]]; then
    have=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    [[ $have == "$PY_VERSION" ]] ||
      die 2 "$VENV is a Python $have venv; remove it or choose another --venv"
    return 0
  fi
  log "creating $VENV (Python $PY_VERSION)"
  "$(find_python)" -m venv "$VENV"
}

# The lock, the checkout and the requirements, as one hash: unchanged means nothing to do.
wanted_state() {
  cat "$ROOT/$LOCK" "$ROOT/pyproject.toml" "${REQUIREMENTS[@]}" | sha256sum | cut -d' ' -f1
  printf '%s\n' "$ROOT" "${REQUIREMENTS[@]}"
}

install() {
  local pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
  log "installing $LOCK (hash-checked; --no-deps: the lock holds every dependency)"
  "${pip[@]}" install --quiet --require-hashes --no-deps -r "$ROOT/$LOCK"
  log "installing the worker from $ROOT (editable)"
  "${pip[@]}" install --quiet --no-deps -e "$ROOT"
  local file
  for file in "${REQUIREMENTS[@]}"; do
    log "installing $file (the worker's pins held fixed)"
    "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" -r "$file" \
      --constraint "$ROOT/$LOCK"
  done
  "${pip[@]}" check >/dev/null || die 7 "pip check found conflicts in $VENV: run $VENV/bin/python -m pip check"
}

main() {
  parse_args "$@"
  LOCK="locks/dev-py${PY_VERSION/./}.txt"
  make_venv
  local stamp="$VENV/.batch-worker-devenv" want
  want=$(wanted_state)
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    log "$VENV is up to date"
  else
    install
    echo "$want" >"$stamp"
  fi
  log "ready: $VENV (Python $PY_VERSION, the nodes' pins of locks/py${PY_VERSION/./}.txt)"
  log "activate it with: . $VENV/bin/activate"
}

main "$@"
