"""ctx.secrets from Key Vault: the real SecretClient against the vault emulator over HTTPS,
with tokens from the IMDS emulator."""

from __future__ import annotations

import os

import pytest

from worker import RetryableError
from worker.config import Config
from worker.secrets import SecretNotFound, open_secrets
from worker.vault import SECRETS_ROLE, is_loopback

FAST = {"WORKER_RETRY_BACKOFF": "0", "WORKER_RETRY_TOTAL": "1"}


def secrets_for(environ, **extra):
    env = dict(os.environ)
    env.update(environ)
    env.update(FAST)
    env.update(extra)
    return open_secrets(Config.from_env(env))


def test_get_latest_and_by_version_cached_per_process(emulators, emulator_environ):
    first = emulators.seed_secret("db-password", "v1-value")
    emulators.seed_secret("db-password", "v2-value")
    secrets = secrets_for(emulator_environ)
    assert secrets["db-password"] == "v2-value"
    assert secrets.get("db-password", version=first) == "v1-value"
    before = emulators.counts("vault").get("get_secret")
    assert secrets["db-password"] == "v2-value"
    assert secrets.get("db-password", version=first) == "v1-value"
    assert emulators.counts("vault").get("get_secret") == before, "cached: no new request"
    secrets.close()


def test_a_missing_secret_names_secret_and_vault(emulators, emulator_environ):
    secrets = secrets_for(emulator_environ)
    with pytest.raises(SecretNotFound) as caught:
        secrets["no-such-secret"]
    message = str(caught.value)
    assert "secret 'no-such-secret' not found in the Key Vault https://127.0.0.1:" in message
    details = caught.value.service_details  # what Key Vault said, with the request ids
    assert details["status"] == 404 and details["error_code"] == "SecretNotFound"
    assert f"x-ms-request-id {details['request_id']}; client request id " \
           f"{details['client_request_id']})" in message
    assert secrets.get("no-such-secret", default="fallback") == "fallback"
    secrets.close()


def test_an_identity_without_rights_gets_a_permission_error(emulator_environ, monkeypatch):
    from worker.emulators import EmulatorSet
    from worker.emulators.config import parse_config

    lake_only = "44444444-4444-4444-4444-444444444444"
    raw = {"identities": [{"client_id": lake_only, "lake": [{"filesystem": "*"}]}],
           "secrets": {"db-password": "hidden-value"}}
    with EmulatorSet(parse_config(raw)) as own:
        env = own.environment(lake_only)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        secrets = secrets_for(env)
        with pytest.raises(PermissionError) as caught:
            secrets["db-password"]
        secrets.close()
    message = str(caught.value)
    assert lake_only in message and "'db-password'" in message and SECRETS_ROLE in message
    assert "hidden-value" not in message


@pytest.mark.parametrize("status", [503, 429])
def test_throttling_and_outages_that_outlive_the_retries_are_retryable(
        emulators, emulator_environ, status):
    emulators.seed_secret("db-password", "value")
    secrets = secrets_for(emulator_environ)
    emulators.fault("vault", "get_secret", "status", status=status, retry_after=0, times=None)
    with pytest.raises(RetryableError, match=str(status)):
        secrets["db-password"]
    secrets.close()


def test_a_throttled_read_is_retried_by_the_sdk(emulators, emulator_environ):
    emulators.seed_secret("db-password", "value")
    secrets = secrets_for(emulator_environ)
    secrets.get("warm-up", default=None)  # the challenge round trip, outside the fault
    emulators.fault("vault", "get_secret", "status", status=429, retry_after=0, times=1)
    assert secrets["db-password"] == "value"
    secrets.close()


@pytest.mark.parametrize("url, loopback", [
    ("https://127.0.0.1:8443", True), ("https://localhost:1", True), ("https://[::1]:2", True),
    ("https://myvault.vault.azure.net", False), ("https://127.0.0.1.nip.io", False),
])
def test_the_challenge_check_is_relaxed_only_for_loopback_hosts(url, loopback):
    assert is_loopback(url) is loopback
