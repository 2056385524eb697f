"""The command line: ``python -m worker run|exec|doctor|emulate|lake|secrets|package|spec|
local-batch|deploy|status|logs|results|rerun|init``.

``main(argv) -> int`` is the one place that turns outcomes into exit codes; it is testable
in-process, and only ``__main__`` (or the ``batch-worker`` script) calls ``sys.exit``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import USAGE, WorkerError
from .version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs every task's start-up (bench_harness.py)
    from typing import Dict, List, NoReturn, Optional

log = logging.getLogger("worker")

_EPILOG = """exit codes:
  0 success, 1 a bug in the handler or its program failed, 2 configuration error,
  3 transient failure (retry), 4 bad input data, 5 commit conflict,
  124 deadline exceeded, 130 SIGINT, 143 SIGTERM"""

_RUN_EPILOG = """examples:
  python -m worker run handlers.sales:rollup --param date=2024-01-31 --param region=eu
  python -m worker run jobs/daily.py:main --params-json '{"days": 7}' --timeout 3600

environment (docs/reference/configuration.md): WORKER_LAKE_URL, WORKER_VAULT_URL,
  WORKER_SECRETS_FILE, WORKER_SECRET_<NAME>, WORKER_CLIENT_ID or AZURE_CLIENT_ID,
  WORKER_LOG_FORMAT, WORKER_LOG_LEVEL, WORKER_TIMEOUT, WORKER_GRACE, WORKER_SCRATCH_DIR,
  WORKER_TRANSFER_CONCURRENCY, WORKER_LAKE_CHUNK_SIZE, WORKER_LAKE_FILE_CONCURRENCY,
  WORKER_RETRY_TOTAL, WORKER_RETRY_BACKOFF, WORKER_TOKEN_CACHE (on a node: on, the node's
  tasks share tokens; off), WORKER_TASK_SLOTS, WORKER_REQUIRED_SLOTS,
  WORKER_CORES, WORKER_MEMORY_MB, WORKER_DUCKDB_MEMORY_FRACTION, WORKER_TASK_RETRIES,
  REQUESTS_CA_BUNDLE;
  Batch's AZ_BATCH_* (task ids and folders; AZ_BATCH_NODE_ID selects managed identity);
  off Batch, DefaultAzureCredential's own (AZURE_TENANT_ID, AZURE_CLIENT_SECRET, ...)

""" + _EPILOG

_DOCTOR_EPILOG = """examples:
  python -m worker doctor              # e.g. after: set -a; . ./.emulators.env; set +a
  python -m worker doctor --offline    # the start task's check: every dependency imports

