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


def test_a_lost_answer_was_applied_and_its_retry_meets_the_new_state(emulators, lake):
    """``lost``: the service acts, the answer never arrives. The SDK cannot tell it from a
    dropped connection and retries: a delete's retry finds nothing (404)."""
    emulators.fault("lake", "delete", kind="lost", times=1)
    with pytest.raises(HttpResponseError) as caught:
        lake.delete_file()
    assert caught.value.status_code == 404
    assert emulators.counts("lake")["delete"] == 2
    assert not emulators.exists(lake.file_system_name, "f.bin")


def test_a_dropped_request_was_not_applied(emulators, lake):
    emulators.fault("lake", "delete", kind="drop", times=1)
    lake.delete_file()  # the retry deletes it: the first try never reached the store
    assert emulators.counts("lake")["delete"] == 2


def test_a_late_answer_comes_after_the_request_was_applied(emulators, emulator_filesystem,
                                                           lake):
    import threading

    emulators.fault("lake", "delete", kind="late", delay=1.0, times=1)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (lake.delete_file(), done.set()))
    thread.start()
    deadline = time.monotonic() + 5
    while emulators.exists(emulator_filesystem, "f.bin") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not emulators.exists(emulator_filesystem, "f.bin") and not done.is_set()
    thread.join(5)
    assert done.is_set()


def test_lost_answers_are_drawn_per_operation_from_the_seed():
    from worker.emulators.faults import Faults

    def draw(seed):
        faults = Faults(seed)
        faults.add("lake", "rename", "lost", times=None, probability=0.2)
        return [(faults.pick("lake", op) or (None,))[0] for op in ["rename", "read"] * 40]

    assert draw(3) == draw(3) != draw(4)
    assert set(draw(3)[1::2]) == {None}, "only renames are hit"
    assert 2 < draw(3).count("lost") < 16


def test_status_faults_carry_retry_after_strings_and_headers(emulators, lake):
    import requests

    emulators.fault("lake", "get_properties", status=503, retry_after="Wed, 21 Oct 2026 "
                    "07:28:00 GMT", headers={"retry-after-ms": "5"}, times=1)
    answer = requests.head(f"{emulators.account_url}/{lake.file_system_name}/f.bin",
                           verify=emulators.ca_path)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "Wed, 21 Oct 2026 07:28:00 GMT"
    assert answer.headers["retry-after-ms"] == "5"
