"""pytest plugin: loopback Azure emulators for our tests and for handler authors' tests.

Loaded in every pytest run through the ``pytest11`` entry point, so this module imports
nothing heavy: the emulators (and trustme, cryptography, the Azure SDKs) are imported only
when a fixture is used.

Fixtures:

- ``emulator_set`` (session): one running set of emulators (IMDS, Data Lake, Key Vault),
  as an :class:`worker.emulators.handle.EmulatorHandle`.
- ``emulators`` (function): the same handle, fresh for the test: secrets back to the
  configured ones (none by default), the configured file systems (``data``) empty, no
  faults, zeroed counters, no network model; faults and the network model are removed again
  after the test. Seed with ``seed_file(fs, path, data)``, ``load_directory(fs, dir)`` and
  ``seed_secret(name, value)``; inject faults with ``fault(service, operation, kind, ...)``;
  shape the network with ``network(link_mbps=..., latency_ms=...)``; read
  ``counts(service)``; ``reader_client_id`` is a read-only second identity.
- ``emulator_filesystem`` (function): a fresh, empty file system's name (deleted after).
- ``emulator_env`` (function): a complete environment dict for a worker subprocess: the
  current environment without the variables that would redirect azure-identity
  (IDENTITY_ENDPOINT, MSI_ENDPOINT, ...), plus the emulators' environment as a node has it
  (IMDS only): WORKER_LAKE_URL (pointing at ``emulator_filesystem``), WORKER_VAULT_URL,
  AZURE_CLIENT_ID, AZURE_POD_IDENTITY_AUTHORITY_HOST, REQUESTS_CA_BUNDLE, SSL_CERT_FILE and
  the storage account's variables (AZURE_STORAGE_*).
- ``emulator_environ`` (function): the same variables applied to ``os.environ`` for the
  test (through monkeypatch), for code run in-process; returns the dict.
- ``batch_emulator_set`` (session): a second emulator set with a local Azure Batch account
  (``emulate --batch``), as a :class:`worker.emulators.batch.handle.BatchHandle`:
  ``endpoint``, ``arm_endpoint``, ``account``, ``key``, ``environment()`` (AZURE_BATCH_*,
  AZURE_ARM_ENDPOINT, AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP included),
  ``client()`` (a real azure-batch client with the account key), ``add_package(zip)``,
  ``preempt(node_id)``, ``configure(time_scale=..., preempt_rate=...)``.
- ``batch_service`` (function): the same handle with an empty account (no pools, jobs or
  applications, no fault rules) and its clock at 60 service seconds per second.

And a helper for fast tests: :func:`run_handler` runs a handler in the test's own process
through the real runner and returns its :class:`worker.result.Result`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, Mapping, Optional, Union

import pytest

if TYPE_CHECKING:
    from worker.result import Result


@pytest.fixture(scope="session")
def emulator_set() -> Iterator[Any]:
    """One running emulator set for the whole session."""
    from worker.emulators import EmulatorSet
    from worker.emulators.handle import EmulatorHandle

    emulators = EmulatorSet().start()
    try:
        yield EmulatorHandle(emulators)
    finally:
        emulators.stop()


@pytest.fixture(scope="session")
def batch_emulator_set() -> Iterator[Any]:
    """One running emulator set with a local Batch account, for the whole session."""
    from worker.emulators import EmulatorSet
    from worker.emulators.batch.handle import DEFAULTS, BatchHandle
    from worker.emulators.batch.hosting import BatchHost
    from worker.emulators.batch.service import BatchSettings

    host = BatchHost(BatchSettings(time_scale=DEFAULTS["time_scale"]), preferred_port=0,
                     preferred_arm_port=0)
    emulators = EmulatorSet(batch=host).start()
    try:
        yield BatchHandle(emulators)
    finally:
        emulators.stop()


@pytest.fixture
def batch_service(batch_emulator_set: Any) -> Iterator[Any]:
    """The session's Batch account, empty for this test."""
    batch_emulator_set.reset()
    yield batch_emulator_set
    batch_emulator_set.reset()


@pytest.fixture
def emulators(emulator_set: Any) -> Iterator[Any]:
    """The session's emulators, as fresh as a new set for this test (and cheaper)."""
    emulator_set.reset_state()
    yield emulator_set
    emulator_set.clear_faults()
    emulator_set.network()


