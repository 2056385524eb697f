# shellcheck shell=bash disable=SC2034,SC2153
# Sourced by starttask.sh and by task.sh, the package's launcher; the options repeat the entry
# points' so that the file reads the same on its own.
set -Eeuo pipefail
# An application package (built by `python -m worker package`) and the environment built for
# it. The package carries package.env (KEY=VALUE lines: WORKER_PACKAGE_ID, _NAME, _VERSION,
# _PYTHON); its id is the sha256 of what its environment is made of (lock, worker wheel,
# Python X.Y), so two packages with the same id share one environment.
#
# Under $ENV_ROOT, beside env.sh's envs/:
#   packages/<package folder, with % as %25 and / as %2F>   a pointer, three lines:
#       the package id, envs/<name>, the package folder
# The start task writes the pointer once the environment is complete; task.sh follows it with
# nothing but builtins (no fork before the final exec). A pointer is live while its folder
# still holds a package of that id; prune keeps every environment a live pointer names.

PACKAGE_ID=""       # from package.env; empty when running from a checkout
PACKAGE_PYTHON=""
POINTER_ID="" POINTER_ENV="" POINTER_DIR=""

# default_env_root APP_DIR: WORKER_ENV_ROOT, else the node's shared folder, else APP_DIR/.worker
# (into REPLY).
default_env_root() {
  if [[ -n ${WORKER_ENV_ROOT:-} ]]; then
    if [[ $WORKER_ENV_ROOT == /* ]]; then REPLY=$WORKER_ENV_ROOT; else REPLY=$PWD/$WORKER_ENV_ROOT; fi
  elif [[ -n ${AZ_BATCH_NODE_SHARED_DIR:-} ]]; then
    REPLY=$AZ_BATCH_NODE_SHARED_DIR/batch-worker
  else
    REPLY=$1/.worker
  fi
}

# package_value FILE KEY: the value of KEY in a package.env file into REPLY (empty if absent).
package_value() {
  local key value
  REPLY=""
  [[ -f $1 ]] || return 0
  while IFS='=' read -r key value || [[ -n $key ]]; do
    if [[ $key == "$2" ]]; then
      REPLY=$value
      return 0
    fi
  done <"$1"
}

# pointer_path ENV_ROOT APP_DIR: the pointer file of the package in APP_DIR (into REPLY).
pointer_path() {
  local name=${2//%/%25}
  name=${name//\//%2F}
  if ((${#name} > 200)); then   # file names stop at 255 bytes: hash a very deep folder
    name=$(printf '%s' "$2" | sha256sum)
    name=sha256-${name%% *}
  fi
  REPLY=$1/packages/$name
}

# read_pointer FILE: its three lines into POINTER_ID, POINTER_ENV, POINTER_DIR.
read_pointer() {
  POINTER_ID="" POINTER_ENV="" POINTER_DIR=""
  {
    IFS= read -r POINTER_ID
    IFS= read -r POINTER_ENV
    IFS= read -r POINTER_DIR
  } <"$1" || true
}

# find_package_env ENV_ROOT APP_DIR ID: the complete environment the package's pointer names
# (into REPLY); fails when there is none yet.
find_package_env() {
  pointer_path "$1" "$2"
  [[ -f $REPLY ]] || return 1
  read_pointer "$REPLY"
  [[ -n $POINTER_ID && $POINTER_ID == "$3" && $POINTER_ENV == envs/* ]] || return 1
  REPLY=$1/$POINTER_ENV
  [[ -f $REPLY/.stamp && -x $REPLY/bin/python ]]
}

# pointer_is_live ID DIR: DIR still holds the package of that id.
pointer_is_live() {
  [[ -n $2 && -d $2 ]] || return 1
  package_value "$2/package.env" WORKER_PACKAGE_ID
  [[ -n $REPLY && $REPLY == "$1" ]]
}
