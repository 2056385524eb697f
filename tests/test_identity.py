"""A Batch node's tokens: the managed-identity endpoint's answers (a 429 is transient, an
unknown identity is not), the node's shared token cache (one fetch per identity and resource,
the others wait and read), its bad states and its permissions, and tasks on a node whose
endpoint is throttled as Azure's.

The emulators here run in this process with Azure's limits on the identity endpoint; a
clock that the tests move (or hold still) decides the per-second window, so no assertion
depends on how fast this machine is.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List

import pytest
from support import TESTS_DIR, clean_env, last_line, worker_cmd

from worker.config import Config
from worker.emulators import CLEARED_VARIABLES, EmulatorSet
from worker.emulators.handle import EmulatorHandle
from worker.emulators.identity_limits import Limits, Throttle
from worker.identity import NodeCredential, get_credential, reset_credential, token_error
from worker.imds import Refused, Unavailable, backoff_sleep, fetch_token
from worker.tokencache import Cached, Identity, SharedTokens, shared_folder

STORAGE = "https://storage.azure.com"
VAULT = "https://vault.azure.net"
SECRET = "busy-secret"


class Clock:
    """The limiter's clock; it moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def node_emulators():
    with EmulatorSet(identity_limits=Limits()) as emulators:
        handle = EmulatorHandle(emulators)
        handle.seed_secret(SECRET, "s3cr3t-value")
        handle.seed_file("data", "in/data.bin", b"x" * 1000)
        yield handle


@pytest.fixture
def emulators(node_emulators):
    node_emulators.reset_counts()
    node_emulators.clear_faults()
    yield node_emulators
    node_emulators.set.identity_app.throttle = Throttle(Limits())
    node_emulators.clear_faults()


def throttle(emulators, per_second: float, concurrent: int = 5) -> Clock:
    """Limits whose second never ends: exactly ``per_second`` token requests are served."""
    clock = Clock()
    emulators.set.identity_app.throttle = Throttle(Limits(concurrent, per_second), clock)
    return clock


def token_requests(emulators) -> int:
    return emulators.counts("identity").get("token", 0)


def prepare_shared(root: Path) -> Path:
    """What the start task makes (bootstrap/tokens.sh): the node's token folder."""
    folder = root / "batch-worker" / "tokens"
    folder.mkdir(parents=True)
    folder.chmod(0o1733)
    return folder


def node_env(emulators, shared: Path, **extra: str) -> Dict[str, str]:
    env = dict(emulators.environment(vm="tvm-busy"), AZ_BATCH_NODE_ID="tvm-busy",
               AZ_BATCH_NODE_SHARED_DIR=str(shared), WORKER_RETRY_TOTAL="2",
               WORKER_RETRY_BACKOFF="0")
    env.update(extra)
    return env


def credential(env: Dict[str, str]) -> NodeCredential:
    reset_credential()
    found = get_credential(Config.from_env(env))
    assert isinstance(found, NodeCredential)
    return found


def test_a_credential_is_not_reused_for_another_identity_endpoint(tmp_path):
    """A long-lived process (a test run, the pytest plugin) that meets a second emulator set
    gets a credential for it: one built for the first would present tokens the second's
    services refuse (401)."""
    reset_credential()
    first = Config.from_env({"AZURE_POD_IDENTITY_AUTHORITY_HOST": "https://identity-a.invalid"})
    again = Config.from_env({"AZURE_POD_IDENTITY_AUTHORITY_HOST": "https://identity-a.invalid"})
    other = Config.from_env({"AZURE_POD_IDENTITY_AUTHORITY_HOST": "https://identity-b.invalid"})
    assert get_credential(first) is get_credential(again)
    assert get_credential(first) is not get_credential(other)
    node = {"AZ_BATCH_NODE_ID": "tvm-1", "IDENTITY_ENDPOINT": "https://127.0.0.1:1001/vms/a"}
    one = get_credential(Config.from_env(dict(node, AZ_BATCH_NODE_SHARED_DIR=str(tmp_path / "a"))))
    two = get_credential(Config.from_env(dict(node, AZ_BATCH_NODE_SHARED_DIR=str(tmp_path / "b"))))
    assert one is not two  # another node's token folder
    reset_credential()


# -- the endpoint's answers ----------------------------------------------------------------------


