"""The ``Context`` a handler receives: task metadata, scratch space, logging, cancellation,
and lazy handles to the lake, secrets and DuckDB.

Handles are created on first use, so a handler that never reads a secret never talks to
Key Vault, and a task's start-up imports no Azure SDK, pyarrow or DuckDB.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from .batch import TaskInfo
from .cancel import Cancellation
from .config import Config

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs every task's start-up (bench_harness.py)
    from typing import Any, Callable, Dict, List, Optional, Union

log = logging.getLogger(__name__)


class Context:
    """What a handler gets as its first parameter (or ``ctx=``)."""

    def __init__(
        self,
        config: Config,
        task: TaskInfo,
        params: Optional[Dict[str, Any]] = None,
        cancellation: Optional[Cancellation] = None,
        logger: Optional[logging.Logger] = None,
        task_key: Union[str, Callable[[], str]] = "local/adhoc",
        run_id: Optional[str] = None,
    ) -> None:
        self.config = config
        self.task = task
        self.params = dict(params or {})
        self._task_key = task_key
        self.run_id = run_id
        self.log = logger or logging.getLogger("worker.handler")
        self._cancellation = cancellation or Cancellation(config.grace, config.timeout)
        self._handles: Dict[str, Any] = {}
        self._lock = threading.RLock()
        self._scratch: Optional[Path] = None

    # -- task metadata -------------------------------------------------------------------

    @property
    def task_key(self) -> str:
        """The task's staging folder below ``.worker-staging/`` (worker.runner.task_key);
        given as a function, it is computed when first needed."""
        if callable(self._task_key):
            self._task_key = self._task_key()
        return self._task_key

    @property
    def attempt(self) -> int:
        """1 on the first run of this task on this node, 2 on the next, and so on."""
        return self.task.attempt

    # -- cancellation --------------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        """True once SIGTERM/SIGINT or the deadline asked the task to stop."""
        return self._cancellation.requested

    @property
    def cancel_event(self) -> threading.Event:
        """Set on a stop request; ``ctx.cancel_event.wait(5)`` is an interruptible sleep."""
        return self._cancellation.event

    def check_cancelled(self) -> None:
        """Raise the pending stop (Cancelled or DeadlineExceeded) if there is one."""
        self._cancellation.check()

    def time_left(self) -> Optional[float]:
        """Seconds until the ``--timeout`` deadline, or None without one."""
        return self._cancellation.time_left()

    # -- scratch -------------------------------------------------------------------------

    @property
    def scratch(self) -> Path:
        """A private folder on the node's local disk, removed when the task ends."""
        with self._lock:
            if self._scratch is None:
                self._scratch = _make_scratch(self.config, self.task)
            return self._scratch

    # -- lazy handles --------------------------------------------------------------------

    @property
    def lake(self):
        """The lake at ``WORKER_LAKE_URL`` (see ``worker.lake.Lake``)."""
        return self._handle("lake", self._open_lake)

    @property
    def secrets(self):
        """Secrets by name (see ``worker.secrets.Secrets``)."""
        return self._handle("secrets", self._open_secrets)

    @property
    def duckdb(self):
        """This task's DuckDB connection, sized to its slots and spilling to scratch."""
        return self._handle("duckdb", self._open_duckdb)

    def sql(self, query: str, params: Optional[List[Any]] = None, **tables: Any):
        """Run ``query`` on ``ctx.duckdb`` with ``tables`` (lake datasets, Arrow tables,
        pandas frames, relations) bound by name; returns a DuckDB relation, lazy unless
        ``params`` are given to DuckDB 1.x (see worker.db)."""
        from .db import sql

        return sql(self.duckdb, query, params, tables, self.scratch, self.config)

    # -- legacy programs (see worker.legacy) ----------------------------------------------

    def stage_in(self, paths, dest=None) -> List[Path]:
        """Download the lake files that ``paths`` (a glob, file or folder, or a list of them)
        name, in parallel with progress, to ``dest`` (default ``<scratch>/in``), each at
        ``dest/<its lake path>``; returns the local paths, sorted by lake path. A pattern
        matching nothing is a missing input (exit 4)."""
        from .legacy.staging import stage_in

        target = Path(dest) if dest is not None else self.scratch / "in"
        return [local for _, local in stage_in(self.lake, paths, target)]

    def run(self, args, *, cwd=None, env=None, secret_env=None, timeout=None, check=True,
            tag=None, capture_output=False, text=False, stop=None):
        """Run a program like ``subprocess.run`` and return its ``CompletedProcess``: in
        its own process group, stdin from /dev/null, its output logged line by line
        (``[tag]`` first), stopped with the task (SIGTERM to the group, SIGKILL after the
        grace). ``env`` replaces the environment (default: the task's); ``secret_env``
        maps variable names to secret names, whose values are added to it (never to
        argv). ``check``: a non-zero exit raises ``ProgramFailed`` (a signal
        ``ProgramKilled``); ``timeout`` raises ``ProgramTimedOut``; ``stop``: an Event
        that stops it when set. See ``worker.legacy.process``."""
        return self._handle("programs", self._open_programs).run(
            args, cwd=cwd, env=env, secret_env=secret_env, timeout=timeout, check=check,
            tag=tag, capture_output=capture_output, text=text, stop=stop)

    def stage_out(self, local, lake_path: str, overwrite: bool = True,
                  source: Optional[str] = None) -> List[str]:
        """Stage a local file or folder for ``lake_path`` (``ctx.lake.upload``: it joins
        the task's atomic commit); ``source`` is recorded with each output in result.json.
        Returns the lake paths."""
        return self.lake.upload(str(local), lake_path, overwrite=overwrite, source=source)

    @property
    def credential(self):
        """The process's one Azure credential (managed identity on Batch)."""
        from .identity import get_credential

        return get_credential(self.config)

    def _handle(self, name: str, factory: Callable[[], Any]) -> Any:
        with self._lock:
            if name not in self._handles:
                self._handles[name] = factory()
            return self._handles[name]

    def _open_lake(self):
        from .errors import ConfigError
        from .lake import Lake, open_store

        if not self.config.lake_url:
            raise ConfigError(
                "ctx.lake needs WORKER_LAKE_URL (abfss://FS@ACCOUNT.dfs.core.windows.net/PREFIX "
                "or file:///some/dir)"
            )
        store = open_store(self.config.lake_url, config=self.config)
        return Lake(store, self.task_key, run_id=self.run_id,
                    concurrency=self.config.transfer_concurrency, scratch=lambda: self.scratch)

    def _open_programs(self):
        from .legacy.process import Programs

        return Programs(self._cancellation, lambda: self.secrets)

    def _open_duckdb(self):
        from .db import connect

        return connect(self.config, self.scratch)

    def _open_secrets(self):
        from .secrets import open_secrets

        return open_secrets(self.config)

    # -- end of task (called by the runner) ----------------------------------------------

    def pending_outputs(self) -> List[Dict[str, Any]]:
        """What :meth:`commit` would put in place (path, bytes, md5, rows)."""
        lake = self._handles.get("lake")
        return lake.pending if lake is not None else []

    def commit(self) -> List[Dict[str, Any]]:
        """Put staged outputs in place; returns what was committed."""
        lake = self._handles.get("lake")
        return lake.commit() if lake is not None else []

    def abort(self) -> None:
        """Drop staged outputs."""
        lake = self._handles.get("lake")
        if lake is not None:
            lake.abort()

    def close(self) -> None:
        """Close every handle (programs first: none outlives the task; then DuckDB: it may
        read lake-staged files) and scratch."""
        for name in ("programs", "duckdb", "lake", "secrets"):
            handle = self._handles.pop(name, None)
            if handle is not None:
                _close_quietly(name, handle)
        if self._scratch is not None:
            import shutil

            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


def _make_scratch(config: Config, task: TaskInfo) -> Path:
    import tempfile  # not on the start-up path of tasks that need no scratch

    root = Path(config.scratch_root or task.task_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="scratch-", dir=str(root)))
    except OSError as e:
        from .errors import ConfigError

        where = "WORKER_SCRATCH_DIR" if config.scratch_root else "the task directory"
        raise ConfigError(
            f"cannot make a scratch folder in {str(root)!r} ({where}: {e.strerror or e}); "
            "point WORKER_SCRATCH_DIR at a folder on local disk the task may write",
            code="config.scratch") from None


def _close_quietly(name: str, handle: Any) -> None:
    try:
        handle.close()
    except Exception as e:  # closing must not mask the task's own outcome
        log.warning("closing %s failed: %s", name, e)
