"""What only the Data Lake store has: URL forms, identities and roles, retries and errors at
the boundary, the token cache, the proxy, big uploads, one credential per process. Against
the emulator over real HTTPS, with the real credential library."""

from __future__ import annotations

import os
import select
import socket
import socketserver
import threading
import time

import pytest

from worker import RetryableError
from worker.config import Config
from worker.errors import ConfigError
from worker.identity import describe_credential, get_credential
from worker.lake import Lake, open_store
from worker.lake.azure import AzureStore, FileSystemNotFound, parse_lake_url

FAST = {"WORKER_RETRY_BACKOFF": "0", "WORKER_RETRY_TOTAL": "2"}


def azure_config(environ, **extra) -> Config:
    env = dict(os.environ)
    env.update(environ)
    env.update(FAST)
    env.update(extra)
    return Config.from_env(env)


@pytest.mark.parametrize("url, expected", [
    ("abfss://data@acct.dfs.core.windows.net/in/2024",
     ("https://acct.dfs.core.windows.net", "data", "in/2024")),
    ("abfss://data@acct.dfs.core.windows.net", ("https://acct.dfs.core.windows.net", "data", "")),
    ("https://acct.dfs.core.windows.net/data/in/", ("https://acct.dfs.core.windows.net", "data", "in")),
    ("https://127.0.0.1:8443/devstoreaccount1/data/p/q",
     ("https://127.0.0.1:8443/devstoreaccount1", "data", "p/q")),
    ("https://localhost:8443/acct/data", ("https://localhost:8443/acct", "data", "")),
])
def test_lake_url_forms(url, expected):
    assert parse_lake_url(url) == expected


