# shellcheck shell=bash disable=SC2034,SC2153
# Sourced by starttask.sh, which shares these variables across the bootstrap files; the
# options repeat the entry point's so that the file reads the same on its own.
set -Eeuo pipefail
# The environment: stamp, lock, build beside the live one, verify, switch atomically.
#
# Layout under $ENV_ROOT:
#   venv -> envs/<name>    the published environment (a symlink, switched by rename)
#   envs/<name>/           one environment per stamp key; complete once .stamp exists
#   .lock                  serialises concurrent runs (flock)
#   cache/uv, tools/       uv's cache and uv itself, kept for the next build
#   packages/<folder>      from an application package: which envs/<name> is its (package.sh)
# A venv is not relocatable, so each one is built at its final path and published by the
# symlink switch; a directory in envs/ without .stamp is a killed run's leftover.

readonly STAMP=.stamp

WORKER_WHEEL=""   # the worker's wheel, from the wheelhouse (else built from the checkout)
WORKER_SHA256=""
KEY=""            # sha256 of what the environment is made of
KEY_TEXT=""
ENV_NAME=""
CURRENT=""        # what tasks run: venv, or from a package its envs/<name>
UV=""             # uv's path when uv installs, else empty (pip)
UV_WHEEL=""       # uv's wheel in the wheelhouse, when it carries one
LOCK_FD=""

