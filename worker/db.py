"""``ctx.duckdb`` and ``ctx.sql``: DuckDB sized to the task's slots, over lake datasets.

One in-memory DuckDB connection per task, opened on first use with:

- ``threads`` = the task's cores, ``memory_limit`` = ``WORKER_DUCKDB_MEMORY_FRACTION``
  (default 0.6) of the task's memory; both are the node's ÷ ``WORKER_TASK_SLOTS`` ×
  ``WORKER_REQUIRED_SLOTS`` (see ``worker.resources``). The other 40% is headroom for
  Python, pyarrow and the results a handler pulls out of DuckDB, which the limit does not
  count;
- ``temp_directory`` in the task's scratch folder, so work larger than memory spills to
  the node's local disk;
- no extension installs or autoloads: a node may have no internet, and parquet, CSV and
  JSON are built into the wheel.

DuckDB's errors become ours with one-line messages (:func:`translate_error`): a bug in the
SQL is :class:`SqlError` (exit 1), bad input data such as a corrupt parquet file is
:class:`InputDataError` (exit 4), running out of memory is :class:`DuckDBMemoryError`
(exit 1: retrying on the same slots hits the same limit; the message names the fix).
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

from .config import Config
from .errors import DuckDBMemoryError, InputDataError, SqlError, WorkerError
from .resources import Budget, task_budget
from .sqltext import identifier, sql_literal

log = logging.getLogger(__name__)

_MiB = 1024 * 1024


def settings(config: Config, scratch: Path, budget: Optional[Budget] = None) -> Dict[str, str]:
    """The DuckDB configuration for this task (what :func:`connect` passes to DuckDB)."""
    budget = budget or task_budget(config)
    return {
        "threads": str(budget.threads),
        "memory_limit": f"{memory_limit_mib(config, budget)}MiB",
        "temp_directory": str(Path(scratch) / "duckdb-tmp"),
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
    }


def memory_limit_mib(config: Config, budget: Budget) -> int:
    """DuckDB's share of the task's memory, in MiB (at least 64)."""
    return max(64, int(budget.memory * config.duckdb_memory_fraction) // _MiB)


def connect(config: Config, scratch: Path):
    """Open this task's DuckDB connection (in memory, spilling to ``scratch``)."""
    import duckdb

    budget = task_budget(config)
    options = settings(config, scratch, budget)
    conn = duckdb.connect(":memory:", config=options)
    log.info(
        "duckdb %s: threads=%s memory_limit=%s (%s)",
        duckdb.__version__, options["threads"], options["memory_limit"], budget.describe(),
    )
    return conn


def sql(
    conn, query: str, params: Optional[Sequence[Any]], tables: Mapping[str, Any],
    scratch: Path, config: Config,
):
    """Register ``tables`` by name on ``conn``, then run ``query``: a relation, lazy (it
    runs when fetched, written or queried) unless ``params`` are given to DuckDB 1.x, which
    runs the query at once and holds its result."""
    try:
        for name, table in tables.items():
            register(conn, name, table, scratch)
        return conn.sql(query, params=params) if params is not None else conn.sql(query)
    except Exception as e:
        translated = translate_error(e, config)
        if translated is None:
            raise
        raise translated from None


def register(conn, name: str, table: Any, scratch: Path) -> None:
    """Make ``table`` queryable as ``name``: a lake dataset (streamed by ranged reads or
    scanned on local disk, see ``worker.lake.dataset``), a pyarrow
    Table/Dataset/RecordBatchReader or pandas DataFrame (scanned in place, no copy), or a
    DuckDB relation."""
    from .lake.dataset import Dataset

    if isinstance(table, Dataset) and table.mode == "stream":
        try:
            dataset = table.arrow_dataset()
        except Exception as e:
            translated = _dataset_error(e)
            if translated is None:
                raise
            raise translated from None
        if table.columns:  # the scan under another name, the view with the columns
            conn.register(name + "__scan", dataset)
            _view(conn, name, f"select * from {identifier(name + '__scan')}", table.columns)
        else:
            conn.register(name, dataset)
    elif isinstance(table, Dataset):
        scan = scan_sql(table.format, table.local_files(Path(scratch) / "lake"), table.options)
        _view(conn, name, f"select * from {scan}", table.columns)
    else:
        conn.register(name, table)


