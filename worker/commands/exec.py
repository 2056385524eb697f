"""``python -m worker exec``: a legacy program over lake files, run as a task.

The command builds the parameters of the built-in handler ``worker.legacy.task:exec_task``
(``worker.legacy`` is the library behind it, and behind ``ctx.run``, ``ctx.stage_in`` and
``ctx.stage_out``) and runs it through the same runner as ``python -m worker run``:
result.json, the atomic commit, signals, the deadline, the grace period, logging and
redaction are the harness's.
``python -m worker run worker.legacy.task:exec_task --params-json '{...}'`` is the same task.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, List

from ..errors import ParameterError, WorkerError

USAGE = ("python -m worker exec --input GLOB [--input GLOB]... --output LAKE_DIR [options] "
         "-- PROGRAM [ARG]...")

EXAMPLES = """placeholders (each stays one argument; no shell):
  {input} the staged input's local path   {name} its file name   {stem} the name
  without its extension   {ext} the extension, with its dot   {input_dir} its local
  folder   {output_dir} a local folder whose files are committed below --output
  {inputs} (--once) every input, one argument each; {{ and }} are literal braces

example:
  python -m worker exec --input 'videos/in/*.mp4' --output videos/avi/ --parallel 2 \\
      -- ffmpeg -nostdin -y -i {input} {output_dir}/{stem}.avi

environment: those of `run` (README "Configuration"): WORKER_LAKE_URL and the identity for
  the lake, WORKER_VAULT_URL (or WORKER_SECRETS_FILE) for --secret-env, WORKER_CORES,
  WORKER_TASK_SLOTS and WORKER_REQUIRED_SLOTS for the default --parallel,
  WORKER_TRANSFER_CONCURRENCY, WORKER_TIMEOUT, WORKER_GRACE, WORKER_SCRATCH_DIR, Batch's
  AZ_BATCH_*; the program gets the task's environment plus its --secret-env variables

exit codes: those of `run`; a program's non-zero exit is 1 (its own code with
  --pass-exit-code), a program killed by signal N is 128+N, a program not found or not
  executable is 2, nothing is committed unless every run succeeded (or --keep-partial)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``exec`` options (the caller adds --log-format and --log-level)."""
    parser.usage = USAGE
    parser.add_argument("--input", action="append", default=[], metavar="GLOB",
                        help="lake files to stage in: a glob, file or folder (repeatable)")
    parser.add_argument("--output", required=True, metavar="LAKE_DIR",
                        help="lake folder the files written in {output_dir} are committed to")
    parser.add_argument("--parallel", type=int, metavar="N",
                        help="runs at once (default: the task's share of the node's cores)")
    parser.add_argument("--once", action="store_true",
                        help="run the program once for all inputs ({inputs})")
    parser.add_argument("--pass-exit-code", action="store_true",
                        help="exit with the failed program's own exit code instead of 1")
    parser.add_argument("--keep-partial", action="store_true",
                        help="commit the outputs of the inputs that succeeded; still fail")
    parser.add_argument("--secret-env", action="append", default=[], metavar="NAME=SECRET",
                        help="environment variable NAME of the program gets the secret's "
                        "value (repeatable; never in its arguments)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="deadline of the whole task (exit 124; default WORKER_TIMEOUT)")
    parser.add_argument("--grace", type=float, metavar="SECONDS",
                        help="time the programs get between SIGTERM and SIGKILL when the task "
                        "stops (default WORKER_GRACE or 10)")
    parser.add_argument("--result", metavar="PATH",
                        help="where to write the result record (default: result.json in the "
                        "task working dir)")
    parser.add_argument("program", nargs=argparse.REMAINDER, metavar="-- PROGRAM [ARG]...",
                        help="the program and its arguments, with placeholders")


def params_of(args: argparse.Namespace) -> Dict[str, Any]:
    """The handler's parameters from the parsed command line."""
    program: List[str] = list(args.program)
    if program[:1] == ["--"]:
        program = program[1:]
    params: Dict[str, Any] = {"program": program, "inputs": list(args.input),
                              "output": args.output}
    if args.parallel is not None:
        params["parallel"] = args.parallel
    for flag in ("once", "pass_exit_code", "keep_partial"):
        if getattr(args, flag):
            params[flag] = True
    if args.secret_env:
        params["secret_env"] = _secret_env(args.secret_env)
    return params


def _secret_env(pairs: List[str]) -> Dict[str, str]:
    mapping = {}
    for pair in pairs:
        name, sep, secret = pair.partition("=")
        if not sep or not name or not secret:
            raise ParameterError(
                f"--secret-env {pair!r} is not NAME=SECRET; e.g. --secret-env "
                "DB_PASSWORD=db-password (the variable, then the secret's name)",
                code="params.secret_env")
        mapping[name] = secret
    return mapping


def run(args: argparse.Namespace, config: Any) -> int:
    """Run the exec task; returns its exit code."""
    from ..legacy.task import SPEC
    from ..runner import RunRequest, record_usage_failure, run_task
    from ..streams import redacted_output

    result_path = Path(args.result) if args.result else None
    with redacted_output():
        try:
            params = params_of(args)
        except WorkerError as e:
            return record_usage_failure(SPEC, e, config, result_path)
        request = RunRequest(spec=SPEC, params=params, config=config, result_path=result_path,
                             timeout=args.timeout, grace=args.grace)
        return run_task(request).exit_code
