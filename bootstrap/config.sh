# shellcheck shell=bash disable=SC2034,SC2153
# Sourced by starttask.sh, which shares these variables across the bootstrap files; the
# options repeat the entry point's so that the file reads the same on its own.
set -Eeuo pipefail
# Configuration: every setting is an environment variable (docs/reference/configuration.md lists them), read once here.

usage() {
  cat <<'EOF'
Usage: starttask.sh [--dry-run] [--help]

Provisions Python and the hashed, pinned worker environment on this node, then publishes
it at $WORKER_ENV_ROOT/venv. Safe to rerun (a stamp makes reruns exit at once) and to run
twice at once (the second waits on a lock). --dry-run prints every command that would change
the machine and changes nothing (same as WORKER_DRY_RUN=1).

Environment: WORKER_PYTHON_VERSION (the package's Python; from a checkout 3.8, or 3.12 for
Ubuntu 24.04 nodes), WORKER_PYTHON, WORKER_ENV_ROOT, WORKER_LOCK_FILE,
WORKER_WHEELHOUSE, WORKER_INSTALLER (auto|uv|pip), WORKER_APT_PACKAGES, WORKER_APT_SOURCES,
WORKER_WAIT_TIMEOUT, WORKER_APT_LOCK_TIMEOUT, WORKER_DRY_RUN. See docs/starttask.md.
EOF
}

