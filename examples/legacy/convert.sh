#!/usr/bin/env bash
# Legacy programs: convert MP4 clips in a lake to AVI with ffmpeg, once with
# `python -m worker exec` and once with the Python API (videos.py), against a local lake.
# Needs ffmpeg and a worker environment: PYTHON, else the active venv's python (e.g. the
# development environment of bootstrap/devenv.sh), else the one starttask.sh provisions
# (.worker/venv, made by examples/quickstart.sh).
set -Eeuo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
readonly ROOT
if [[ -z ${PYTHON:-} && -n ${VIRTUAL_ENV:-} ]]; then PYTHON=$VIRTUAL_ENV/bin/python; fi
PYTHON=${PYTHON:-$ROOT/.worker/venv/bin/python}
[[ -x $PYTHON ]] || { echo "convert.sh: no worker environment at $PYTHON: run examples/quickstart.sh or bash bootstrap/devenv.sh first, or set PYTHON" >&2; exit 2; }

make_clips() {  # $1 = lake folder for the clips
  local name
  mkdir -p "$1"
  for name in "clip one" "été" "plain"; do
    ffmpeg -nostdin -loglevel error -f lavfi -i testsrc=duration=1:size=160x120:rate=10 \
      -pix_fmt yuv420p "$1/$name.mp4"
  done
}

main() {
  local lake work
  lake=$(mktemp -d)
  work=$(mktemp -d)  # the task's working directory: result.json and scratch go there
  make_clips "$lake/videos/in"
  cd "$work"
  export WORKER_LAKE_URL="file://$lake"
  "$PYTHON" -m worker exec --input 'videos/in/*.mp4' --output videos/avi/ --parallel 2 \
    --result "$work/exec-result.json" \
    -- ffmpeg -nostdin -hide_banner -loglevel warning -y -i '{input}' '{output_dir}/{stem}.avi'
  "$PYTHON" -m worker run "$ROOT/examples/legacy/videos.py:to_avi" \
    --param pattern='videos/in/*.mp4' --param output=videos/avi-py
  echo "--- the lake"
  (cd "$lake" && find videos -type f | sort)
  echo "--- exec-result.json"
  cat "$work/exec-result.json"
}

main "$@"
