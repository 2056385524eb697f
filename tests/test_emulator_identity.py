"""The identity endpoint's App Service protocol (IDENTITY_ENDPOINT + IDENTITY_HEADER), and the
worker getting its tokens with the whole env file loaded, as a user's shell has it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest


@pytest.fixture
def app_service(env_file_environ):
    """This process's environment as the env file of ``emulate`` sets it."""
    return env_file_environ


@pytest.fixture
def identity_paths(emulators, monkeypatch):
    """The paths the identity endpoint serves during the test (see :func:`_served`)."""
    paths = []
    monkeypatch.setattr(emulators.set.identity, "on_request", lambda r: paths.append(r.path))
    return paths


def _served(paths):
    """The set of paths served, once there are some: the server records a request after its
    answer is sent, so the client may see the answer first."""
    deadline = time.monotonic() + 10
    while not paths and time.monotonic() < deadline:
        time.sleep(0.01)
    return set(paths)


def _get(env, header, **query):
    request = urllib.request.Request(env["IDENTITY_ENDPOINT"] + "?" + urlencode(
        dict({"api-version": "2019-08-01"}, **query)), headers={"X-IDENTITY-HEADER": header})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_azure_identity_takes_the_app_service_endpoint(emulators, app_service, identity_paths):
    from azure.identity import ManagedIdentityCredential

    credential = ManagedIdentityCredential(client_id=emulators.client_id, retry_total=0)
    token = credential.get_token("https://storage.azure.com/.default")
    claims = emulators.set.lake_app.issuer.verify(token.token, "https://storage.azure.com")
    assert claims.client_id == emulators.client_id
    assert _served(identity_paths) == {"/msi/token"}


def test_the_protocol_and_its_refusals(emulators, app_service):
    status, body = _get(app_service, app_service["IDENTITY_HEADER"],
                        resource="https://vault.azure.net", client_id=emulators.client_id)
    assert status == 200 and body["token_type"] == "Bearer"
    assert int(body["expires_on"]) > 0 and body["resource"] == "https://vault.azure.net"
    status, body = _get(app_service, "wrong", resource="https://vault.azure.net")
    assert status == 401 and "X-IDENTITY-HEADER" in body["message"]
    status, body = _get(app_service, app_service["IDENTITY_HEADER"],
                        resource="https://vault.azure.net", client_id="nobody")
    assert status == 400 and body["statusCode"] == 400
    status, body = _get(app_service, app_service["IDENTITY_HEADER"])
    assert status == 400 and "resource" in body["message"]


def test_the_worker_gets_its_tokens_with_the_env_file_loaded(emulators, app_service,
                                                            emulator_filesystem, identity_paths):
    from worker.testing import run_handler

    emulators.seed_secret("canary", "c4n4ry")
    emulators.seed_file(emulator_filesystem, "in.txt", b"from the lake")
    result = run_handler("handlers.lake_tasks:reads", {"path": "in.txt"})
    assert result.exit_code == 0, result.error
    assert result.return_value == "from the lake"
    assert _served(identity_paths) == {"/msi/token"}


def test_a_node_environment_keeps_to_imds(emulators, emulator_environ, emulator_filesystem,
                                          identity_paths):
    """The fixtures' environment is a node's: IMDS only, as on Batch."""
    from worker.emulators import APP_SERVICE_VARIABLES
    from worker.testing import run_handler

    assert not set(APP_SERVICE_VARIABLES) & set(emulator_environ)
    emulators.seed_file(emulator_filesystem, "in.txt", b"x")
    assert run_handler("handlers.lake_tasks:reads", {"path": "in.txt"}).exit_code == 0
    assert _served(identity_paths) == {"/metadata/identity/oauth2/token"}
