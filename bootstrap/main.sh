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
  if is_current && is_recorded; then
    if [[ -n $PACKAGE_ID ]]; then
      log "up to date: this package's environment is $CURRENT"
    else
      log "up to date: $CURRENT is $ENV_NAME"
    fi
  else
    provision
  fi
  step tokens "$EXIT_INTERNAL" prepare_tokens
  elapsed_since "$start"
  log "starttask finished in ${REPLY}s: $CURRENT/bin/python"
}

# Build the environment under the lock; or, when it is complete and only this package's
# pointer is missing, record that under the lock (prune never drops an environment in use).
provision() {
  local was_current=0
  is_current && was_current=1
  if [[ -n $WHEELHOUSE ]] && ((!was_current)); then
    step wheelhouse "$EXIT_WHEELHOUSE" verify_wheelhouse
  fi
  step lock "$EXIT_BUSY" acquire_lock
  if is_current; then
    ((was_current)) || log "another run provisioned $ENV_NAME meanwhile"
    record_package
    return 0
  fi
  build_env
}