@pytest.fixture
def emulator_filesystem(emulators: Any) -> Iterator[str]:
    """A fresh file system for this test."""
    name = emulators.new_filesystem()
    yield name
    try:
        emulators.delete_filesystem(name)
    except Exception:  # the test may have deleted it itself
        pass


@pytest.fixture
def emulator_env(emulators: Any, emulator_filesystem: str) -> Dict[str, str]:
    """A full environment for a subprocess that talks to the emulators."""
    from worker.emulators import CLEARED_VARIABLES

    env = {k: v for k, v in os.environ.items() if k not in CLEARED_VARIABLES}
    env.update(emulators.environment(filesystem=emulator_filesystem))
    return env


@pytest.fixture
def emulator_environ(emulators: Any, emulator_filesystem: str,
                     monkeypatch: pytest.MonkeyPatch) -> Dict[str, str]:
    """Point this process's environment at the emulators for the test's duration."""
    from worker.emulators import CLEARED_VARIABLES

    for name in CLEARED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env = emulators.environment(filesystem=emulator_filesystem)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def run_handler(
    handler: Union[str, Callable[..., Any]],
    params: Optional[Mapping[str, Any]] = None,
    *,
    env: Optional[Mapping[str, str]] = None,
    result_path: Optional[Union[str, Path]] = None,
    timeout: Optional[float] = None,
) -> "Result":
    """Run ``handler`` once in this process, through the same runner as ``python -m worker
    run``, and return its result.

    The runner loads the handler and checks ``params`` against its signature, builds the
    context (lake, secrets, DuckDB, scratch), calls it, commits its lake writes when it
    returns (all or none), and writes the result record. The returned
    :class:`worker.result.Result` has ``status``, ``exit_code``, ``error`` (``type``,
    ``code``, ``message``), ``return_value`` and ``outputs``; ``to_dict()`` is what
    result.json holds. A failing handler does not raise: its exit code and error are in the
    result, as a task's would be.

    - ``handler``: ``"package.module:function"`` (imported with the current directory on
      the path), ``"path/file.py:function"``, or a module-level function itself.
    - ``params``: the task's parameters; values keep their Python types (as from
      ``--params-json``).
    - ``env``: variables set in ``os.environ`` for the run and restored after (e.g.
      ``emulators.environment(filesystem=...)``); by default the current environment is
      used as it is (e.g. with the ``emulator_environ`` fixture).
    - ``result_path``: where the record is written (default: a temporary file, removed).
    - ``timeout``: the ``--timeout`` deadline in seconds.

    Unlike a task process, stdout and stderr are not redacted through a pipe and logging is
    left to pytest (``caplog`` sees the records); the result record is redacted as always.
    Each call starts with a new credential and no secret remembered from earlier runs, as
    each task process does.
    """
    import tempfile

    with _environ(env), tempfile.TemporaryDirectory(prefix="worker-run-") as tmp:
        from worker.config import Config
        from worker.identity import reset_credential
        from worker.redact import forget_all
        from worker.runner import RunRequest, run_task

        request = RunRequest(
            spec=_spec(handler), params=dict(params or {}), config=Config.from_env(),
            result_path=Path(result_path) if result_path else Path(tmp) / "result.json",
            timeout=timeout,
        )
        reset_credential()
        forget_all()  # not after: the result's to_dict() redacts when it is called
        try:
            return run_task(request)
        finally:
            reset_credential()


def _spec(handler: Union[str, Callable[..., Any]]) -> str:
    """The spec of a handler given as a function: ``module:qualname``, which must import
    back to the same function (the runner loads handlers by name, as a task does)."""
    if isinstance(handler, str):
        return handler
    import importlib

    module = getattr(handler, "__module__", None)
    qualname = getattr(handler, "__qualname__", "")
    spec = f"{module}:{qualname}"
    found: Any = importlib.import_module(module) if module else None
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if "<" in qualname or found is not handler:
        raise TypeError(
            f"run_handler needs a function defined at the top level of an importable module, "
            f"or a 'package.module:function' string; {handler!r} cannot be loaded as {spec!r}")
    return spec


@contextlib.contextmanager
def _environ(env: Optional[Mapping[str, str]]) -> Iterator[None]:
    """``env`` applied to ``os.environ`` for the block, then the previous values back."""
    if not env:
        yield
        return
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