# The worker wheel and version: the wheelhouse's batch_worker-*.whl, else the checkout's.
find_worker() {
  local wheels
  shopt -s nullglob
  wheels=("${WHEELHOUSE:-/nonexistent}"/batch_worker-*.whl)
  shopt -u nullglob
  if ((${#wheels[@]} > 1)); then
    die "more than one worker wheel in $WHEELHOUSE: ${wheels[*]##*/}"
  elif ((${#wheels[@]} == 1)); then
    WORKER_WHEEL=${wheels[0]}
    REPLY=${WORKER_WHEEL##*/batch_worker-}
    WORKER_VERSION=${REPLY%%-*}
    sha256_of "$WORKER_WHEEL"
    WORKER_SHA256=$REPLY
    WORKER_VERSION+=" sha256:$REPLY"
  elif [[ -f $APP_DIR/worker/__init__.py && -f $APP_DIR/pyproject.toml ]]; then
    WORKER_VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$APP_DIR/worker/version.py")
    WORKER_VERSION+=" (checkout)"
  else
    die "no worker wheel (batch_worker-*.whl) in ${WHEELHOUSE:-the wheelhouse} and no checkout at $APP_DIR"
  fi
}

compute_key() {
  find_worker
  sha256_of "$LOCK_FILE"
  KEY_TEXT="lock=$REPLY python=$PYTHON_ID worker=$WORKER_VERSION"
  REPLY=$(printf '%s' "$KEY_TEXT" | sha256sum)
  KEY=${REPLY%% *}
  ENV_NAME="py$PY_VERSION-${KEY:0:12}"
  CURRENT=$ENV_ROOT/venv
  [[ -z $PACKAGE_ID ]] || CURRENT=$ENV_ROOT/envs/$ENV_NAME
  log "stamp key $ENV_NAME ($KEY_TEXT)"
}

# True when envs/<name> is complete (its stamp holds our key).
is_complete() {
  local first=""
  [[ -f $1/$STAMP && -x $1/bin/python ]] || return 1
  IFS= read -r first <"$1/$STAMP" || true
  [[ $first == "$KEY" ]]
}

# Up to date: from a checkout, venv is our environment; from a package, envs/<name> is complete
# (venv may be another package's: task.sh follows the package's pointer, never venv).
is_current() {
  if [[ -n $PACKAGE_ID ]]; then
    is_complete "$ENV_ROOT/envs/$ENV_NAME"
  else
    is_complete "$ENV_ROOT/venv"
  fi
}

# True when there is no package, or its pointer already names our environment.
is_recorded() {
  [[ -n $PACKAGE_ID ]] || return 0
  pointer_path "$ENV_ROOT" "$APP_DIR"
  [[ -f $REPLY ]] || return 1
  read_pointer "$REPLY"
  [[ $POINTER_ID == "$PACKAGE_ID" && $POINTER_ENV == "envs/$ENV_NAME" && $POINTER_DIR == "$APP_DIR" ]]
}

# Point the package's pointer at its (complete) environment; runs under the lock, so prune
# never sees an environment in use without its pointer.
record_package() {
  is_recorded && return 0
  pointer_path "$ENV_ROOT" "$APP_DIR"
  local pointer=$REPLY
  run mkdir -p -- "$ENV_ROOT/packages"
  run write_file "$pointer" "$PACKAGE_ID
envs/$ENV_NAME
$APP_DIR"
}

# Hash every wheel against the locks before anything changes; uv, when it will install and is
# not unpacked yet, is unpacked meanwhile and published only if the whole wheelhouse passes.
verify_wheelhouse() {
  if [[ ! -x $PYTHON ]]; then
    printf 'DRY-RUN: (verify %s against %s and %s)\n' "$WHEELHOUSE" "$LOCK_FILE" "$TOOLS_FILE"
    return 0
  fi
  local problem extract=()
  if uv_in_wheelhouse && [[ ! -x $UV ]] && ((!DRY_RUN)); then
    extract=(--extract-uv "$UV")
  fi
  problem=$("$PYTHON" -I "$BOOTSTRAP_DIR/wheelhouse.py" verify --lock "$LOCK_FILE" \
    --lock "$TOOLS_FILE" "${extract[@]}" "$WHEELHOUSE" 2>&1) ||
    die "wheelhouse refused, nothing changed: ${problem#wheelhouse: }"
}

# True when uv will install from the wheelhouse's uv wheel; sets UV to where it is unpacked.
uv_in_wheelhouse() {
  local wheels
  shopt -s nullglob
  wheels=("${WHEELHOUSE:-/nonexistent}"/uv-*.whl)
  shopt -u nullglob
  [[ $INSTALLER != pip && ${#wheels[@]} -ge 1 ]] || return 1
  UV_WHEEL=${wheels[0]}
  local version=${UV_WHEEL##*/uv-}
  UV=$ENV_ROOT/tools/uv-${version%%-*}/uv
}

acquire_lock() {
  if ((DRY_RUN)); then
    run flock -w "$WAIT_TIMEOUT" "$ENV_ROOT/.lock"
    return 0
  fi
  mkdir -p -- "$ENV_ROOT/envs"
  [[ -e $ENV_ROOT/.lock ]] || : >"$ENV_ROOT/.lock"
  # Read-only is enough for flock, and lets a non-admin task wait on the admin's lock.
  exec {LOCK_FD}<"$ENV_ROOT/.lock"
  flock -n "$LOCK_FD" && return 0
  log "another run holds $ENV_ROOT/.lock; waiting up to ${WAIT_TIMEOUT}s"
  flock -w "$WAIT_TIMEOUT" "$LOCK_FD" ||
    die "another run held $ENV_ROOT/.lock for more than ${WAIT_TIMEOUT}s (WORKER_WAIT_TIMEOUT)"
}

# Leftovers of killed runs: environments without a stamp. Runs under the lock.
remove_partials() {
  local dir
  for dir in "$ENV_ROOT"/envs/*/; do
    dir=${dir%/}
    [[ -d $dir && ! -f $dir/$STAMP ]] || continue
    log "removing the unfinished $dir of an earlier run"
    run rm -rf -- "$dir"
  done
}

# uv from the wheelhouse (its wheel is pinned in tools.txt), else on PATH, else pip.
choose_installer() {
  if uv_in_wheelhouse; then
    [[ -x $UV ]] || run "$PYTHON" -I "$BOOTSTRAP_DIR/wheelhouse.py" extract-uv "$UV_WHEEL" "$UV"
  elif [[ $INSTALLER != pip ]] && UV=$(type -P uv); then
    :
  elif [[ $INSTALLER == uv ]]; then
    die "WORKER_INSTALLER=uv but no uv wheel in the wheelhouse and no uv on PATH"
  else
    UV=""
  fi
  log "installer: ${UV:-pip}"
}

uv_cmd() {
  run env UV_CACHE_DIR="$ENV_ROOT/cache/uv" UV_PYTHON_DOWNLOADS=never "$UV" "$@"
}

create_venv() {
  local env_dir=$1
  ((DRY_RUN)) || PARTIAL_ENV=$env_dir
  if [[ -n $UV ]]; then
    uv_cmd venv --quiet --python "$PYTHON" "$env_dir"
  else
    run "$PYTHON" -m venv "$env_dir"
  fi
}

# The locked dependencies and the worker's wheel (pinned by its hash), in one step: hashes
# required, no dependency resolution, wheels only.
install_locked() {
  local python=$1/bin/python source=() pin=$ENV_ROOT/build/worker.txt
  run mkdir -p -- "$ENV_ROOT/build"
  run write_file "$pin" "batch-worker @ file://$WORKER_WHEEL --hash=sha256:$WORKER_SHA256"
  [[ -n $WHEELHOUSE ]] && source=(--no-index --find-links "$WHEELHOUSE")
  local flags=(--require-hashes --no-deps "${source[@]}" -r "$LOCK_FILE" -r "$pin")
  if [[ -n $UV ]]; then
    retry_unless_local uv_cmd pip install --python "$python" --no-build "${flags[@]}"
  else
    retry_unless_local run "$python" -m pip install --no-input --no-compile --only-binary=:all: "${flags[@]}"
  fi
}

# Bytecode for everything a task may import (not the packages' test suites): bytecode.py.
compile_bytecode() {
  run "$1/bin/python" -I "$BOOTSTRAP_DIR/bytecode.py" "$1/lib/python$PY_VERSION/site-packages"
}

# From the index, network hiccups are retried; from the wheelhouse nothing is transient.
retry_unless_local() {
  if [[ -n $WHEELHOUSE ]]; then "$@"; else retry "$@"; fi
}

# Off Batch, from a checkout without a wheelhouse: build the worker's wheel from the source.
build_worker_wheel() {
  local out=$ENV_ROOT/build/dist
  run rm -rf -- "$out"
  if [[ -n $UV ]]; then
    uv_cmd build --quiet --wheel --python "$PYTHON" --out-dir "$out" "$APP_DIR"
  else
    run "$1/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$out" "$APP_DIR"
  fi
  WORKER_WHEEL=$out/batch_worker-${WORKER_VERSION%% *}-py3-none-any.whl
  WORKER_SHA256="(built)"
  [[ -f $WORKER_WHEEL ]] || return 0
  sha256_of "$WORKER_WHEEL"
  WORKER_SHA256=$REPLY
}

verify_env() {
  run "$1/bin/python" -m worker doctor --offline
}

# Stamp the environment complete, then switch venv -> it with one rename.
publish() {
  local env_dir=$1 link=$ENV_ROOT/venv
  run write_file "$env_dir/$STAMP" "$KEY
$KEY_TEXT
installer=${UV:-pip} python=$PYTHON"
  PARTIAL_ENV=""
  PREVIOUS=$(readlink -- "$link" 2>/dev/null || true)
  run ln -sfn "envs/$ENV_NAME" "$link.new"
  run mv -fT -- "$link.new" "$link"
  record_package
}

# Keep the published environment, the one before it (tasks may still run from it) and every
# one a live package pointer names; drop dead pointers (their package folder is gone).
prune() {
  local dir previous=${PREVIOUS:-}
  local keep=" $ENV_NAME ${previous#envs/} "
  live_package_envs
  keep+="$REPLY"
  for dir in "$ENV_ROOT"/envs/*/; do
    dir=${dir%/}
    [[ -d $dir && $keep != *" ${dir##*/} "* ]] || continue
    run rm -rf -- "$dir"
  done
}

# The environments live pointers name, as " name1 name2 " (into REPLY); dead pointers go.
live_package_envs() {
  local pointer names=" "
  for pointer in "$ENV_ROOT"/packages/*; do
    [[ -f $pointer ]] || continue
    read_pointer "$pointer"
    if pointer_is_live "$POINTER_ID" "$POINTER_DIR"; then
      names+="${POINTER_ENV#envs/} "
    else
      log "dropping the pointer of ${POINTER_DIR:-a package}: that package is gone from it"
      run rm -f -- "$pointer"
    fi
  done
  REPLY=$names
}

build_env() {
  local env_dir=$ENV_ROOT/envs/$ENV_NAME
  step prepare "$EXIT_INSTALL" remove_partials
  if is_complete "$env_dir"; then
    log "$env_dir is already complete; publishing it"
  else
    step installer "$EXIT_INSTALL" choose_installer
    step venv "$EXIT_INSTALL" create_venv "$env_dir"
    if [[ -z $WORKER_WHEEL ]]; then
      step build "$EXIT_INSTALL" build_worker_wheel "$env_dir"
    fi
    step install "$EXIT_INSTALL" install_locked "$env_dir"
    step bytecode "$EXIT_INSTALL" compile_bytecode "$env_dir"
    step verify "$EXIT_VERIFY" verify_env "$env_dir"
  fi
  step publish "$EXIT_INSTALL" publish "$env_dir"
  step prune "$EXIT_INSTALL" prune
  ((DRY_RUN)) || rm -rf -- "$ENV_ROOT/build"
}
