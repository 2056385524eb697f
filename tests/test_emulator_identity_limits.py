"""The managed-identity emulator: one endpoint per VM (a path prefix), Azure's limits per VM
(5 at once, 20 a second), IMDS's 429 when they are exceeded, and the switches of ``emulate``."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Optional, Tuple

import pytest
from azure.identity import ManagedIdentityCredential

from worker.emulators import CLEARED_VARIABLES, EmulatorSet
from worker.emulators.identity_limits import (
    THROTTLED_BODY,
    Limits,
    Throttle,
    VmLimiter,
    split_vm,
)

STORAGE = "https://storage.azure.com"


class Clock:
    """A clock the test moves: the per-second window without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def get_token(base: str) -> Tuple[int, dict, Optional[str]]:
    """One IMDS token request: (status, JSON body, Content-Type)."""
    url = base + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + STORAGE
    request = urllib.request.Request(url, headers={"Metadata": "true"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read()), answer.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        assert e.headers.get("Retry-After") is None  # IMDS documents none
        return e.code, json.loads(e.read()), e.headers["Content-Type"]


@pytest.fixture(scope="module")
def limited():
    with EmulatorSet(identity_limits=Limits()) as emulators:
        yield emulators


@pytest.fixture
def clock(limited):
    """The limits with a clock that only moves when the test moves it."""
    clock = Clock()
    limited.identity_app.throttle = Throttle(Limits(), clock)
    return clock


def test_a_vm_is_a_path_prefix():
    assert split_vm("/metadata/identity/oauth2/token") == ("default", "/metadata/identity/oauth2/token")
    assert split_vm("/vms/tvmps_1.a-b/msi/token") == ("tvmps_1.a-b", "/msi/token")
    assert split_vm("/vms/node7") == ("node7", "/")
    assert split_vm("/vms/../x") == ("default", "/vms/../x")  # not a name: no VM


def test_twenty_a_second_then_429_with_imds_body(limited, clock):
    answers = [get_token(limited.identity_url) for _ in range(22)]
    assert [a[0] for a in answers] == [200] * 20 + [429] * 2
    status, body, content_type = answers[-1]
    assert body == THROTTLED_BODY == {"error": "invalid_request",
                                      "error_description": "Temporarily throttled, too many requests"}
    assert content_type == "application/json; charset=utf-8"
    clock.now += 0.5
    assert get_token(limited.identity_url)[0] == 429  # still within the same second
    clock.now += 0.6
    assert get_token(limited.identity_url)[0] == 200  # the first ones left the window
    assert limited.identity_stats()["default"] == {"served": 21, "throttled": 3}


def test_each_vm_has_its_own_limits(limited, clock):
    for _ in range(20):
        assert get_token(limited.vm_identity_url("node-a"))[0] == 200
    assert get_token(limited.vm_identity_url("node-a"))[0] == 429
    assert get_token(limited.vm_identity_url("node-b"))[0] == 200
    assert get_token(limited.identity_url)[0] == 200  # VM "default"
    stats = limited.identity_stats()
    assert stats["node-a"] == {"served": 20, "throttled": 1}
    assert stats["node-b"] == {"served": 1, "throttled": 0}


def test_five_at_once():
    limiter = VmLimiter(Limits(concurrent=5, per_second=1000), Clock())
    assert [limiter.enter() for _ in range(6)] == [True] * 5 + [False]
    limiter.leave()
    assert limiter.enter()
    assert (limiter.served, limiter.throttled) == (6, 1)


def test_a_slow_endpoint_refuses_a_sixth_request_while_five_are_answered(limited):
    """With a service time (--identity-latency-ms), requests overlap as on Azure: the sixth
    of six sent at once is throttled by the limit on requests at once."""
    limited.identity_app.throttle = Throttle(Limits(latency=2.0), Clock())
    base = limited.vm_identity_url("node-slow")
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(lambda _: get_token(base)[0], range(6)))
    assert statuses == [200] * 5 + [429]


def test_an_unknown_path_is_not_counted(limited, clock):
    request = urllib.request.Request(limited.vm_identity_url("node-c") + "/nothing/here")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 404
    assert "node-c" not in limited.identity_stats()


def test_azure_identity_gets_tokens_from_a_vm_prefix(limited, monkeypatch):
    for name in CLEARED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", limited.vm_identity_url("sdk-vm"))
    client_id = limited.config.identities[0].client_id
    token = ManagedIdentityCredential(client_id=client_id, retry_total=0).get_token(
        STORAGE + "/.default")
    assert limited.lake_app.issuer.verify(token.token, STORAGE).client_id == client_id
    assert limited.identity_stats()["sdk-vm"]["served"] == 1


def test_without_limits_nothing_is_throttled():
    with EmulatorSet() as emulators:
        assert all(get_token(emulators.identity_url)[0] == 200 for _ in range(40))
        assert emulators.identity_stats() == {}


def _emulate(tmp_path, *args: str) -> Tuple[subprocess.Popen, dict]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_VARIABLES}
    env_file = tmp_path / "emu.env"
    proc = subprocess.Popen([sys.executable, "-m", "worker", "emulate", "--quiet",
                             "--env-file", str(env_file), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not env_file.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "emulate never became ready"
        time.sleep(0.05)
    return proc, dict(line.split("=", 1) for line in env_file.read_text().splitlines())


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return err


def test_emulate_limits_each_vm_and_counts_at_the_stop(tmp_path):
    proc, env = _emulate(tmp_path, "--identity-per-second", "3", "--identity-concurrent", "2")
    base = env["AZURE_POD_IDENTITY_AUTHORITY_HOST"]
    statuses = [get_token(base + "/vms/n1")[0] for _ in range(10)]
    err = _stop(proc)
    served = statuses.count(200)
    assert statuses[:3] == [200] * 3 and 429 in statuses  # 3 a second
    assert ("emulate: identity token requests: VM n1 %d served, %d throttled (429)"
            % (served, 10 - served)) in err


def test_emulate_has_azures_limits_by_default():
    import argparse

    from worker.emulators.cli import _identity_limits, add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert _identity_limits(parser.parse_args([])) == Limits(concurrent=5, per_second=20,
                                                             latency=0.0)
    assert _identity_limits(parser.parse_args(["--identity-latency-ms", "30"])).latency == 0.03
    assert _identity_limits(parser.parse_args(["--no-identity-limits"])) is None


def test_emulate_lifts_the_limits_on_request(tmp_path):
    proc, env = _emulate(tmp_path, "--no-identity-limits")
    base = env["AZURE_POD_IDENTITY_AUTHORITY_HOST"]
    assert all(get_token(base)[0] == 200 for _ in range(30))
    assert "identity token requests" not in _stop(proc)


def test_emulate_refuses_a_limit_below_one(tmp_path):
    result = subprocess.run([sys.executable, "-m", "worker", "emulate",
                             "--identity-concurrent", "0"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "--identity-concurrent: must be 1 or more, not 0" in result.stderr
