#!/usr/bin/env bash
# Quickstart: provision the worker environment with the start task (off Batch it goes to
# ./.worker/), then run the example handler end to end against a local lake.
set -Eeuo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
readonly ROOT

main() {
  bash "$ROOT/starttask.sh"
  local lake python="$ROOT/.worker/venv/bin/python"
  lake=$(mktemp -d)
  cp -R "$ROOT/examples/data/lake/." "$lake/"
  cd "$ROOT/examples"
  WORKER_LAKE_URL="file://$lake" WORKER_SECRETS_FILE="$ROOT/examples/secrets.json" \
    "$python" -m worker run handlers.sales:rollup --param date=2024-01-31 \
    --result "$lake/result.json"
  echo "--- curated/daily/2024-01-31.json"
  cat "$lake/curated/daily/2024-01-31.json"
  echo  # the JSON ends without a newline
  echo "--- result.json"
  cat "$lake/result.json"
}

main "$@"