def test_a_throttled_endpoint_is_transient_whatever_its_body_says(emulators, tmp_path):
    throttle(emulators, per_second=0)
    env = node_env(emulators, tmp_path, WORKER_TOKEN_CACHE="off")
    with pytest.raises(Exception) as caught:
        credential(env).get_token(STORAGE + "/.default")
    error = token_error(caught.value, Config.from_env(env), "the lake")
    assert error.exit_code == 3 and caught.value.exit_code == 3
    endpoint = env["AZURE_POD_IDENTITY_AUTHORITY_HOST"].rstrip("/")
    assert str(error) == (
        f"no token for https://storage.azure.com: the managed-identity endpoint {endpoint} "
        "(AZURE_POD_IDENTITY_AUTHORITY_HOST) throttled the requests (429 Temporarily "
        "throttled, too many requests), after 2 retries; the node's tasks asked faster than "
        "the endpoint allows: a retry of the task may succeed (fewer task slots per node ask "
        "less)")
    assert token_requests(emulators) == 3  # WORKER_RETRY_TOTAL=2 retries


def test_off_batch_a_throttled_endpoint_is_transient_too(emulators, monkeypatch):
    """DefaultAzureCredential (a laptop, emulate's limits) words the 429 as a refusal; the
    worker tells it from one by the status its pipeline saw."""
    throttle(emulators, per_second=0)
    for name in CLEARED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env = dict(emulators.environment(), WORKER_RETRY_TOTAL="1", WORKER_RETRY_BACKOFF="0")
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", env["AZURE_POD_IDENTITY_AUTHORITY_HOST"])
    reset_credential()
    config = Config.from_env(env)
    with pytest.raises(Exception) as caught:
        get_credential(config).get_token(STORAGE + "/.default")
    error = token_error(caught.value, config, "the lake")
    assert error.exit_code == 3, error
    assert "throttled the requests (429)" in str(error)
    with pytest.raises(Exception) as caught:  # what azure-core's pipelines call
        get_credential(config).get_token_info(STORAGE + "/.default")
    assert token_error(caught.value, config, "the vault").exit_code == 3
    unknown = Config.from_env(dict(env, AZURE_CLIENT_ID="99999999-0000-0000-0000-0000000000aa"))
    throttle(emulators, per_second=100)
    reset_credential()
    with pytest.raises(Exception) as caught:
        get_credential(unknown).get_token(STORAGE + "/.default")
    assert token_error(caught.value, unknown, "the lake").exit_code == 2
    reset_credential()


def test_an_unknown_identity_is_refused_at_once(emulators, tmp_path):
    env = node_env(emulators, tmp_path, AZURE_CLIENT_ID="99999999-0000-0000-0000-0000000000aa",
                   WORKER_TOKEN_CACHE="off")
    with pytest.raises(Exception) as caught:
        credential(env).get_token(VAULT + "/.default")
    error = token_error(caught.value, Config.from_env(env), "the vault")
    assert error.exit_code == 2
    assert "the managed-identity endpoint refused (400 invalid_request: Identity not found)" \
        in str(error)
    assert token_requests(emulators) == 1  # not retried


def test_retries_wait_for_retry_after_then_back_off_with_jitter(emulators):
    emulators.fault("identity", "token", "status", status=429, retry_after=0.25, times=1)
    emulators.fault("identity", "token", "status", status=503, times=2)
    waits: List[float] = []
    token = fetch_token(emulators.identity_url, STORAGE, None, retry_total=3, retry_backoff=2.0,
                        sleep=waits.append)
    assert token.token and token.expires_on > time.time() + 3600
    assert len(waits) == 3
    assert 0.25 <= waits[0] <= 0.25 * 1.2  # Retry-After, plus up to 20%
    assert 0.8 * 4 <= waits[1] <= 1.2 * 4 and 0.8 * 8 <= waits[2] <= 1.2 * 8
    assert len({round(backoff_sleep(1.0, 3), 6) for _ in range(20)}) > 1  # jitter


def test_endpoint_errors_are_classified(emulators):
    with pytest.raises(Refused) as refused:
        fetch_token(emulators.identity_url, STORAGE, "no-such-id", 3, 0.0)
    assert (refused.value.status, refused.value.code) == (400, "invalid_request")
    with pytest.raises(Unavailable) as down:
        fetch_token("http://127.0.0.1:9", STORAGE, None, 1, 0.0)
    assert down.value.status is None
    assert str(down.value).startswith("the managed-identity endpoint did not answer (")
    assert str(down.value).endswith(", after 1 retry")