def _view(conn, name: str, select: str, columns: Optional[Sequence[str]]) -> None:
    """A view ``name`` over ``select`` with only ``columns`` (all when None)."""
    if columns:
        select = "select " + ", ".join(map(identifier, columns)) + " from (" + select + ")"
    conn.execute(f"create or replace temp view {identifier(name)} as {select}")


def scan_sql(format: str, files: Sequence[str], options: Mapping[str, Any]) -> str:
    """``read_parquet(['/a.parquet', ...], hive_partitioning = true)`` and the like."""
    args = [sql_literal(list(files))] + [f"{k} = {sql_literal(v)}" for k, v in options.items()]
    return f"read_{format}({', '.join(args)})"


# -- errors ------------------------------------------------------------------------------

_SQL_ERRORS = {
    "ParserException", "SyntaxException", "BinderException", "CatalogException",
    "ProgrammingError", "NotImplementedException", "TypeMismatchException",
}
_DATA_ERRORS = {"InvalidInputException", "ConversionException", "DataError"}
# DuckDB 2.0 raises some corrupt-parquet errors as the base ``duckdb.Error``.
_DATA_MESSAGE = re.compile(
    r"parquet|magic bytes|footer|corrupt|thrift|sniff|CSV Error|Malformed JSON", re.IGNORECASE
)


def translate_error(error: BaseException, config: Config) -> Optional[BaseException]:
    """Our error for a DuckDB exception (None for anything else), with a one-line message.

    A lake error under a streamed scan (a transient fault, a missing file, no permission)
    comes back as itself, so it keeps its exit code.
    """
    names = _duckdb_class_names(error)
    if not names:
        return None
    lake_error = _lake_failure(str(error))
    if lake_error is not None:
        return lake_error
    message = lake_paths(one_line(str(error)))
    if "OutOfMemoryException" in names:
        new: WorkerError = DuckDBMemoryError(_memory_message(message, config))
    elif names & _DATA_ERRORS:
        new = InputDataError(f"bad input data: {message}")
    elif names & _SQL_ERRORS:
        new = SqlError(message)
    elif _DATA_MESSAGE.search(message):
        new = InputDataError(f"bad input data: {message}")
    else:
        new = WorkerError(f"DuckDB: {message}", code="duckdb")
    return new.with_traceback(error.__traceback__)


# A dataset staged from the Data Lake keeps its lake paths below <scratch>/lake/ (see
# worker.lake.dataset): DuckDB names the local copy, the task's error names the lake path.
_STAGED_PATH = re.compile(r"/\S*?/scratch-[^/\s]+/lake/")


def lake_paths(message: str) -> str:
    """``message`` with paths of staged copies written as the lake paths they copy."""
    return _STAGED_PATH.sub("lake:", message)


def _lake_failure(message: str) -> Optional[BaseException]:
    if "worker.lake.dataset" not in sys.modules:
        return None
    from .lake.failures import failure_in

    return failure_in(message)


def _dataset_error(error: Exception) -> Optional[BaseException]:
    """A pyarrow error while opening a streamed dataset: a corrupt first file is bad
    input data (exit 4), like DuckDB's own parquet errors; a lake error is itself."""
    if not type(error).__module__.startswith("pyarrow"):
        return None
    lake_error = _lake_failure(str(error))
    if lake_error is not None:
        return lake_error
    return InputDataError(f"bad input data: {lake_paths(one_line(str(error)))}")


def one_line(message: str) -> str:
    """DuckDB's multi-line message as one line (the ``LINE 1: ...`` context kept)."""
    lines = [line.strip() for line in message.splitlines()]
    lines = [line for line in lines if line and not set(line) <= {"^", " "}]
    return " | ".join(lines)


def _duckdb_class_names(error: BaseException) -> set:
    classes = type(error).__mro__
    if not any(c.__module__.split(".")[0] in ("duckdb", "_duckdb") for c in classes):
        return set()
    return {c.__name__ for c in classes}


def _memory_message(message: str, config: Config) -> str:
    budget = task_budget(config)
    return (
        f"DuckDB ran out of memory at memory_limit={memory_limit_mib(config, budget)}MiB "
        f"({config.duckdb_memory_fraction:g} of {budget.describe()}): {message}. Give the "
        "task more slots (a larger requiredSlots with WORKER_REQUIRED_SLOTS, or fewer "
        "WORKER_TASK_SLOTS per node), raise WORKER_DUCKDB_MEMORY_FRACTION, or give it less data"
    )