@pytest.mark.parametrize("url, message", [
    ("https://acct.dfs.core.windows.net/data?sv=2020&sig=abc", "must not carry a SAS token"),
    ("http://acct.dfs.core.windows.net/data", "https only"),
    ("https://acct.dfs.core.windows.net/", "names no file system"),
])
def test_bad_lake_urls_are_configuration_errors(url, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_lake_url(url)
    assert "sig=abc" not in str(caught.value)


def test_one_credential_per_process_shared_by_clients(emulator_environ):
    config = azure_config(emulator_environ)
    assert get_credential(config) is get_credential(Config.from_env(dict(os.environ, **FAST)))
    assert "DefaultAzureCredential" in describe_credential(config)
    on_node = azure_config(emulator_environ, AZ_BATCH_NODE_ID="tvm-1")
    assert describe_credential(on_node).startswith(
        "managed identity from the node's endpoint (client id ")
    assert type(get_credential(on_node)).__name__ == "NodeCredential"


def test_a_batch_node_uses_managed_identity_through_imds(emulators, emulator_environ):
    config = azure_config(emulator_environ, AZ_BATCH_NODE_ID="tvm-1")
    lake = Lake(open_store(config.lake_url, config=config), "run")
    lake.write_text("x.txt", "x")
    lake.commit()
    assert lake.read_text("x.txt") == "x"
    assert emulators.counts("identity"), "the token came from the IMDS emulator"
    lake.close()


def test_a_read_only_identity_gets_permission_errors_naming_the_role(emulators, emulator_environ):
    filesystem = emulator_environ["WORKER_LAKE_URL"].rsplit("/", 1)[1]
    emulators.seed_file(filesystem, "in/data.txt", b"readable")
    config = azure_config(emulator_environ, AZURE_CLIENT_ID=emulators.reader_client_id)
    lake = Lake(open_store(config.lake_url, config=config), "run")
    assert lake.read_text("in/data.txt") == "readable"
    with pytest.raises(PermissionError) as caught:
        lake.write_text("out/x.txt", "no")
    message = str(caught.value)
    assert emulators.reader_client_id in message
    assert "may not write 'out/x.txt'" in message  # the handler's path, not the staging one
    assert "Storage Blob Data Contributor" in message
    lake.close()


def test_read_permission_error_names_the_reader_role(emulator_environ, monkeypatch):
    from worker.emulators import EmulatorSet
    from worker.emulators.config import parse_config

    no_rights = "33333333-3333-3333-3333-333333333333"
    raw = {"identities": [{"client_id": no_rights, "lake": [
        {"filesystem": "other", "access": "r"}]}]}
    with EmulatorSet(parse_config(raw)) as own:
        env = own.environment(no_rights)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        store = AzureStore.from_url(env["WORKER_LAKE_URL"], azure_config(env))
        with pytest.raises(PermissionError) as caught:
            store.read_bytes("anything.txt")
        with pytest.raises(PermissionError) as ranged:  # the lean Get Blob path
            store.read_bytes("anything.txt", 0, 10)
        store.close()
    for error in (caught.value, ranged.value):
        assert "Storage Blob Data Reader" in str(error)
        assert no_rights in str(error)


def test_a_missing_file_system_is_named(emulator_environ):
    config = azure_config(emulator_environ)
    store = open_store(config.lake_url + "-gone/x", config=config)
    with pytest.raises(FileSystemNotFound, match="does not exist.*create it"):
        list(store.list("", recursive=False))


def test_a_transient_fault_is_retried(emulators, emulator_environ):
    config = azure_config(emulator_environ)
    lake = Lake(open_store(config.lake_url, config=config), "run")
    lake.write_text("x.txt", "x")
    lake.commit()
    emulators.fault("lake", "read", "status", status=503, times=2)
    assert lake.read_text("x.txt") == "x"
    assert emulators.counts("lake")["read"] == 3
    lake.close()


def ranged_store(emulators, emulator_environ, data: bytes):
    config = azure_config(emulator_environ)
    filesystem = config.lake_url.rsplit("/", 1)[1]
    emulators.seed_file(filesystem, "in/data.bin", data)
    emulators.reset_counts()
    return open_store(config.lake_url, config=config)


def test_ranged_reads_are_plain_get_blob_calls(emulators, emulator_environ):
    data = bytes(range(256)) * 40
    store = ranged_store(emulators, emulator_environ, data)
    assert store.read_bytes("in/data.bin", 100, 1000) == data[100:1100]
    assert store.read_bytes("in/data.bin", len(data) - 5, 100) == data[-5:]  # short at the end
    assert store.read_bytes("in/data.bin", len(data), 10) == b""  # past the end: nothing
    assert store.read_bytes("in/data.bin", 7, 0) == b""
    assert emulators.counts("lake") == {"read": 3}  # one request each, no properties call
    with pytest.raises(FileNotFoundError, match="'in/none.bin'.*404 BlobNotFound"):
        store.read_bytes("in/none.bin", 0, 10)
    store.close()


def test_ranged_reads_are_retried_on_transient_faults(emulators, emulator_environ):
    data = b"0123456789" * 1000
    store = ranged_store(emulators, emulator_environ, data)
    emulators.fault("lake", "read", "status", status=503, times=2)
    assert store.read_bytes("in/data.bin", 10, 20) == data[10:30]
    assert emulators.counts("lake")["read"] == 3
    emulators.fault("lake", "read", "status", status=503, times=None)
    with pytest.raises(RetryableError, match="503") as caught:
        store.read_bytes("in/data.bin", 0, 10)
    assert caught.value.exit_code == 3
    store.close()


def test_reads_pinned_to_an_etag_fail_retryably_once_the_file_changed(
        emulators, emulator_environ):
    store = ranged_store(emulators, emulator_environ, b"version one")
    etag = store.info("in/data.bin").etag
    assert store.read_bytes("in/data.bin", 0, 7, etag=etag) == b"version"
    assert store.read_bytes("in/data.bin", etag=etag) == b"version one"
    store.write_bytes("in/data.bin", b"version two")
    for length in (7, None):  # the lean ranged path and the SDK's download
        with pytest.raises(RetryableError, match="changed while it was being read") as caught:
            store.read_bytes("in/data.bin", 0, length, etag=etag)
        assert caught.value.exit_code == 3
    assert store.read_bytes("in/data.bin", 0, 7) == b"version"  # unpinned: the new one
    opened = store.open_read("in/data.bin").raw  # an open file stays the version it opened
    assert opened.read(3) == b"ver"  # (each raw read is one ranged read)
    store.write_bytes("in/data.bin", b"version three, longer")
    with pytest.raises(RetryableError, match="changed while it was being read"):
        opened.read()
    store.close()


def test_a_download_is_pieces_of_one_version_in_parallel(emulators, emulator_environ, tmp_path):
    config = azure_config(emulator_environ, WORKER_LAKE_CHUNK_SIZE="65536")
    filesystem = config.lake_url.rsplit("/", 1)[1]
    data = os.urandom(10 * 65536 + 123)
    emulators.seed_file(filesystem, "in/big.bin", data)
    emulators.seed_file(filesystem, "in/empty.bin", b"")
    emulators.reset_counts()
    store = open_store(config.lake_url, config=config)
    store.download_file("in/big.bin", str(tmp_path / "big.bin"))
    assert (tmp_path / "big.bin").read_bytes() == data
    assert emulators.counts("lake") == {"read": 11}  # 10 pieces + the rest, nothing else
    store.download_file("in/empty.bin", str(tmp_path / "empty.bin"))
    assert (tmp_path / "empty.bin").read_bytes() == b""
    assert store.read_bytes("in/big.bin") == data  # whole reads are pieces too
    assert store.read_bytes("in/big.bin", 70000) == data[70000:]
    assert store.read_bytes("in/empty.bin") == b""
    emulators.fault("lake", "read", "truncate", times=2)  # cut pieces are fetched again
    store.download_file("in/big.bin", str(tmp_path / "again.bin"))
    assert (tmp_path / "again.bin").read_bytes() == data

    read_head = store.rest.read_head

    def replaced_after_the_first_piece(*args, **kwargs):
        got = read_head(*args, **kwargs)
        store.write_bytes("in/big.bin", b"a new version")
        return got

    store.rest.read_head = replaced_after_the_first_piece
    with pytest.raises(RetryableError, match="'in/big.bin' .* changed while it was being read"):
        store.download_file("in/big.bin", str(tmp_path / "mixed.bin"))
    wait_until_quiet(emulators)  # pieces in flight at the error end in the background
    store.close()


def wait_until_quiet(emulators, quiet: float = 0.3, limit: float = 10.0) -> None:
    """Wait until the lake has had no request for ``quiet`` seconds, so that requests a test
    left in flight (a failed transfer does not wait for its other pieces) are not counted
    by the next one."""
    deadline = time.monotonic() + limit
    last = None
    while time.monotonic() < deadline:
        now = emulators.counts("lake")
        if now == last:
            return
        last = now
        time.sleep(quiet)


@pytest.mark.parametrize("kind", ["truncate", "drop"])
def test_a_ranged_read_cut_off_is_fetched_again(emulators, emulator_environ, kind):
    data = os.urandom(3 << 20)
    store = ranged_store(emulators, emulator_environ, data)
    emulators.fault("lake", "read", kind, times=2)
    assert store.read_bytes("in/data.bin", 1000, 2 << 20) == data[1000:1000 + (2 << 20)]
    assert emulators.counts("lake")["read"] == 3
    emulators.fault("lake", "read", kind, times=None)
    with pytest.raises(RetryableError, match="after the retries"):
        store.read_bytes("in/data.bin", 0, 1 << 20)
    store.close()


def test_a_small_write_is_one_put_and_a_commit_costs_five_requests_more_than_its_renames(
        emulators, emulator_environ):
    config = azure_config(emulator_environ)
    lake = Lake(open_store(config.lake_url, config=config), "run")
    lake.write_text("warm/up.txt", "x")  # the staging folder is made once per run
    emulators.reset_counts()
    lake.write_bytes("a/b/one.bin", b"1" * 1000)
    assert emulators.counts("lake") == {"put_blob": 1}
    lake.commit()
    # put_blob: the claim and the commit record; create: the parents a/b and warm; delete:
    # the task's staging folder, the claim and the emptied claims folder; and once per
    # store, before its first commit, whether the account has a hierarchical namespace
    assert emulators.counts("lake") == {"put_blob": 3, "create": 2, "rename": 2, "delete": 3,
                                        "get_account_info": 1}
    emulators.reset_counts()
    lake.write_bytes("c.bin", b"2")
    lake.write_bytes("d.bin", b"3")
    lake.commit()
    assert "get_account_info" not in emulators.counts("lake")
    assert lake.read_bytes("a/b/one.bin") == b"1" * 1000
    lake.close()


@pytest.mark.parametrize("status", [503, 500, 429])
def test_faults_that_outlive_the_retries_are_retryable(emulators, emulator_environ, status):
    config = azure_config(emulator_environ)
    lake = Lake(open_store(config.lake_url, config=config), "run")
    emulators.fault("lake", "*", "status", status=status, times=None)
    with pytest.raises(RetryableError, match=str(status)) as caught:
        lake.write_text("x.txt", "x")
    assert caught.value.exit_code == 3
    lake.close()


def test_a_dropped_connection_that_persists_is_retryable(emulators, emulator_environ):
    config = azure_config(emulator_environ)
    store = open_store(config.lake_url, config=config)
    store.write_bytes("x.txt", b"x")
    emulators.fault("lake", "get_properties", "drop", times=None)
    with pytest.raises(RetryableError, match="after the retries"):
        store.info("x.txt")
    store.close()


def test_a_folder_deleted_behind_our_back_is_made_again_at_commit(emulator_environ):
    config = azure_config(emulator_environ)
    mine, other = (Lake(open_store(config.lake_url, config=config), run) for run in "ab")
    mine.write_text("d/x.txt", "x")
    mine.commit()
    other.delete("d", recursive=True)  # another task; our store still thinks d/ exists
    mine.write_text("d/y.txt", "y")
    mine.commit()
    assert other.read_text("d/y.txt") == "y"
    mine.close()
    other.close()


def test_listings_follow_the_continuation_page_by_page(emulators, emulator_environ,
                                                      monkeypatch):
    """List Paths answers at most a page (5000 on the service); the next pages are asked
    for with the continuation the last answer named, until it names none."""
    import worker.lake.rest as rest

    config = azure_config(emulator_environ)
    filesystem = config.lake_url.rsplit("/", 1)[1]
    for i in range(5):
        emulators.seed_file(filesystem, f"many/f{i}.txt", b"%d" % i)
    monkeypatch.setattr(rest, "_PAGE", 2)
    emulators.reset_counts()
    store = open_store(config.lake_url, config=config)
    found = list(store.list("many", recursive=True))
    assert [(f.path, f.size, f.is_dir) for f in found] == [
        (f"many/f{i}.txt", 1, False) for i in range(5)]
    assert all(f.etag and f.modified for f in found)
    assert sum(emulators.counts("lake").values()) == 3  # pages of 2, 2 and 1
    with pytest.raises(FileNotFoundError, match="'none'"):
        list(store.list("none", recursive=False))
    store.close()


class CountingCredential:
    """The real managed-identity credential, counting its calls; with ``lifetime`` the tokens
    it hands out claim to expire that many seconds from now (the emulator still accepts them:
    they are the real ones)."""

    def __init__(self, credential, lifetime=None):
        self.credential = credential
        self.lifetime = lifetime
        self.calls = 0

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        self.calls += 1
        token = self.credential.get_token(*scopes, **kwargs)
        if self.lifetime is None:
            return token
        return AccessToken(token.token, int(time.time()) + self.lifetime)


def rest_with(credential, config):
    from worker.lake.azure import _blob_url
    from worker.lake.http import LakeHttp
    from worker.lake.rest import LakeRest

    account_url, filesystem, _ = parse_lake_url(config.lake_url)
    http = LakeHttp(credential, 8, config.environ, account_url, config.retry_total,
                    config.retry_backoff)
    return LakeRest(f"{_blob_url(account_url)}/{filesystem}", f"{account_url}/{filesystem}", http)


@pytest.mark.parametrize("lifetime, calls", [(None, 1), (3600, 1), (200, 5)])
def test_the_token_is_asked_for_once_until_five_minutes_before_it_expires(
        emulators, emulator_environ, lifetime, calls):
    config = azure_config(emulator_environ)
    filesystem = config.lake_url.rsplit("/", 1)[1]
    emulators.seed_file(filesystem, "t.bin", b"0123456789")
    credential = CountingCredential(get_credential(config), lifetime)
    rest = rest_with(credential, config)
    for i in range(5):
        assert rest.read("t.bin", i, 2) == b"0123456789"[i:i + 2]
    assert credential.calls == calls
    rest.close()


def test_a_throttled_read_waits_for_its_retry_after(emulators, emulator_environ):
    store = ranged_store(emulators, emulator_environ, b"abc")  # no backoff of its own (FAST)
    emulators.fault("lake", "read", "status", status=429, retry_after=0.4, times=1)
    started = time.monotonic()
    assert store.read_bytes("in/data.bin", 0, 3) == b"abc"
    assert time.monotonic() - started >= 0.4
    assert emulators.counts("lake")["read"] == 2
    store.close()


class ConnectProxy(socketserver.ThreadingTCPServer):
    """A real HTTPS proxy on loopback: answers CONNECT host:port, then relays bytes both
    ways; ``tunnels`` lists the targets it was asked for. With ``credentials``
    (``user:password``) it answers 407 to a CONNECT without them, as a corporate proxy
    does."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, credentials=None):
        self.tunnels = []
        self.refused = 0
        self.expected = None
        if credentials is not None:
            import base64

            self.expected = "Basic " + base64.b64encode(credentials.encode()).decode()
        super().__init__(("127.0.0.1", 0), ConnectHandler)


class ConnectHandler(socketserver.StreamRequestHandler):
    def handle(self):
        target = self.rfile.readline().split()[1].decode()
        headers = {}
        while True:
            line = self.rfile.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        expected = self.server.expected
        if expected is not None and headers.get("proxy-authorization") != expected:
            self.server.refused += 1
            self.wfile.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                             b"Proxy-Authenticate: Basic realm=\"test\"\r\n"
                             b"Content-Length: 0\r\n\r\n")
            return
        self.server.tunnels.append(target)
        host, port = target.rsplit(":", 1)
        with socket.create_connection((host, int(port))) as upstream:
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            ends = [self.connection, upstream]
            while True:
                readable, _, _ = select.select(ends, [], [], 5)
                if not readable:
                    return
                for end in readable:
                    data = end.recv(65536)
                    if not data:
                        return
                    (upstream if end is self.connection else self.connection).sendall(data)


def test_the_lake_is_reached_through_the_environments_https_proxy(
        emulators, emulator_environ, monkeypatch):
    data = b"through the proxy"
    with ConnectProxy() as proxy:
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        store = ranged_store(emulators, emulator_environ, data)
        assert store.read_bytes("in/data.bin", 0, len(data)) == data
        store.close()
        host = parse_lake_url(store.url)[0].split("//")[1].split("/")[0]
        assert proxy.tunnels == [host]
        monkeypatch.setenv("NO_PROXY", host.split(":")[0])  # the host bypasses it
        store = ranged_store(emulators, emulator_environ, data)
        assert store.read_bytes("in/data.bin", 0, len(data)) == data
        store.close()
        assert proxy.tunnels == [host]
        proxy.shutdown()


def test_a_big_upload_is_a_create_appends_in_parallel_and_a_flush(
        emulators, emulator_environ, tmp_path):
    """Over WORKER_LAKE_CHUNK_SIZE: Path Create, one append per piece, a flush that records
    the Content-MD5; an append that fails transiently is sent again to the same place."""
    import hashlib

    config = azure_config(emulator_environ, WORKER_LAKE_CHUNK_SIZE="65536",
                          WORKER_LAKE_FILE_CONCURRENCY="4")
    store = open_store(config.lake_url, config=config)
    data = os.urandom(5 * 65536 + 7)
    (tmp_path / "big.bin").write_bytes(data)
    md5 = hashlib.md5(data).hexdigest()
    emulators.reset_counts()
    store.upload_file(str(tmp_path / "big.bin"), "up/big.bin", md5)
    assert emulators.counts("lake") == {"create": 1, "append": 6, "flush": 1}
    assert store.read_bytes("up/big.bin") == data
    assert store.content_md5("up/big.bin") == md5
    emulators.fault("lake", "append", "status", status=503, times=1)
    emulators.fault("lake", "append", "drop", times=1)  # (WORKER_RETRY_TOTAL=2)
    emulators.reset_counts()
    store.write_bytes("up/again.bin", data[::-1])  # from memory, no hash known yet
    assert emulators.counts("lake") == {"create": 1, "append": 8, "flush": 1}
    assert store.read_bytes("up/again.bin") == data[::-1]
    assert store.content_md5("up/again.bin") is None
    store.set_content_md5("up/again.bin", hashlib.md5(data[::-1]).hexdigest())
    assert store.content_md5("up/again.bin") == hashlib.md5(data[::-1]).hexdigest()
    emulators.fault("lake", "append", "status", status=503, times=None)
    with pytest.raises(RetryableError, match="'up/never.bin'.*503"):
        store.upload_file(str(tmp_path / "big.bin"), "up/never.bin")
    store.close()


def test_an_untrusted_certificate_is_a_configuration_error_at_once(
        emulators, emulator_environ, tmp_path):
    """Retrying cannot fix a deployment mistake: with 5 retries and 5 s of first backoff, a
    retry would sleep at least 4 s before its second try; the error comes before that."""
    import trustme

    bundle = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))
    config = azure_config(emulator_environ, REQUESTS_CA_BUNDLE=str(bundle),
                          WORKER_RETRY_TOTAL="5", WORKER_RETRY_BACKOFF="5")
    store = open_store(config.lake_url, config=config)
    started = time.monotonic()
    with pytest.raises(ConfigError, match="not trusted by the CA bundle .*other-ca.pem") as caught:
        store.read_bytes("x.bin", 0, 10)
    assert time.monotonic() - started < 4
    assert caught.value.exit_code == 2
    store.close()


def test_the_proxy_gets_the_credentials_of_https_proxy(emulators, emulator_environ,
                                                         monkeypatch):
    """``http://user:password@host:port``: sent as Proxy-Authorization (percent-encoded
    characters decoded); wrong ones are a configuration error at once, without the
    password in it."""
    data = b"through an authenticating proxy"
    with ConnectProxy("batch user:p@ss/w:rd") as proxy:
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        port = proxy.server_address[1]
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.setenv("HTTPS_PROXY", f"http://batch%20user:p%40ss%2Fw%3Ard@127.0.0.1:{port}")
        store = ranged_store(emulators, emulator_environ, data)
        assert store.read_bytes("in/data.bin", 0, len(data)) == data
        store.close()
        assert len(proxy.tunnels) == 1 and proxy.refused == 0
        monkeypatch.setenv("HTTPS_PROXY", f"http://batch%20user:wrong-secret@127.0.0.1:{port}")
        store = ranged_store(emulators, emulator_environ, data)
        with pytest.raises(ConfigError, match="proxy refused the credentials.*HTTPS_PROXY") as e:
            store.read_bytes("in/data.bin", 0, len(data))
        store.close()
        assert "wrong-secret" not in str(e.value)
        assert proxy.refused == 1, "a refusal is not retried"
        proxy.shutdown()


@pytest.mark.parametrize("how", [
    {"retry_after": "http-date"},
    {"headers": {"retry-after-ms": "400"}},
    {"headers": {"x-ms-retry-after-ms": "400"}},
])
def test_every_retry_after_form_is_waited_for(emulators, emulator_environ, how):
    """Retry-After in seconds is above; here as an HTTP date and as retry-after-ms."""
    from email.utils import formatdate

    store = ranged_store(emulators, emulator_environ, b"abc")
    if how.get("retry_after") == "http-date":  # whole seconds: at least 1 s from now
        how = {"retry_after": formatdate(time.time() + 2, usegmt=True)}
    emulators.fault("lake", "read", "status", status=503, times=1, **how)
    started = time.monotonic()
    assert store.read_bytes("in/data.bin", 0, 3) == b"abc"
    assert time.monotonic() - started >= 0.4
    assert emulators.counts("lake")["read"] == 2
    store.close()


def test_retry_after_zero_is_not_an_instant_retry_loop(emulators, emulator_environ):
    """``Retry-After: 0`` falls back on the backoff (here 0.3 s, doubled from the second
    retry on), so a service that says 0 is not hammered."""
    config = azure_config(emulator_environ, WORKER_RETRY_BACKOFF="0.3", WORKER_RETRY_TOTAL="3")
    filesystem = config.lake_url.rsplit("/", 1)[1]
    emulators.seed_file(filesystem, "z.bin", b"z")
    store = open_store(config.lake_url, config=config)
    emulators.fault("lake", "read", "status", status=503, retry_after=0, times=2)
    started = time.monotonic()
    assert store.read_bytes("z.bin", 0, 1) == b"z"
    assert time.monotonic() - started >= 0.6  # 0 s, then 0.3 x 2
    store.close()


def test_one_client_request_id_across_retries_and_headers_redacted_at_debug(
        emulators, emulator_environ, caplog):
    import logging
    import re

    from worker import __version__

    store = ranged_store(emulators, emulator_environ, b"abc")
    emulators.fault("lake", "read", "status", status=503, times=2)
    with caplog.at_level(logging.DEBUG, logger="worker.lake.http"):
        assert store.read_bytes("in/data.bin", 0, 3) == b"abc"
    requests = [r.getMessage() for r in caplog.records if "Request URL" in r.getMessage()]
    assert len(requests) == 3
    ids = {re.search(r"'x-ms-client-request-id': '([^']+)'", m).group(1) for m in requests}
    assert len(ids) == 1, "the retries keep the first try's client request id"
    assert all("'Authorization': 'REDACTED'" in m for m in requests)
    assert all(f"'User-Agent': 'batch-worker/{__version__} azsdk-python-core/" in m
               for m in requests)
    assert not any("Bearer" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="worker.lake.http"):
        store.read_bytes("in/data.bin", 0, 3)
    assert not caplog.records, "nothing is logged per request at INFO"
    store.close()


class RevokedFirst(CountingCredential):
    """Hands out a token the lake refuses (401 with its challenge), then real ones."""

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        self.calls += 1
        token = self.credential.get_token(*scopes, **kwargs)
        if self.calls == 1:
            return AccessToken(token.token[:-6] + "AAAAAA", token.expires_on)
        return token


def test_a_401_with_a_challenge_fetches_a_new_token_and_tries_once_more(
        emulators, emulator_environ):
    config = azure_config(emulator_environ)
    filesystem = config.lake_url.rsplit("/", 1)[1]
    emulators.seed_file(filesystem, "t.bin", b"0123456789")
    credential = RevokedFirst(get_credential(config))
    rest = rest_with(credential, config)
    assert rest.read("t.bin", 0, 4) == b"0123"
    assert credential.calls == 2
    assert emulators.counts("lake")["read"] == 2
    rest.close()


def test_a_content_encoded_file_reads_as_its_stored_bytes(emulators, emulator_environ):
    """A file stored with Content-Encoding: gzip is bytes like any other: a range of it is
    those bytes (urllib3 would otherwise decompress, or fail to on a range)."""
    import gzip

    from azure.storage.filedatalake import ContentSettings

    config = azure_config(emulator_environ)
    filesystem = config.lake_url.rsplit("/", 1)[1]
    packed = gzip.compress(b"line of text\n" * 500)
    client = emulators.service_client().get_file_client(filesystem, "in/text.gz")
    client.upload_data(packed, overwrite=True,
                       content_settings=ContentSettings(content_encoding="gzip"))
    assert client.get_file_properties().content_settings.content_encoding == "gzip"
    store = open_store(config.lake_url, config=config)
    assert store.read_bytes("in/text.gz") == packed
    assert store.read_bytes("in/text.gz", 10, 20) == packed[10:30]
    lake = Lake(store, "run")
    assert lake.read_bytes("in/text.gz") == packed
    lake.close()


@pytest.mark.parametrize("fault, words", [
    (None, "404 BlobNotFound: The specified blob does not exist."),
    ({"status": 503}, "503 ServerBusy: Injected fault."),
])
def test_a_failure_quotes_the_service_and_both_request_ids_in_its_line_and_record(
        emulators, emulator_environ, caplog, monkeypatch, fault, words):
    import re

    from worker.testing import run_handler

    monkeypatch.syspath_prepend(os.path.join(os.path.dirname(__file__)))
    filesystem = emulator_environ["WORKER_LAKE_URL"].rsplit("/", 1)[1]
    emulators.seed_file(filesystem, "in/x.bin", b"x")
    if fault:
        emulators.fault("lake", "read", "status", times=None, **fault)
    result = run_handler("handlers.bad_input:read",
                         {"path": "in/missing.bin" if fault is None else "in/x.bin"},
                         env=dict(emulator_environ, **FAST))
    service = result.error["service"]
    assert words.startswith(f"{service['status']} {service['error_code']}: ")
    assert service["message"] == words.split(": ", 1)[1]
    assert re.fullmatch(r"[0-9a-f-]{36}", service["request_id"])
    assert re.fullmatch(r"[0-9a-f-]{36}", service["client_request_id"])
    line = [r.getMessage() for r in caplog.records if r.getMessage().startswith("task failed")]
    assert f"{words}; x-ms-request-id {service['request_id']}; client request id " \
           f"{service['client_request_id']}" in line[-1]
    assert result.error["message"] in line[-1]


def test_a_recursive_delete_goes_page_by_page(emulators, emulator_environ):
    """``paginated=true``: the service deletes a big folder in pages (here of 2 paths, on
    Azure as many as its ACL checks allow in one call), each answer naming where to go on."""
    config = azure_config(emulator_environ)
    filesystem = config.lake_url.rsplit("/", 1)[1]
    for i in range(5):
        emulators.seed_file(filesystem, f"big/f{i}.txt", b"x")
    store = open_store(config.lake_url, config=config)
    emulators.set.lake_app.store.delete_page_size = 2
    try:
        emulators.reset_counts()
        store.delete("big", recursive=True)
    finally:
        emulators.set.lake_app.store.delete_page_size = 5000
    assert emulators.counts("lake") == {"delete": 3}  # 2, 2, then 1 and the folder
    assert not emulators.exists(filesystem, "big")
    store.close()


@pytest.mark.parametrize("flat", [False, True])
@pytest.mark.parametrize("account_info", [200, 403, 404])
def test_the_namespace_is_known_with_or_without_the_right_to_ask_the_account(
        emulators, emulator_environ, flat, account_info):
    """Get Account Information needs an RBAC action the data roles may not grant (403; 404
    before 2025): the root folder's ACL tells then (400 on a flat account)."""
    config = azure_config(emulator_environ)
    emulators.lake_behaviour(flat_namespace=flat)
    if account_info != 200:
        emulators.fault("lake", "get_account_info", status=account_info, times=None,
                        code="AuthorizationPermissionMismatch" if account_info == 403 else
                        "ResourceNotFound")
    store = open_store(config.lake_url, config=config)
    if flat:
        with pytest.raises(ConfigError, match="has no hierarchical namespace") as caught:
            store.check_namespace()
        assert caught.value.exit_code == 2
    else:
        store.check_namespace()
        store.check_namespace()  # asked once
    expected = {"get_account_info": 1}
    if account_info != 200:
        expected["get_access_control"] = 1
    assert emulators.counts("lake") == expected
    store.close()
