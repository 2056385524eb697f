#!/usr/bin/env bash
# Regenerates the hashed, wheels-only lock files in locks/ from pyproject.toml.
# Usage: bash bootstrap/lock.sh        (needs uv: pip install uv)
set -Eeuo pipefail

readonly PLATFORM="x86_64-manylinux_2_28"
readonly -a PYTHONS=("3.8" "3.12")
# The Azure CLI for the local Batch service's tests (tests/test_batch_az.py), in a venv of its
# own (tests/run.sh: .ci-venvs/azure-cli): it pins its own azure-batch and azure-mgmt-batch.
readonly AZURE_CLI="azure-cli==2.91.0"

compile() {
  local py="$1" out="$2"; shift 2
  uv pip compile pyproject.toml "$@" \
    --python-version "$py" --python-platform "$PLATFORM" \
    --only-binary :all: --generate-hashes --no-header --quiet \
    -o "$out"
  # The start task refuses a lock made for another Python by this first line.
  sed -i "1i # batch-worker lock for Python $py, $PLATFORM (bash bootstrap/lock.sh)" "$out"
}

main() {
  cd "$(dirname "$0")/.."
  command -v uv >/dev/null || { echo "lock.sh: uv not found; install it with: pip install uv" >&2; exit 2; }
  local py tag
  for py in "${PYTHONS[@]}"; do
    tag="py${py/./}"
    compile "$py" "locks/${tag}.txt"
    # The dev lock holds the node lock's pins fixed: tests and handler authors' environments
    # (bootstrap/devenv.sh) run exactly what the nodes run.
    compile "$py" "locks/dev-${tag}.txt" --extra dev --constraint "locks/${tag}.txt"
  done
  compile_azure_cli
}

compile_azure_cli() {
  echo "$AZURE_CLI" | uv pip compile - --python-version 3.12 --python-platform "$PLATFORM" \
    --only-binary :all: --generate-hashes --no-header --quiet -o locks/azure-cli.txt
  sed -i "1i # $AZURE_CLI for the local Batch service's tests, Python 3.12 (bash bootstrap/lock.sh)" \
    locks/azure-cli.txt
}

main "$@"
