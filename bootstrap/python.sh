# shellcheck shell=bash disable=SC2034,SC2153
# Sourced by starttask.sh, which shares these variables across the bootstrap files; the
# options repeat the entry point's so that the file reads the same on its own.
set -Eeuo pipefail
# Finding Python X.Y: WORKER_PYTHON, then pythonX.Y on PATH, then pyenv, then apt (apt.sh).
# A Python that cannot make a venv is passed over: Debian and Ubuntu ship ensurepip (which
# `python -m venv` runs) apart, in pythonX.Y-venv, and Ubuntu 24.04's image has python3.12
# without it; apt then installs pythonX.Y-venv, as it installs both on 22.04 for 3.8.

PYTHON=""      # the interpreter's real path (sys.executable), never a shim
PYTHON_ID=""   # its full version line, part of the stamp
TRIED=()       # what was looked at, for the one-line error
NO_VENV=""     # a Python $PY_VERSION found without ensurepip (for the error's fix)

# probe CANDIDATE: accept it if it runs, is Python $PY_VERSION and has ensurepip; sets PYTHON
# and PYTHON_ID (and NO_VENV when only ensurepip is missing).
probe() {
  local out lines
  [[ -x $1 && ! -d $1 ]] || return 1
  out=$("$1" -I -c 'import sys, importlib.util
print("%d.%d" % sys.version_info[:2]); print(sys.executable); print(" ".join(sys.version.split()))
print(importlib.util.find_spec("ensurepip") is not None)' 2>/dev/null) || return 1
  mapfile -t lines <<<"$out"
  ((${#lines[@]} == 4)) && [[ ${lines[0]} == "$PY_VERSION" ]] || return 1
  if [[ ${lines[3]} != True ]]; then
    NO_VENV=${lines[1]}
    return 1
  fi
  PYTHON=${lines[1]} PYTHON_ID="Python ${lines[2]}"
}

from_path() {
  local dir dirs
  TRIED+=("python$PY_VERSION on PATH")
  IFS=: read -r -a dirs <<<"${PATH:-}"
  for dir in "${dirs[@]}"; do
    # pyenv's shims are slow and fail unless the version is active; pyenv is tried next.
    [[ $dir == "$PYENV_DIR/shims" ]] && continue
    probe "$dir/python$PY_VERSION" && return 0
  done
  return 1
}

from_pyenv() {
  local candidates candidate
  TRIED+=("$PYENV_DIR/versions/$PY_VERSION.*")
  shopt -s nullglob
  candidates=("$PYENV_DIR/versions/$PY_VERSION".*/bin/"python$PY_VERSION")
  shopt -u nullglob
  ((${#candidates[@]})) || return 1
  mapfile -t candidates < <(printf '%s\n' "${candidates[@]}" | sort -rV)
  for candidate in "${candidates[@]}"; do
    probe "$candidate" && return 0
  done
  return 1
}

find_python() {
  if [[ -n $PYTHON_EXPLICIT ]]; then
    probe "$PYTHON_EXPLICIT" && return 0
    [[ -z $NO_VENV ]] ||
      die "WORKER_PYTHON=$PYTHON_EXPLICIT cannot make a venv (it has no ensurepip); install python$PY_VERSION-venv, or unset WORKER_PYTHON"
    die "WORKER_PYTHON=$PYTHON_EXPLICIT is not a working Python $PY_VERSION; fix or unset it"
  fi
  from_path || from_pyenv || from_apt || no_python
  log "using $PYTHON ($PYTHON_ID)"
}

no_python() {
  local tried
  printf -v tried '%s, ' "${TRIED[@]}"
  if [[ -n $NO_VENV ]]; then
    die "no Python $PY_VERSION that can make a venv found (tried ${tried%, }; $NO_VENV has no ensurepip); install python$PY_VERSION-venv or set WORKER_PYTHON=/path/to/python$PY_VERSION"
  fi
  die "no Python $PY_VERSION found (tried ${tried%, }); install python$PY_VERSION or set WORKER_PYTHON=/path/to/python$PY_VERSION"
}
