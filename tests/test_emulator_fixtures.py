"""The pytest fixtures hand every test emulators as fresh as a new set, and cheaply.

The ``part_1``/``part_2`` pairs run in file order: the first leaves state behind, the
second checks that its ``emulators`` fixture no longer shows it.
"""

from __future__ import annotations

import logging

import pytest
from azure.core.exceptions import ResourceNotFoundError

from worker.emulators.vault_store import VaultError


def test_state_left_behind_part_1(emulators, emulator_environ):
    emulators.seed_secret("left-behind", "x")
    emulators.secret_client().set_secret("deleted-then-left", "y")
    emulators.secret_client().begin_delete_secret("deleted-then-left").result()
    emulators.seed_file("data", "left/behind.txt", b"x")
    emulators.fault("lake", "read", times=None)
    emulators.network(link_mbps=1)


def test_state_left_behind_part_2(emulators, emulator_environ):
    vault = emulators.secret_client()
    with pytest.raises(ResourceNotFoundError):
        vault.get_secret("left-behind")
    vault.set_secret("deleted-then-left", "again")  # no conflict with a deleted secret
    assert [p.name for p in vault.list_properties_of_secrets()] == ["deleted-then-left"]
    fs = emulators.service_client().get_file_system_client("data")
    assert list(fs.get_paths()) == []
    assert not emulators.set.network.limited
    emulators.seed_file("data", "f.txt", b"read without a fault")
    assert fs.get_file_client("f.txt").download_file().readall() == b"read without a fault"
    assert emulators.counts("lake") == {"list_paths": 1, "read": 1}  # no faulted retries


def test_reset_keeps_the_configured_secrets_and_file_systems(monkeypatch):
    from worker.emulators import EmulatorSet, parse_config
    from worker.emulators.handle import EmulatorHandle

    config = parse_config({"filesystems": ["raw", "curated"], "secrets": {"db": "seeded"}})
    with EmulatorSet(config) as raw:
        emulators = EmulatorHandle(raw)
        emulators.seed_secret("db", "changed")
        emulators.seed_secret("extra", "x")
        emulators.seed_file("raw", "a.txt", b"a")
        own = emulators.new_filesystem()
        emulators.seed_file(own, "mine.txt", b"m")
        emulators.reset_state()
        assert emulators.get_secret("db") == "seeded"
        assert len(raw.vault_app.store.versions("db")) == 1
        with pytest.raises(VaultError):
            emulators.get_secret("extra")
        assert not emulators.exists("raw", "a.txt")
        assert sorted(raw.lake_app.store.filesystems) == sorted(["raw", "curated", own])
        assert emulators.read_file(own, "mine.txt") == b"m"  # a test's own file system stays


def test_request_lines_stay_out_of_the_tests_own_log(emulators, emulator_environ,
                                                     emulator_filesystem, caplog):
    caplog.set_level(logging.DEBUG)
    emulators.seed_file(emulator_filesystem, "quiet.txt", b"q")
    fs = emulators.service_client().get_file_system_client(emulator_filesystem)
    assert fs.get_file_client("quiet.txt").download_file().readall() == b"q"
    assert emulators.counts("lake")["read"] == 1
    assert not [r for r in caplog.records if r.name == "worker.emulators.requests"]