# -- the shared cache: one fetch per identity and resource ------------------------------------


def test_tasks_of_a_node_share_one_token_per_identity_and_resource(emulators, tmp_path):
    folder = prepare_shared(tmp_path)
    env = node_env(emulators, tmp_path)
    first = credential(env).get_token(STORAGE + "/.default")
    for _ in range(5):  # later task processes (each its own credential)
        assert credential(env).get_token(STORAGE + "/.default") == first
    credential(env).get_token(VAULT + "/.default")
    assert token_requests(emulators) == 2
    mine = folder / str(os.geteuid())
    assert len(list(mine.glob("*.json"))) == 2
    other = node_env(emulators, tmp_path, AZURE_CLIENT_ID=emulators.reader_client_id)
    assert credential(other).get_token(STORAGE + "/.default").token != first.token
    assert token_requests(emulators) == 3  # another identity: its own token


def test_the_others_wait_for_the_one_fetching_then_read(emulators, tmp_path):
    prepare_shared(tmp_path)
    env = node_env(emulators, tmp_path)
    shared = SharedTokens.open(shared_folder(env))
    identity = Identity(emulators.identity_url + "/vms/tvm-busy", emulators.client_id, STORAGE)
    lock = os.open(str(shared.folder / (identity.key() + ".lock")), os.O_RDWR | os.O_CREAT,
                   0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # "another process" is fetching
    got: List[object] = []
    waiter = threading.Thread(target=lambda: got.append(
        credential(env).get_token(STORAGE + "/.default")))
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive() and not got  # it waits; it does not ask the endpoint
    shared.write(identity, Cached.new("token-of-the-other", int(time.time()) + 86400))
    os.close(lock)
    waiter.join(30)
    assert got[0].token == "token-of-the-other"
    assert token_requests(emulators) == 0


def test_when_the_fetch_fails_the_waiting_tasks_fail_alike_at_once(emulators, tmp_path):
    """The endpoint throttles every request: the task that holds the lock retries, fails;
    the tasks that waited for it fail the same way (exit 3) without a request of their own,
    rather than each retrying in turn under the lock; a while later one tries again."""
    prepare_shared(tmp_path)
    throttle(emulators, per_second=0)
    env = node_env(emulators, tmp_path)
    errors: List[BaseException] = []

    def task() -> None:
        try:
            credential(env).get_token(STORAGE + "/.default")
        except Exception as e:  # noqa: BLE001 - the test looks at each task's error
            errors.append(e)

    threads = [threading.Thread(target=task) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(errors) == 4 and all(e.exit_code == 3 for e in errors)
    assert token_requests(emulators) == 3  # one task's request and its 2 retries
    assert sum("another task of this node, moments ago" in str(e) for e in errors) == 3
    shared = SharedTokens.open(shared_folder(env))
    identity = Identity(emulators.identity_url + "/vms/tvm-busy", emulators.client_id, STORAGE)
    (shared.folder / (identity.key() + ".failed")).write_text(
        json.dumps({"at": time.time() - 60, "kind": "RetryableError", "message": "old"}))
    throttle(emulators, per_second=20)
    assert credential(env).get_token(STORAGE + "/.default").token  # tried again
    assert not (shared.folder / (identity.key() + ".failed")).exists()


def test_a_token_due_for_refresh_is_refreshed_by_one_while_others_use_it(emulators, tmp_path):
    prepare_shared(tmp_path)
    env = node_env(emulators, tmp_path)
    shared = SharedTokens.open(shared_folder(env))
    identity = Identity(emulators.identity_url + "/vms/tvm-busy", emulators.client_id, STORAGE)
    now = int(time.time())
    shared.write(identity, Cached("old-token", now + 3000, now - 1))  # past its half-life
    with shared.lock(identity, wait=True):  # another process is refreshing it
        assert credential(env).get_token(STORAGE + "/.default").token == "old-token"
    assert token_requests(emulators) == 0
    new = credential(env).get_token(STORAGE + "/.default")  # this one refreshes it
    assert new.token != "old-token" and token_requests(emulators) == 1
    assert shared.read(identity).token == new.token


def test_a_failed_refresh_keeps_the_token_while_it_is_valid(emulators, tmp_path, caplog):
    prepare_shared(tmp_path)
    env = node_env(emulators, tmp_path)
    shared = SharedTokens.open(shared_folder(env))
    identity = Identity(emulators.identity_url + "/vms/tvm-busy", emulators.client_id, STORAGE)
    now = int(time.time())
    shared.write(identity, Cached("still-valid", now + 3000, now - 1))
    throttle(emulators, per_second=0)
    with caplog.at_level(logging.WARNING, "worker.identity"):
        assert credential(env).get_token(STORAGE + "/.default").token == "still-valid"
    assert "could not refresh the token for https://storage.azure.com" in caplog.text


# -- bad states of the cache -------------------------------------------------------------------


def _expired(identity: Identity) -> str:
    now = int(time.time())
    return json.dumps(dict(identity._asdict(), format=1, token="expired", expires_on=now + 60,
                           refresh_on=now - 600))


def _other_identity(identity: Identity) -> str:
    now = int(time.time())
    return json.dumps(dict(identity._replace(client_id="someone-else")._asdict(), format=1,
                           token="not-mine", expires_on=now + 86400, refresh_on=now + 43200))


BAD_STATES = {
    "corrupt": lambda path, identity: path.write_text('{"token": "half a fi'),
    "empty": lambda path, identity: path.write_bytes(b""),
    "expired": lambda path, identity: path.write_text(_expired(identity)),
    "another identity's": lambda path, identity: path.write_text(_other_identity(identity)),
    "not JSON at all": lambda path, identity: path.write_bytes(os.urandom(300)),
    "unreadable (a symlink loop)": lambda path, identity: os.symlink(path.name, str(path)),
}


@pytest.mark.parametrize("state", sorted(BAD_STATES))
def test_a_bad_cache_file_is_ignored_and_replaced(emulators, tmp_path, state):
    prepare_shared(tmp_path)
    env = node_env(emulators, tmp_path)
    shared = SharedTokens.open(shared_folder(env))
    identity = Identity(emulators.identity_url + "/vms/tvm-busy", emulators.client_id, STORAGE)
    path = shared.folder / (identity.key() + ".json")
    BAD_STATES[state](path, identity)
    token = credential(env).get_token(STORAGE + "/.default")
    assert token.token not in ("expired", "not-mine")
    assert token_requests(emulators) == 1
    assert path.is_file() and not path.is_symlink()
    assert json.loads(path.read_text())["token"] == token.token  # replaced
    credential(env).get_token(STORAGE + "/.default")
    assert token_requests(emulators) == 1  # and used by the next task


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000")
def test_a_cache_file_without_read_permission_is_replaced(emulators, tmp_path):
    prepare_shared(tmp_path)
    env = node_env(emulators, tmp_path)
    first = credential(env).get_token(STORAGE + "/.default")
    path = next((tmp_path / "batch-worker" / "tokens" / str(os.geteuid())).glob("*.json"))
    path.chmod(0)
    assert credential(env).get_token(STORAGE + "/.default").token
    assert token_requests(emulators) == 2 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first


# -- permissions -------------------------------------------------------------------------------


def test_token_files_are_readable_only_by_the_task_user(emulators, tmp_path):
    folder = prepare_shared(tmp_path)
    credential(node_env(emulators, tmp_path)).get_token(STORAGE + "/.default")
    mine = folder / str(os.geteuid())
    assert stat.S_IMODE(mine.stat().st_mode) == 0o700 and mine.stat().st_uid == os.geteuid()
    files = list(mine.iterdir())
    assert {p.suffix for p in files} == {".json", ".lock"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def _not_shared(emulators, tmp_path, caplog, why: str) -> None:
    env = node_env(emulators, tmp_path)
    with caplog.at_level(logging.WARNING, "worker.tokencache"):
        credential(env).get_token(STORAGE + "/.default")
        credential(env).get_token(STORAGE + "/.default")
    assert token_requests(emulators) == 2  # each process on its own
    assert why in caplog.text


def test_a_user_folder_open_to_others_is_not_used(emulators, tmp_path, caplog):
    mine = prepare_shared(tmp_path) / str(os.geteuid())
    mine.mkdir(mode=0o755)
    mine.chmod(0o755)
    _not_shared(emulators, tmp_path, caplog, "is open to other users (mode 755)")
    assert list(mine.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a folder to another user")
def test_a_user_folder_of_another_user_is_not_used(emulators, tmp_path, caplog):
    mine = prepare_shared(tmp_path) / str(os.geteuid())
    mine.mkdir(mode=0o700)
    os.chown(str(mine), 65534, 65534)
    _not_shared(emulators, tmp_path, caplog, "belongs to another user (uid 65534)")


def test_without_the_start_tasks_folder_or_switched_off_tokens_are_per_process(emulators,
                                                                                tmp_path):
    env = node_env(emulators, tmp_path)  # no batch-worker/tokens: no start task made it
    credential(env).get_token(STORAGE + "/.default")
    credential(env).get_token(STORAGE + "/.default")
    assert token_requests(emulators) == 2
    prepare_shared(tmp_path)
    off = node_env(emulators, tmp_path, WORKER_TOKEN_CACHE="off")
    credential(off).get_token(STORAGE + "/.default")
    assert token_requests(emulators) == 3
    assert not list((tmp_path / "batch-worker" / "tokens").iterdir())


def test_the_switch_is_checked():
    with pytest.raises(Exception) as caught:
        Config.from_env({"WORKER_TOKEN_CACHE": "maybe"})
    assert str(caught.value) == "WORKER_TOKEN_CACHE='maybe' is not valid; use one of: on, off"


# -- tasks on a throttled node -----------------------------------------------------------------


def _task_env(emulators, tmp_path: Path, shared: Path, task: str, **extra: str) -> Dict[str, str]:
    folder = tmp_path / "tasks" / task
    (folder / "wd").mkdir(parents=True)
    env = clean_env(**node_env(emulators, shared), AZ_BATCH_JOB_ID="busy",
                    AZ_BATCH_TASK_ID=task, AZ_BATCH_TASK_DIR=str(folder),
                    AZ_BATCH_TASK_WORKING_DIR=str(folder / "wd"))
    env.update(extra)
    return env


def _run_tasks(emulators, tmp_path: Path, shared: Path, count: int, **extra: str):
    """``count`` tasks at once, each reading a lake file and a secret."""
    procs = []
    for n in range(count):
        env = _task_env(emulators, tmp_path, shared, "t%d-%s" % (n, extra.get("WORKER_TOKEN_CACHE",
                                                                               "on")), **extra)
        procs.append(subprocess.Popen(
            worker_cmd("run", "handlers.busy_node:read_file_and_secret", "--param",
                       "path=in/data.bin", "--param", "secret=" + SECRET),
            cwd=str(TESTS_DIR), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))
    return [(p.wait(timeout=300), p.stderr.read(), p.stdout.read()) for p in procs]


def test_a_throttled_node_fails_tasks_without_the_shared_cache_and_not_with_it(emulators,
                                                                              tmp_path):
    """Six tasks at once, each needing a storage and a Key Vault token, on a node whose
    endpoint serves four token requests and then throttles for good: each process on its own
    needs twelve, so tasks fail (exit 3, throttled, never exit 2); with the node's cache the
    node needs two, and every task succeeds."""
    shared = tmp_path / "shared"
    prepare_shared(shared)
    throttle(emulators, per_second=4)
    alone = _run_tasks(emulators, tmp_path, shared, 6, WORKER_TOKEN_CACHE="off")
    failed = [(code, last_line(err)) for code, err, _ in alone if code != 0]
    assert len(failed) >= 4, alone  # 4 requests serve at most 2 tasks
    for code, line in failed:
        assert code == 3, line
        assert ") throttled the requests (429" in line, line

    throttle(emulators, per_second=4)
    emulators.reset_counts()
    together = _run_tasks(emulators, tmp_path, shared, 6)
    assert [code for code, _, _ in together] == [0] * 6, together
    assert token_requests(emulators) == 2  # one per resource for the whole node
    results = [json.loads(p.read_text()) for p in tmp_path.glob("tasks/*-on/wd/result.json")]
    assert len(results) == 6
    assert all(r["return_value"] == {"bytes": 1000, "secret_chars": 12,
                                     "azure_identity_imported": False} for r in results)


def test_a_task_that_finds_a_fresh_token_imports_no_azure_identity(emulators, tmp_path):
    prepare_shared(tmp_path)
    env = clean_env(**node_env(emulators, tmp_path))
    code = ("import sys; from worker.config import Config; from worker.identity import "
            "get_credential; c = get_credential(Config.from_env()); "
            "c.get_token('https://storage.azure.com/.default'); "
            "print(sorted(m for m in sys.modules if m.startswith('azure')))")
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=120)
    again = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=120)
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert again.stdout.strip() == "[]"  # not even azure-core
    assert token_requests(emulators) == 1
