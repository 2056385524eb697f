#!/usr/bin/env bash
# The application package's task launcher: runs `python -m worker ARGS...` in the environment
# the start task built for this package, with the package's app/ folder on PYTHONPATH:
#
#   bash "$AZ_BATCH_APP_PACKAGE_<app>_<version>/task.sh" run handlers.sales:daily --param date=...
#
# Every argument goes to `python -m worker` unchanged. The environment is found through this
# package's pointer under the environment root (bootstrap/package.sh) with builtins only, so
# the fast path forks nothing before the exec. Where no start task ran (a task-level package)
# the first task runs the package's starttask.sh, which provisions under its lock while other
# tasks wait, then continues. Exit codes: those of `python -m worker`, 2 when this folder is
# not a built package, 20 when the environment could not be provisioned (the start task's
# FAILED line, above on stderr, says why).
set -Eeuo pipefail

readonly EXIT_NOT_A_PACKAGE=2 EXIT_PROVISION=20

fail() {
  printf 'task.sh: %s\n' "$2" >&2
  exit "$1"
}

# The package folder, as starttask.sh names it (physical path), into APP_DIR without forking.
package_dir() {
  local script=${BASH_SOURCE[0]} here=$PWD
  [[ $script == */* ]] || script=./$script
  CDPATH="" cd -P -- "${script%/*}"
  APP_DIR=$PWD
  cd -- "$here"
}

# Run the package's start task (its log goes to stderr: stdout is the handler's).
provision() {
  local rc=0
  bash "$APP_DIR/starttask.sh" >&2 || rc=$?
  ((rc == 0)) || fail "$EXIT_PROVISION" "the start task could not provision this package's environment (exit $rc; its FAILED line above says why)"
}

main() {
  package_dir
  # shellcheck source=bootstrap/package.sh
  source "$APP_DIR/bootstrap/package.sh"
  package_value "$APP_DIR/package.env" WORKER_PACKAGE_ID
  local id=$REPLY root
  [[ -n $id ]] || fail "$EXIT_NOT_A_PACKAGE" "$APP_DIR is not a built package (no package.env); build one with: python -m worker package PROJECT_DIR --out app.zip"
  default_env_root "$APP_DIR"
  root=$REPLY
  if ! find_package_env "$root" "$APP_DIR" "$id"; then
    provision
    find_package_env "$root" "$APP_DIR" "$id" ||
      fail "$EXIT_PROVISION" "the start task succeeded but left no environment for $APP_DIR under $root"
  fi
  export PYTHONPATH=$APP_DIR/app${PYTHONPATH:+:$PYTHONPATH}
  exec "$REPLY/bin/python" -m worker "$@"
}

main "$@"
