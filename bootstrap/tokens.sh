# shellcheck shell=bash disable=SC2034,SC2153
# Sourced by starttask.sh, which shares these variables across the bootstrap files; the
# options repeat the entry point's so that the file reads the same on its own.
set -Eeuo pipefail
# The node's token folder, $AZ_BATCH_NODE_SHARED_DIR/batch-worker/tokens: the task processes
# of the node share their managed-identity tokens there (worker/tokencache.py). Mode 1733:
# every task user may make its own private folder in it (0700, made by its first task), and
# nobody may list the folder or remove another user's. Made on every start (a no-op when it
# is already so); a node without it works, each task then asking for its own tokens.

readonly TOKENS_MODE=1733

prepare_tokens() {
  if [[ -z ${AZ_BATCH_NODE_SHARED_DIR:-} ]]; then
    log "token folder: none (not on Batch: no AZ_BATCH_NODE_SHARED_DIR)"
    return 0
  fi
  local parent=$AZ_BATCH_NODE_SHARED_DIR/batch-worker
  local folder=$parent/tokens mode=""
  # A symlink there (a task may write in the shared folder) would point chmod elsewhere.
  if [[ -L $parent ]]; then
    log "warning: $parent is a symlink: no token folder, each task gets its own tokens"
    return 0
  fi
  if [[ -L $folder || (-e $folder && ! -d $folder) ]]; then
    run rm -f -- "$folder"
  fi
  if [[ -d $folder ]]; then
    mode=$(stat -c %a -- "$folder")
  fi
  if [[ $mode == "$TOKENS_MODE" ]]; then
    log "token folder: $folder is ready"
    return 0
  fi
  if ! run mkdir -p -- "$folder" || ! run chmod "$TOKENS_MODE" -- "$folder"; then
    log "warning: could not prepare $folder: each task gets its own tokens"
    return 0
  fi
  log "token folder: $folder (mode $TOKENS_MODE)"
}
