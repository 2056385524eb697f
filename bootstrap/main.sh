# shellcheck shell=bash disable=SC2034,SC2153
# Sourced by starttask.sh, which shares these variables across the bootstrap files; the
# options repeat the entry point's so that the file reads the same on its own.
set -Eeuo pipefail
# The start task's flow; starttask.sh sources the bootstrap files and calls main.

main() {
  local start=$EPOCHREALTIME
  umask 022   # the admin start task builds what non-admin tasks read
  install_traps
  parse_args "$@"
  step config "$EXIT_CONFIG" load_config
  describe_config
  step python "$EXIT_PYTHON" find_python
  if ((${#APT_PACKAGES[@]})); then
    step apt-packages "$EXIT_APT" install_apt_packages
  fi
  if [[ -n $APT_SOURCES ]]; then
    apt_repositories
  fi
  step stamp "$EXIT_CONFIG" compute_key
  if ! is_current; then
    provision
  else
    log "up to date: $ENV_ROOT/venv is $ENV_NAME"
  fi
  elapsed_since "$start"
  log "starttask finished in ${REPLY}s: $ENV_ROOT/venv/bin/python"
}

provision() {
  if [[ -n $WHEELHOUSE ]]; then
    step wheelhouse "$EXIT_WHEELHOUSE" verify_wheelhouse
  fi
  step lock "$EXIT_BUSY" acquire_lock
  if is_current; then
    log "another run provisioned $ENV_NAME meanwhile"
    return 0
  fi
  build_env
}