environment: WORKER_LAKE_URL, WORKER_VAULT_URL, WORKER_SECRETS_FILE, WORKER_CLIENT_ID or
  AZURE_CLIENT_ID, AZURE_POD_IDENTITY_AUTHORITY_HOST (an identity endpoint such as the
  emulators'), AZ_BATCH_NODE_ID (on a node: managed identity), REQUESTS_CA_BUNDLE,
  SSL_CERT_FILE, CURL_CA_BUNDLE (each checked to name a file), WORKER_LOG_FORMAT,
  WORKER_LOG_LEVEL; off Batch, DefaultAzureCredential's own

exit codes: 0 every check made passed, 2 a check failed"""


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one line: what is wrong, the valid form and
    where the help is (argparse prints the usage above the error, without a fix). An
    unknown option is reported by the command it was given to, with that command's usage."""

    commands: Dict[str, argparse.ArgumentParser] = {}

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = self.commands.get(getattr(parsed, "command", None) or "", self)
            command.error("unrecognized arguments: " + " ".join(extras))
        return parsed

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        usage = " ".join(self.format_usage().split())
        self.exit(USAGE, f"{self.prog}: error: {message}; {usage}; see '{self.prog} --help' "
                         f"(exit {USAGE})\n")


def build_parser(argv: Optional[List[str]] = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m worker",
        description="Task harness for Python batch work on Azure Batch.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"batch-worker {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    parser.commands = commands.choices
    _add_run(
        commands.add_parser(
            "run", help="run a handler as a task", epilog=_RUN_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    doctor = commands.add_parser(
        "doctor", help="check the installation and configuration", epilog=_DOCTOR_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    doctor.add_argument(
        "--offline", action="store_true", help="only check that the dependencies import"
    )
    _add_log_options(doctor)
    emulate = commands.add_parser(
        "emulate", help="run loopback Data Lake, Key Vault and managed-identity emulators"
    )
    if argv and argv[0] == "emulate":  # its module is imported only when it is used
        _add_emulator_arguments(emulate)
    _add_exec(commands, argv)
    lake = commands.add_parser(
        "lake", help="list, get, put, delete and clean lake files from a terminal",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if argv and argv[0] == "lake":
        from .commands import lake as lake_command

        lake.epilog = lake_command.EXAMPLES
        lake_command.add_arguments(lake)
        _add_log_options(lake)
    _add_secrets(commands, argv)
    _add_package(commands, argv)
    _add_init(commands, argv)
    return parser


def _add_secrets(commands, argv: Optional[List[str]]) -> None:
    """``secrets``: the vault from a terminal (worker.commands.secrets, imported when used)."""
    secrets = commands.add_parser(
        "secrets", help="set, get, list and delete Key Vault secrets from a terminal",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    if argv and argv[0] == "secrets":
        from .commands import secrets as secrets_command

        secrets.epilog = secrets_command.EXAMPLES
        secrets_command.add_arguments(secrets)
        _add_log_options(secrets)


def _add_init(commands, argv: Optional[List[str]]) -> None:
    """``init``: a new handler project (worker.commands.init, imported only when used)."""
    init = commands.add_parser(
        "init", help="create a handler project that runs and tests at once",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    if argv and argv[0] == "init":
        from .commands import init as init_command

        init.epilog = init_command.EXAMPLES
        init_command.add_arguments(init)


#: Build-and-deploy commands: (module in worker.deploy, help). A module is imported only
#: when its command is used.
_DEPLOY_COMMANDS = {
    "package": ("cli", "build the Batch application package"),
    "spec": ("spec", "print the pool, job and task documents to deploy"),
    "local-batch": ("localbatch.cli", "run a job's documents on this machine as one Batch "
                                      "node would (a local test runner)"),
    "deploy": ("cloud.deploy", "upload the package, create the pool, the job and its tasks "
                               "on Azure Batch (idempotent)"),
    "status": ("cloud.status", "a job's state, its tasks by state and why the failed ones "
                               "failed (--watch)"),
    "logs": ("cloud.logs", "a task's stderr.txt or stdout.txt from its node (--follow)"),
    "results": ("cloud.results", "every task's result record in one table (parquet, csv, "
                                 "json)"),
    "rerun": ("cloud.rerun", "run a job's failed tasks again once their cause is fixed"),
}


def _add_package(commands, argv: Optional[List[str]]) -> None:
    """``package``, ``spec``, ``local-batch`` and the deploy loop: the tools in
    worker.deploy."""
    for name, (_, help_text) in _DEPLOY_COMMANDS.items():
        parser = commands.add_parser(name, help=help_text)
        if argv and argv[0] == name:
            _deploy_module(name).add_arguments(parser)


def _deploy_module(command: str):
    import importlib

    return importlib.import_module("worker.deploy." + _DEPLOY_COMMANDS[command][0])


class _RunParser(_Parser):
    """``run`` parsed without the top-level parser (building every command's costs a task's
    start-up): it takes ``run`` as its first word."""

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        namespace = super().parse_args(list(args or [])[1:], namespace)
        namespace.command = "run"
        return namespace


def _run_parser() -> argparse.ArgumentParser:
    parser = _RunParser(prog="python -m worker run", epilog=_RUN_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_run(parser)
    return parser


def _add_run(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "handler", metavar="HANDLER", help="package.module:function or path/file.py:function"
    )
    run.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="a parameter, passed as a string (repeatable)",
    )
    run.add_argument("--params-file", metavar="FILE", help="a JSON object of parameters")
    run.add_argument("--params-json", metavar="JSON", help="a JSON object of parameters")
    run.add_argument(
        "--timeout", type=float, metavar="SECONDS",
        help="deadline; the task stops with exit 124 (default WORKER_TIMEOUT or none)",
    )
    run.add_argument(
        "--grace", type=float, metavar="SECONDS",
        help="time to stop after a signal or the deadline (default WORKER_GRACE or 10)",
    )
    run.add_argument(
        "--result", metavar="PATH",
        help="where to write the result record (default: result.json in the task working dir)",
    )
    _add_log_options(run)


def _add_exec(commands, argv: Optional[List[str]]) -> None:
    """``exec``: a legacy program over lake files (worker.commands.exec over the worker.legacy
    library, imported only for it)."""
    parser = commands.add_parser(
        "exec", help="run a legacy program over lake files as a task, outputs committed "
        "atomically", formatter_class=argparse.RawDescriptionHelpFormatter)
    if argv and argv[0] == "exec":
        from .commands import exec as exec_command

        parser.epilog = exec_command.EXAMPLES
        exec_command.add_arguments(parser)
        _add_log_options(parser)


def _add_log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format", choices=("text", "json"), help="log line format (default WORKER_LOG_FORMAT)"
    )
    parser.add_argument("--log-level", help="log level (default WORKER_LOG_LEVEL or INFO)")


def _add_emulator_arguments(parser: argparse.ArgumentParser) -> None:
    from .emulators import cli as emulators_cli

    emulators_cli.add_arguments(parser)


def main(argv: Optional[List[str]] = None) -> int:
    """Parse ``argv``, run the command, return the exit code."""
    _line_buffered_output()
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        # A task's start-up: `run`'s parser alone, as the subparser would parse it.
        parser = _run_parser() if argv[:1] == ["run"] else build_parser(argv)
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse reports usage errors itself, with exit status 2
        return int(e.code) if isinstance(e.code, int) else USAGE
    try:
        return _dispatch(args)
    except WorkerError as e:  # configuration errors found before a task could start
        _setup_fallback_logging()
        log.error("%s (exit %d)", e, e.exit_code)
        return e.exit_code


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "emulate":
        from .emulators import cli as emulators_cli

        return emulators_cli.run(args)
    if args.command in _DEPLOY_COMMANDS:
        return _deploy_module(args.command).run(args)
    if args.command == "init":
        from .commands import init as init_command

        return init_command.run(args)
    config = _config(args)
    _setup_logging(config)
    if args.command == "doctor":
        from .doctor import run_doctor

        return run_doctor(config, offline=args.offline, out=sys.stdout)
    if args.command == "lake":
        from .commands import lake as lake_command

        return lake_command.run(args, config)
    if args.command == "secrets":
        from .commands import secrets as secrets_command

        return secrets_command.run(args, config)
    if args.command == "exec":
        from .commands import exec as exec_command

        return exec_command.run(args, config)
    return _run(args, config)


def _config(args: argparse.Namespace):
    from .config import Config

    config = Config.from_env()
    overrides = {}
    if getattr(args, "log_format", None):
        overrides["log_format"] = args.log_format
    if getattr(args, "log_level", None):
        overrides["log_level"] = args.log_level.upper()
    if overrides:
        config = config._replace(**overrides)
    return config


def _setup_logging(config) -> None:
    from .batch import TaskInfo
    from .logs import setup_logging

    task = TaskInfo.from_env(config.environ)
    setup_logging(config.log_format, config.log_level, task.job_id, task.task_id)


def _setup_fallback_logging() -> None:
    if not logging.getLogger().handlers:
        from .logs import setup_logging

        setup_logging("text", "INFO", "-", "-")


def _run(args: argparse.Namespace, config) -> int:
    from .streams import redacted_output

    with redacted_output():
        return _run_task(args, config)


def _run_task(args: argparse.Namespace, config) -> int:
    from .params import collect_params
    from .runner import RunRequest, record_usage_failure, run_task

    result_path = Path(args.result) if args.result else None
    try:
        params = collect_params(args.param, args.params_file, args.params_json)
    except WorkerError as e:
        return record_usage_failure(args.handler, e, config, result_path)
    request = RunRequest(
        spec=args.handler, params=params, config=config, result_path=result_path,
        timeout=args.timeout, grace=args.grace,
    )
    return run_task(request).exit_code


def _line_buffered_output() -> None:
    """Batch copies stdout/stderr to files: flush each line so nothing is lost on a kill."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
        except (AttributeError, ValueError):
            pass


def main_exit() -> None:
    """Entry point of the ``batch-worker`` console script."""
    sys.exit(main())
