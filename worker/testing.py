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
  (IDENTITY_ENDPOINT, MSI_ENDPOINT, ...), plus WORKER_LAKE_URL (pointing at
  ``emulator_filesystem``), WORKER_VAULT_URL, AZURE_CLIENT_ID,
  AZURE_POD_IDENTITY_AUTHORITY_HOST and REQUESTS_CA_BUNDLE.
- ``emulator_environ`` (function): the same variables applied to ``os.environ`` for the
  test (through monkeypatch), for code run in-process; returns the dict.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator

import pytest


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