parse_args() {
  while (($#)); do
    case $1 in
      --dry-run) DRY_RUN=1 ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; fail "$EXIT_CONFIG" "unknown argument: $1" ;;
    esac
    shift
  done
}

# An absolute form of a path given relative to the working directory.
absolute() {
  if [[ $1 == /* ]]; then REPLY=$1; else REPLY=$PWD/$1; fi
}

is_whole_number() {
  [[ $1 =~ ^[0-9]+$ ]]
}

load_config() {
  load_package
  PY_VERSION=${WORKER_PYTHON_VERSION:-${PACKAGE_PYTHON:-3.8}}
  [[ $PY_VERSION =~ ^3\.[0-9]+$ ]] || die "WORKER_PYTHON_VERSION must look like 3.8, got '$PY_VERSION'"
  if [[ -n $PACKAGE_PYTHON && $PY_VERSION != "$PACKAGE_PYTHON" ]]; then
    die "this package is built for Python $PACKAGE_PYTHON, not WORKER_PYTHON_VERSION=$PY_VERSION; unset it or build the package with --python $PY_VERSION"
  fi
  local tag="py${PY_VERSION/./}"

  PYTHON_EXPLICIT=${WORKER_PYTHON:-}
  default_env_root "$APP_DIR"
  ENV_ROOT=$REPLY

  absolute "${WORKER_LOCK_FILE:-$APP_DIR/locks/$tag.txt}"
  LOCK_FILE=$REPLY
  if [[ ! -f $LOCK_FILE && -z ${WORKER_LOCK_FILE:-} ]]; then
    locked_pythons
    die "no lock for Python $PY_VERSION ($LOCK_FILE): the worker is locked for $REPLY; set WORKER_PYTHON_VERSION to one of them (or WORKER_LOCK_FILE)"
  fi
  [[ -f $LOCK_FILE ]] || die "lock file not found: $LOCK_FILE (set WORKER_LOCK_FILE)"
  check_lock_python "$tag"
  TOOLS_FILE=$BOOTSTRAP_DIR/tools.txt

  load_wheelhouse
  INSTALLER=${WORKER_INSTALLER:-auto}
  [[ $INSTALLER =~ ^(auto|uv|pip)$ ]] || die "WORKER_INSTALLER must be auto, uv or pip, got '$INSTALLER'"
  read -r -a APT_PACKAGES <<<"${WORKER_APT_PACKAGES:-}"
  load_apt_sources
  WAIT_TIMEOUT=${WORKER_WAIT_TIMEOUT:-1800}
  APT_LOCK_TIMEOUT=${WORKER_APT_LOCK_TIMEOUT:-600}
  is_whole_number "$WAIT_TIMEOUT" || die "WORKER_WAIT_TIMEOUT must be whole seconds, got '$WAIT_TIMEOUT'"
  is_whole_number "$APT_LOCK_TIMEOUT" || die "WORKER_APT_LOCK_TIMEOUT must be whole seconds, got '$APT_LOCK_TIMEOUT'"
  if [[ ${WORKER_DRY_RUN:-0} =~ ^(1|true|yes)$ ]]; then DRY_RUN=1; fi
  OS_RELEASE=${WORKER_OS_RELEASE:-/etc/os-release}
  PYENV_DIR=${PYENV_ROOT:-${HOME:-/root}/.pyenv}
}

# A lock names its Python in its first line (bootstrap/lock.sh writes it): the 3.12 lock on
# a 3.8 node would otherwise fail later as a puzzling hash mismatch or a missing wheel.
check_lock_python() {
  local first="" want=$1
  IFS= read -r first <"$LOCK_FILE" || true
  [[ $first =~ ^#\ batch-worker\ lock\ for\ Python\ ([0-9]+\.[0-9]+) ]] || return 0
  [[ ${BASH_REMATCH[1]} == "$PY_VERSION" ]] ||
    die "$LOCK_FILE is the lock for Python ${BASH_REMATCH[1]}, but this node provisions Python $PY_VERSION: set WORKER_LOCK_FILE to locks/$want.txt, or WORKER_PYTHON_VERSION=${BASH_REMATCH[1]}"
}

# The Pythons of locks/pyXY.txt beside the script, as "3.8, 3.12" (into REPLY).
locked_pythons() {
  local lock tag found=()
  for lock in "$APP_DIR"/locks/py*.txt; do
    tag=${lock##*/py}
    tag=${tag%.txt}
    [[ $tag =~ ^3[0-9]+$ ]] && found+=("3.${tag:1}")
  done
  REPLY=$(printf '%s\n' "${found[@]}" | sort -V | paste -sd,)
  REPLY=${REPLY//,/, }
}

# An application package's facts (package.sh); all empty when running from a checkout.
load_package() {
  package_value "$APP_DIR/package.env" WORKER_PACKAGE_ID
  PACKAGE_ID=$REPLY
  package_value "$APP_DIR/package.env" WORKER_PACKAGE_PYTHON
  PACKAGE_PYTHON=$REPLY
  [[ -z $PACKAGE_ID || $PACKAGE_ID =~ ^[0-9a-f]{64}$ ]] ||
    die "bad WORKER_PACKAGE_ID in $APP_DIR/package.env: rebuild the package"
}

# WORKER_WHEELHOUSE: unset = wheels/ beside the script if it exists; empty = use the index.
load_wheelhouse() {
  if [[ -z ${WORKER_WHEELHOUSE+set} ]]; then
    WHEELHOUSE=""
    [[ -d $APP_DIR/wheels ]] && WHEELHOUSE=$APP_DIR/wheels
  elif [[ -z $WORKER_WHEELHOUSE ]]; then
    WHEELHOUSE=""
  else
    absolute "$WORKER_WHEELHOUSE"
    WHEELHOUSE=$REPLY
    [[ -d $WHEELHOUSE ]] || die "wheelhouse not found: $WHEELHOUSE (set WORKER_WHEELHOUSE)"
  fi
  return 0
}

# WORKER_APT_SOURCES: unset = apt-sources.json beside the script if it exists; empty = none.
load_apt_sources() {
  if [[ -z ${WORKER_APT_SOURCES+set} ]]; then
    APT_SOURCES=""
    [[ -f $APP_DIR/apt-sources.json ]] && APT_SOURCES=$APP_DIR/apt-sources.json
  elif [[ -z $WORKER_APT_SOURCES ]]; then
    APT_SOURCES=""
  else
    absolute "$WORKER_APT_SOURCES"
    APT_SOURCES=$REPLY
    [[ -f $APT_SOURCES ]] || die "apt sources declaration not found: $APT_SOURCES (set WORKER_APT_SOURCES)"
  fi
  return 0
}

describe_config() {
  log "python $PY_VERSION; env root $ENV_ROOT; lock $LOCK_FILE"
  if [[ -n $PACKAGE_ID ]]; then log "package $APP_DIR (id ${PACKAGE_ID:0:12})"; fi
  log "wheelhouse ${WHEELHOUSE:-none (package index)}; installer $INSTALLER; dry run $DRY_RUN"
  if [[ -n $APT_SOURCES ]]; then
    log "apt repositories declared in $APT_SOURCES"
  fi
}
