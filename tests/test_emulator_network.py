"""The emulators' network model: one link shared by all connections, a latency per request.

These tests measure elapsed time on purpose: what they test is a model of time. The
tolerance is stated once (``TOLERANCE``); the transfers are sized to take one to three
seconds, so that the client's own work (TLS, copies) stays well inside it.
"""

from __future__ import annotations

import os
import threading
import time
from typing import List

import pytest

MIB = 1 << 20
TOLERANCE = 0.25  # measured within +-25% of bytes / rate (+ latency x requests)


def _link_seconds(nbytes: int, mbps: float) -> float:
    return nbytes * 8 / (mbps * 1e6)


def _assert_near(elapsed: float, expected: float) -> None:
    low, high = expected * (1 - TOLERANCE), expected * (1 + TOLERANCE)
    assert low <= elapsed <= high, "took %.2f s, expected %.2f s +-%d%%" % (
        elapsed, expected, TOLERANCE * 100)


@pytest.fixture
def fs(emulators, emulator_environ, emulator_filesystem):
    client = emulators.service_client(max_single_get_size=4 * MIB, max_chunk_get_size=4 * MIB)
    return client.get_file_system_client(emulator_filesystem)


def _warm(fs) -> None:
    """Token and connection first: the measured time is the transfer's alone."""
    fs.get_file_system_properties()


def test_a_download_follows_the_link_rate(emulators, fs):
    emulators.seed_file(fs.file_system_name, "big.bin", os.urandom(64 * MIB))
    _warm(fs)
    emulators.network(link_mbps=200)
    started = time.monotonic()
    data = fs.get_file_client("big.bin").download_file().readall()
    elapsed = time.monotonic() - started
    assert len(data) == 64 * MIB
    _assert_near(elapsed, _link_seconds(64 * MIB, 200))  # 2.7 s


def test_an_upload_follows_the_link_rate(emulators, fs):
    data = os.urandom(24 * MIB)
    _warm(fs)
    emulators.network(link_mbps=200)
    started = time.monotonic()
    fs.get_file_client("up.bin").upload_data(data, overwrite=True, chunk_size=8 * MIB)
    elapsed = time.monotonic() - started
    assert emulators.read_file(fs.file_system_name, "up.bin") == data
    _assert_near(elapsed, _link_seconds(24 * MIB, 200))  # 1.0 s


@pytest.mark.parametrize("connections", [2, 4])
def test_parallel_connections_share_one_link(emulators, fs, connections):
    total = 40 * MIB
    for i in range(connections):
        emulators.seed_file(fs.file_system_name, "part-%d" % i, os.urandom(total // connections))
    clients = [fs.get_file_client("part-%d" % i) for i in range(connections)]
    for client in clients:  # one warm connection each, so all start at once
        client.get_file_properties()
    emulators.network(link_mbps=200)
    times: List[float] = [0.0] * connections
    barrier = threading.Barrier(connections)

    def download(i: int) -> None:
        barrier.wait()
        started = time.monotonic()
        assert len(clients[i].download_file().readall()) == total // connections
        times[i] = time.monotonic() - started

    started = time.monotonic()
    threads = [threading.Thread(target=download, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    expected = _link_seconds(total, 200)  # 1.7 s: the same as one connection moving it all
    _assert_near(elapsed, expected)
    for seconds in times:  # each moved 1/N of the bytes in about the whole time: 1/N the rate
        _assert_near(seconds, expected)


def test_latency_applies_to_every_request(emulators, fs):
    emulators.seed_file(fs.file_system_name, "small.txt", b"x")
    client = fs.get_file_client("small.txt")
    client.get_file_properties()
    emulators.network(latency_ms=150)
    emulators.reset_counts()
    started = time.monotonic()
    for _ in range(4):
        client.get_file_properties()
    assert client.download_file().readall() == b"x"
    elapsed = time.monotonic() - started
    requests = sum(emulators.counts("lake").values())
    assert requests == 5
    _assert_near(elapsed, requests * 0.150)


def test_latency_overlaps_for_parallel_requests(emulators, fs):
    emulators.seed_file(fs.file_system_name, "small.txt", b"x")
    clients = [fs.get_file_client("small.txt") for _ in range(4)]
    for client in clients:
        client.get_file_properties()
    emulators.network(latency_ms=400)
    started = time.monotonic()
    threads = [threading.Thread(target=c.get_file_properties) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _assert_near(time.monotonic() - started, 0.400)  # one latency, not four


def test_latency_applies_to_the_vault_too(emulators, emulator_environ):
    emulators.seed_secret("slow", "s")
    vault = emulators.secret_client()
    assert vault.get_secret("slow").value == "s"  # the challenge round, before the model
    emulators.network(latency_ms=300)
    started = time.monotonic()
    assert vault.get_secret("slow").value == "s"
    assert time.monotonic() - started >= 0.300


def test_the_model_can_be_removed_and_checks_its_input(emulators):
    network = emulators.set.network
    emulators.network(link_mbps=100, latency_ms=5)
    assert (network.link_mbps, network.latency_ms, network.limited) == (100, 5, True)
    emulators.network()
    assert (network.link_mbps, network.latency_ms, network.limited) == (None, 0, False)
    with pytest.raises(ValueError, match="link_mbps must be a positive number"):
        emulators.network(link_mbps=0)
    with pytest.raises(ValueError, match="latency_ms must be zero or more"):
        emulators.network(latency_ms=-1)


def test_the_fixture_removes_the_model_after_each_test_part_1(emulators):
    emulators.network(link_mbps=1, latency_ms=1000)


def test_the_fixture_removes_the_model_after_each_test_part_2(emulators):
    assert not emulators.set.network.limited and emulators.set.network.latency_ms == 0


def test_an_emulator_set_starts_with_a_model(monkeypatch):
    from worker.emulators import CLEARED_VARIABLES, EmulatorSet
    from worker.emulators.handle import EmulatorHandle

    for name in CLEARED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with EmulatorSet(link_mbps=80, latency_ms=100) as raw:
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", raw.identity_url)
        emulators = EmulatorHandle(raw)
        emulators.seed_file("data", "f.bin", os.urandom(10 * MIB))
        client = emulators.service_client(max_single_get_size=16 * MIB).get_file_client(
            "data", "f.bin")
        client.get_file_properties()
        emulators.reset_counts()
        started = time.monotonic()
        assert len(client.download_file().readall()) == 10 * MIB
        elapsed = time.monotonic() - started
        assert emulators.counts("lake") == {"read": 1}
        _assert_near(elapsed, _link_seconds(10 * MIB, 80) + 0.100)  # 1.15 s
