# shellcheck shell=bash disable=SC2034,SC2153
# Sourced by starttask.sh, which shares these variables across the bootstrap files; the
# options repeat the entry point's so that the file reads the same on its own.
set -Eeuo pipefail
# Logging, steps and their exit codes, the one failure exit, the dry-run runner, retries.

# Exit codes, one per step (docs/reference/exit-codes.md shows the same table).
readonly EXIT_INTERNAL=1 EXIT_CONFIG=2 EXIT_PYTHON=3 EXIT_APT=4 EXIT_BUSY=5
readonly EXIT_WHEELHOUSE=6 EXIT_INSTALL=7 EXIT_VERIFY=8
readonly EXIT_APT_KEY=9 EXIT_APT_REPO=10 EXIT_APT_PACKAGE=11   # apt-sources.json (aptrepo.sh)

readonly RETRY_ATTEMPTS=4 RETRY_FIRST_DELAY=5
# Failures worth retrying: lock contention and network trouble, as apt, curl, pip and uv word them.
readonly TRANSIENT_RE='Could not get lock|Temporary failure|Could not resolve|Failed to fetch|Connection (timed out|refused|reset)|Network is unreachable|Read timed out|timed out|(502|503|504) |curl: \((6|7|28|35|52|56)\)'

STEP="start"                # the step running now, named by the failure line
STEP_EXIT=$EXIT_INTERNAL    # the exit code of the step running now
LAST_CMD=""                 # the changing command running now, for the failure line
DRY_RUN=0
PARTIAL_ENV=""              # an environment under construction, removed if this run fails
CLEANUPS=()                 # functions fail() calls first, to undo a half-made change

# UTC time with milliseconds into REPLY, without forking date.
utc_now() {
  local now=$EPOCHREALTIME
  local secs=${now%[.,]*} frac=${now#*[.,]}
  TZ=UTC printf -v REPLY '%(%Y-%m-%dT%H:%M:%S)T.%sZ' "$secs" "${frac:0:3}"
}

log() {
  utc_now
  printf '%s %s\n' "$REPLY" "$*"
}

# Seconds since an $EPOCHREALTIME value, as 1.234, into REPLY.
elapsed_since() {
  local start=${1/[.,]/} now=${EPOCHREALTIME/[.,]/}
  local ms=$(((10#$now - 10#$start) / 1000))
  printf -v REPLY '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# step NAME EXIT_CODE COMMAND...: run COMMAND as a named, timed step.
step() {
  local name=$1 code=$2 outer_step=$STEP outer_exit=$STEP_EXIT start=$EPOCHREALTIME
  shift 2
  STEP=$name STEP_EXIT=$code
  log "step $name: start"
  "$@"
  elapsed_since "$start"
  log "step $name: done in ${REPLY}s"
  STEP=$outer_step STEP_EXIT=$outer_exit
}

# The one way out on failure: clean up, then one line on stderr naming the step and reason.
fail() {
  local code=$1 reason=$2 cleanup
  trap - ERR
  if [[ -n $PARTIAL_ENV && -d $PARTIAL_ENV ]]; then
    rm -rf -- "$PARTIAL_ENV"
  fi
  for cleanup in "${CLEANUPS[@]}"; do
    "$cleanup" || true
  done
  utc_now
  printf '%s FAILED step=%s exit=%s: %s\n' "$REPLY" "$STEP" "$code" "$reason" >&2
  exit "$code"
}

die() {
  fail "$STEP_EXIT" "$*"
}

on_err() {
  local rc=$1 command=$2 line=$3
  [[ -n $LAST_CMD ]] && command=$LAST_CMD
  fail "$STEP_EXIT" "command exited with $rc (line $line): $command"
}

on_signal() {
  fail "$2" "interrupted by $1"
}

install_traps() {
  trap 'on_err $? "$BASH_COMMAND" "$LINENO"' ERR
  trap 'on_signal SIGTERM 143' TERM
  trap 'on_signal SIGINT 130' INT
}

# run COMMAND...: a command that changes the machine; in dry-run mode only printed. Returns
# the command's status even where errexit is off (`run ... || rc=$?`, and in retry); on
# failure LAST_CMD keeps the command for the failure line.
run() {
  local rc=0
  printf -v LAST_CMD '%q ' "$@"
  LAST_CMD=${LAST_CMD% }
  if ((DRY_RUN)); then
    printf 'DRY-RUN: %s\n' "$LAST_CMD"
    LAST_CMD=""
    return 0
  fi
  log "+ $LAST_CMD"
  "$@" || rc=$?
  if ((rc == 0)); then
    LAST_CMD=""
  fi
  return "$rc"
}

# retry COMMAND...: run it (COMMAND is usually `run ...`); on a transient failure (see
# TRANSIENT_RE) wait and try again, with backoff.
retry() {
  local attempt=1 delay=$RETRY_FIRST_DELAY rc errors
  if ((DRY_RUN)); then
    "$@"
    return 0
  fi
  errors=$(mktemp)
  while :; do
    rc=0
    "$@" 2>"$errors" || rc=$?
    cat "$errors" >&2
    if ((rc == 0)); then
      break
    fi
    if ((attempt >= RETRY_ATTEMPTS)) || ! grep -Eq "$TRANSIENT_RE" "$errors"; then
      break
    fi
    log "transient failure (exit $rc), attempt $attempt of $RETRY_ATTEMPTS; retrying in ${delay}s"
    sleep "$delay"
    attempt=$((attempt + 1)) delay=$((delay * 2))
  done
  rm -f -- "$errors"
  return "$rc"
}

# write_file PATH TEXT: replace PATH atomically (a killed run never leaves half a file).
write_file() {
  local tmp="$1.tmp.$$"
  printf '%s\n' "$2" >"$tmp"
  mv -f -- "$tmp" "$1"
}

sha256_of() {
  local sum
  sum=$(sha256sum -- "$1")
  REPLY=${sum%% *}
}
