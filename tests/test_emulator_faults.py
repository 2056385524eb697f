"""Faults on demand, and the real SDKs' retries recovering from each kind."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.filedatalake import LinearRetry


def _fast_retry(total: int = 3) -> LinearRetry:
    return LinearRetry(backoff=0, random_jitter_range=0, retry_total=total)


@pytest.fixture
def lake(emulators, emulator_environ, emulator_filesystem):
    emulators.seed_file(emulator_filesystem, "f.bin", b"0123456789" * 1000)
    client = emulators.service_client(retry_policy=_fast_retry())
    return client.get_file_client(emulator_filesystem, "f.bin")


@pytest.mark.parametrize("status", [503, 500])
def test_server_errors_are_retried(emulators, lake, status):
    emulators.fault("lake", "read", status=status, times=2)
    assert len(lake.download_file().readall()) == 10000
    assert emulators.counts("lake")["read"] == 3


def test_throttling_is_not_retried_by_storage(emulators, lake):
    emulators.fault("lake", "get_properties", status=429, retry_after=1)
    with pytest.raises(HttpResponseError) as e:
        lake.get_file_properties()
    assert e.value.status_code == 429
    assert emulators.counts("lake")["get_properties"] == 1


def test_throttling_is_retried_by_key_vault(emulators, emulator_environ):
    emulators.seed_secret("throttled", "t")
    vault = emulators.secret_client(retry_total=3)
    vault.get_secret("throttled")  # the challenge round first, outside the fault
    emulators.reset_counts()
    emulators.fault("vault", "get_secret", status=429, code="Throttled", retry_after=0.05,
                    times=2)
    assert vault.get_secret("throttled").value == "t"
    assert emulators.counts("vault")["get_secret"] == 3


def test_append_retry_after_server_busy(emulators, lake):
    emulators.fault("lake", "append", status=503, times=1)
    lake.upload_data(b"retried", overwrite=True)
    assert lake.download_file().readall() == b"retried"
    assert emulators.counts("lake")["append"] == 2


def test_latency(emulators, lake):
    emulators.fault("lake", "get_properties", kind="latency", delay=0.3)
    started = time.monotonic()
    assert lake.get_file_properties().size == 10000
    assert time.monotonic() - started >= 0.3


def test_truncated_body_is_recovered_by_the_download_loop(emulators, lake):
    emulators.fault("lake", "read", kind="truncate", times=1)
    assert lake.download_file().readall() == b"0123456789" * 1000
    assert emulators.counts("lake")["read"] == 2


def test_dropped_connection_is_retried(emulators, lake):
    emulators.fault("lake", "get_properties", kind="drop", times=1)
    assert lake.get_file_properties().size == 10000
    assert emulators.counts("lake")["get_properties"] == 2


def test_identity_endpoint_fault_is_retried(emulators, emulator_environ):
    emulators.fault("identity", "token", status=503, times=1)
    token = emulators.credential().get_token("https://storage.azure.com/.default")
    assert token.token
    assert emulators.counts("identity")["token"] == 2


def test_random_faults_are_reproducible():
    from worker.emulators.faults import Faults

    def draw(seed):
        faults = Faults(seed)
        faults.add("lake", "*", status=503, times=None, probability=0.3)
        return [faults.pick("lake", "read") is not None for _ in range(50)]

    assert draw(7) == draw(7)
    assert 5 < sum(draw(7)) < 30


def test_unknown_fault_kind_is_refused(emulators):
    with pytest.raises(ValueError, match="fault kind must be one of"):
        emulators.fault(kind="explode")
