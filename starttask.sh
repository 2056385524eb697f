#!/usr/bin/env bash
# Azure Batch start task: provisions Python and the hashed, pinned worker environment on the
# node and publishes it at $WORKER_ENV_ROOT/venv (from an application package, it also points
# the package's pointer at it, which task.sh follows). The logic lives in bootstrap/; README.md
# documents the environment variables and exit codes. Usage: starttask.sh [--dry-run]
set -Eeuo pipefail

APP_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
BOOTSTRAP_DIR=$APP_DIR/bootstrap
readonly APP_DIR BOOTSTRAP_DIR

# shellcheck source=bootstrap/common.sh
source "$BOOTSTRAP_DIR/common.sh"
# shellcheck source=bootstrap/package.sh
source "$BOOTSTRAP_DIR/package.sh"
# shellcheck source=bootstrap/config.sh
source "$BOOTSTRAP_DIR/config.sh"
# shellcheck source=bootstrap/python.sh
source "$BOOTSTRAP_DIR/python.sh"
# shellcheck source=bootstrap/apt.sh
source "$BOOTSTRAP_DIR/apt.sh"
# shellcheck source=bootstrap/aptrepo.sh
source "$BOOTSTRAP_DIR/aptrepo.sh"
# shellcheck source=bootstrap/env.sh
source "$BOOTSTRAP_DIR/env.sh"
# shellcheck source=bootstrap/tokens.sh
source "$BOOTSTRAP_DIR/tokens.sh"
# shellcheck source=bootstrap/main.sh
source "$BOOTSTRAP_DIR/main.sh"

main "$@"
