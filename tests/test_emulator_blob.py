"""The Blob API of the lake emulator, driven by the Blob SDK as its documentation shows:
``BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])``
or an account URL with ``DefaultAzureCredential()``, both from the emulators' environment."""

from __future__ import annotations

import os
import time

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobBlock, BlobPrefix, BlobServiceClient, ContentSettings


@pytest.fixture
def blob_environ(env_file_environ):
    """The whole env file of ``emulate`` in this process (App Service identity included)."""
    return env_file_environ


@pytest.fixture
def service(blob_environ):
    return BlobServiceClient.from_connection_string(
        os.environ["AZURE_STORAGE_CONNECTION_STRING"], retry_total=0)


@pytest.fixture
def container(service, emulator_filesystem):
    return service.get_container_client(emulator_filesystem)


def _tree(emulators, fs):
    for path, data in (("a/1.txt", b"one"), ("a/2.txt", b"two"), ("a/b/3.txt", b"three"),
                       ("top.txt", b"top")):
        emulators.seed_file(fs, path, data, metadata={"n": path[-5]})


def test_list_blobs_flat_with_metadata_directories_and_pages(emulators, container,
                                                             emulator_filesystem):
    _tree(emulators, emulator_filesystem)
    blobs = list(container.list_blobs(include=["metadata"]))
    assert [b.name for b in blobs] == ["a", "a/1.txt", "a/2.txt", "a/b", "a/b/3.txt", "top.txt"]
    by_name = {b.name: b for b in blobs}
    assert by_name["a"].metadata == {"hdi_isfolder": "true"} and by_name["a"].size == 0
    assert by_name["a/b/3.txt"].metadata == {"n": "3"} and by_name["a/b/3.txt"].size == 5
    assert by_name["top.txt"].etag and by_name["top.txt"].last_modified
    assert [b.name for b in container.list_blobs(name_starts_with="a/b")] == ["a/b",
                                                                             "a/b/3.txt"]
    pages = container.list_blobs(results_per_page=2).by_page()
    first = [b.name for b in next(pages)]
    assert first == ["a", "a/1.txt"] and pages.continuation_token
    rest = container.list_blobs(results_per_page=2).by_page(pages.continuation_token)
    assert [b.name for page in rest for b in page] == ["a/2.txt", "a/b", "a/b/3.txt",
                                                      "top.txt"]


def test_walk_blobs_by_delimiter(emulators, container, emulator_filesystem):
    _tree(emulators, emulator_filesystem)
    top = list(container.walk_blobs())
    assert sorted((b.name, isinstance(b, BlobPrefix)) for b in top) == [
        ("a", False), ("a/", True), ("top.txt", False)]
    inner = next(b for b in top if isinstance(b, BlobPrefix))
    assert sorted(b.name for b in inner) == ["a/1.txt", "a/2.txt", "a/b", "a/b/"]
    pages = container.walk_blobs(name_starts_with="a/", results_per_page=3).by_page()
    assert sorted(b.name for b in next(pages)) == ["a/1.txt", "a/2.txt", "a/b"]
    assert [b.name for b in next(pages)] == ["a/b/"]


def test_chunked_upload_and_ranged_download(emulators, blob_environ, emulator_filesystem):
    service = BlobServiceClient.from_connection_string(
        os.environ["AZURE_STORAGE_CONNECTION_STRING"], retry_total=0, max_single_put_size=1024,
        max_block_size=1000, max_single_get_size=1024, max_chunk_get_size=700)
    blob = service.get_blob_client(emulator_filesystem, "big/chunked.bin")
    data = os.urandom(5000)
    before = emulators.counts("lake")
    blob.upload_blob(data, metadata={"k": "v"},
                     content_settings=ContentSettings(content_type="application/x-test"))
    counts = emulators.counts("lake")
    assert counts.get("put_block", 0) - before.get("put_block", 0) == 5
    assert counts.get("put_block_list", 0) - before.get("put_block_list", 0) == 1
    assert blob.download_blob().readall() == data
    assert blob.download_blob(offset=1500, length=2000).readall() == data[1500:3500]
    props = blob.get_blob_properties()
    assert props.size == 5000 and props.metadata == {"k": "v"}
    assert props.content_settings.content_type == "application/x-test"
    assert emulators.read_file(emulator_filesystem, "big/chunked.bin") == data


def test_stage_block_commit_block_list_and_get_block_list(container):
    blob = container.get_blob_client("blocks/b.bin")
    blob.stage_block("block-1", b"hello ")
    blob.stage_block("block-2", b"world")
    blob.stage_block("block-3", b"unused")
    assert not blob.exists()  # uncommitted blocks are no blob yet
    committed, uncommitted = blob.get_block_list("all")
    assert committed == [] and sorted(b.id for b in uncommitted) == ["block-1", "block-2",
                                                                     "block-3"]
    blob.commit_block_list([BlobBlock("block-1"), BlobBlock("block-2")])
    assert blob.download_blob().readall() == b"hello world"
    committed, uncommitted = blob.get_block_list("all")
    assert [(b.id, b.size) for b in committed] == [("block-1", 6), ("block-2", 5)]
    assert uncommitted == []
    blob.stage_block("block-4", b"!")  # reuse a committed block beside a new one
    blob.commit_block_list([BlobBlock("block-2"), BlobBlock("block-4")])
    assert blob.download_blob().readall() == b"world!"
    with pytest.raises(HttpResponseError) as e:
        blob.commit_block_list([BlobBlock("never-staged")])
    assert e.value.status_code == 400 and e.value.error_code == "InvalidBlockList"


def test_copy_within_the_account(container, service, emulator_filesystem):
    source = container.get_blob_client("src/data.csv")
    source.upload_blob(b"a,b\n1,2\n", metadata={"origin": "x"})
    other = service.create_container("copy-target-%d" % int(time.time() * 1000))
    try:
        target = other.get_blob_client("deep/copy.csv")
        reply = target.start_copy_from_url(source.url)
        assert reply["copy_status"] == "success"
        assert target.download_blob().readall() == b"a,b\n1,2\n"
        props = target.get_blob_properties()
        assert props.metadata == {"origin": "x"} and props.copy.status == "success"
        with pytest.raises(ResourceNotFoundError):
            target.start_copy_from_url(container.get_blob_client("nope").url)
        with pytest.raises(ResourceExistsError):  # as obstore's copy_if_not_exists asks
            target.start_copy_from_url(source.url, headers={"If-None-Match": "*"})
    finally:
        other.delete_container()


def test_leases_guard_writes_and_deletes(container):
    blob = container.get_blob_client("leased.txt")
    blob.upload_blob(b"v1")
    lease = blob.acquire_lease(lease_duration=15)
    assert blob.get_blob_properties().lease.state == "leased"
    with pytest.raises(HttpResponseError) as e:
        blob.upload_blob(b"v2", overwrite=True)
    assert e.value.status_code == 412 and e.value.error_code == "LeaseIdMissing"
    with pytest.raises(HttpResponseError) as e:
        blob.delete_blob()
    assert e.value.error_code == "LeaseIdMissing"
    blob.upload_blob(b"v2", overwrite=True, lease=lease)
    assert blob.download_blob().readall() == b"v2"
    lease.renew()
    lease.change("00000000-0000-0000-0000-00000000c4a6")
    assert lease.id == "00000000-0000-0000-0000-00000000c4a6"
    blob.set_blob_metadata({"m": "1"}, lease=lease)
    with pytest.raises(HttpResponseError) as e:
        blob.acquire_lease(lease_duration=-1)
    assert e.value.status_code == 409 and e.value.error_code == "LeaseAlreadyPresent"
    lease.release()
    assert blob.get_blob_properties().lease.state == "available"
    second = blob.acquire_lease(lease_duration=-1)
    assert second.break_lease(lease_break_period=0) == 0
    assert blob.get_blob_properties().lease.state == "broken"
    blob.delete_blob()  # a broken lease no longer guards
    assert not blob.exists()


def test_delete_blob_answers_202_and_keeps_a_directory_that_is_not_empty(emulators, container,
                                                                         emulator_filesystem):
    _tree(emulators, emulator_filesystem)
    container.delete_blob("top.txt")
    assert not emulators.exists(emulator_filesystem, "top.txt")
    with pytest.raises(HttpResponseError) as e:
        container.delete_blob("a/b")
    assert e.value.status_code == 409 and e.value.error_code == "DirectoryIsNotEmpty"
    container.delete_blob("a/b/3.txt")
    container.delete_blob("a/b")  # empty now
    assert not emulators.exists(emulator_filesystem, "a/b")
    with pytest.raises(ResourceNotFoundError) as e:
        container.delete_blob("a/b")
    assert e.value.error_code == "BlobNotFound"


def test_delete_blobs_in_one_batch(emulators, container, emulator_filesystem):
    _tree(emulators, emulator_filesystem)
    before = emulators.counts("lake").get("blob_batch", 0)
    replies = container.delete_blobs("a/1.txt", "a/2.txt", "top.txt")
    assert [r.status_code for r in replies] == [202, 202, 202]
    assert emulators.counts("lake")["blob_batch"] == before + 1
    assert [b.name for b in container.list_blobs()] == ["a", "a/b", "a/b/3.txt"]
    with pytest.raises(HttpResponseError) as e:  # one missing: the others still go
        container.delete_blobs("a/b/3.txt", "missing.txt")
    statuses = [r.status_code for r in e.value.parts]
    assert statuses == [202, 404]
    assert not emulators.exists(emulator_filesystem, "a/b/3.txt")


def test_each_part_of_a_batch_is_authorized_on_its_own(emulators, emulator_environ,
                                                      emulator_filesystem):
    from azure.storage.blob import ContainerClient

    emulators.seed_file(emulator_filesystem, "keep.txt", b"k")
    reader = ContainerClient(emulators.account_url, emulator_filesystem, retry_total=0,
                             credential=emulators.credential(emulators.reader_client_id),
                             connection_verify=emulators.ca_path)
    replies = reader.delete_blobs("keep.txt", raise_on_any_failure=False)
    assert [r.status_code for r in replies] == [403]
    assert emulators.exists(emulator_filesystem, "keep.txt")


def test_a_verb_the_resource_does_not_take(emulators, blob_environ, emulator_filesystem):
    import http.client
    from urllib.parse import urlsplit

    from worker.emulators import sas
    from worker.emulators.tls import client_context

    token = sas.sign(emulators.account_name, emulators.account_key, emulator_filesystem,
                     "x.txt", permissions="rw")
    conn = http.client.HTTPSConnection(urlsplit(emulators.account_url).netloc,
                                       context=client_context(emulators.ca_path), timeout=10)
    conn.request("POST", "/%s/%s/x.txt?%s" % (emulators.account_name, emulator_filesystem,
                                             token), body=b"")
    response = conn.getresponse()
    assert response.status == 405
    assert response.getheader("x-ms-error-code") == "UnsupportedHttpVerb"
    assert b"<Code>UnsupportedHttpVerb</Code>" in response.read()
    conn.close()


def test_data_keeps_committed_block_lists(tmp_path, monkeypatch):
    from worker.emulators import CLEARED_VARIABLES, EmulatorSet

    for name in CLEARED_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def blob(emulators):
        env = emulators.environment()
        service = BlobServiceClient.from_connection_string(
            env["AZURE_STORAGE_CONNECTION_STRING"], retry_total=0,
            connection_verify=emulators.ca_path)
        return service.get_blob_client("data", "kept.bin")

    with EmulatorSet(data_dir=str(tmp_path)) as first:
        client = blob(first)
        client.stage_block("b1", b"one")
        client.stage_block("b2", b"two")
        client.commit_block_list([BlobBlock("b1"), BlobBlock("b2")])
    with EmulatorSet(data_dir=str(tmp_path)) as second:
        committed, _ = blob(second).get_block_list()
        assert [(b.id, b.size) for b in committed] == [("b1", 3), ("b2", 3)]
        assert blob(second).download_blob().readall() == b"onetwo"


def test_account_information_says_hierarchical_namespace(service, container):
    info = service.get_account_information()
    assert info["is_hns_enabled"] is True and info["account_kind"] == "StorageV2"
    assert container.get_account_information()["is_hns_enabled"] is True


def test_file_system_root_access_control(emulators, blob_environ, emulator_filesystem):
    from azure.storage.filedatalake import DataLakeServiceClient

    lake = DataLakeServiceClient.from_connection_string(
        os.environ["AZURE_STORAGE_CONNECTION_STRING"], retry_total=0)
    root = lake.get_file_system_client(emulator_filesystem).get_directory_client("/")
    acl = root.get_access_control()
    assert acl["owner"] == "$superuser" and acl["group"] == "$superuser"
    assert acl["permissions"] == "rwxr-x---" and acl["acl"].startswith("user::rwx")


def test_what_is_not_served_answers_the_service_error(container):
    blob = container.get_blob_client("tiered.txt")
    blob.upload_blob(b"x")
    with pytest.raises(HttpResponseError) as e:
        blob.set_standard_blob_tier("Cool")
    assert e.value.status_code == 400 and e.value.error_code == "UnsupportedQueryParameter"
    with pytest.raises(HttpResponseError) as e:
        container.get_blob_client("append.log").create_append_blob()
    assert e.value.status_code == 400 and e.value.error_code == "UnsupportedHeader"


def test_token_credential_from_the_environment(blob_environ, emulators, emulator_filesystem):
    """DefaultAzureCredential with the env file: App Service's IDENTITY_ENDPOINT."""
    from azure.identity import DefaultAzureCredential

    emulators.seed_file(emulator_filesystem, "t.txt", b"token")
    before = emulators.counts("identity").get("token", 0)
    service = BlobServiceClient(os.environ["AZURE_STORAGE_ENDPOINT"],
                                credential=DefaultAzureCredential(), retry_total=0)
    blob = service.get_blob_client(emulator_filesystem, "t.txt")
    assert blob.download_blob().readall() == b"token"
    assert emulators.counts("identity")["token"] == before + 1


def test_a_wrong_account_key_is_refused(blob_environ, emulator_filesystem):
    wrong = BlobServiceClient(os.environ["AZURE_STORAGE_ENDPOINT"], retry_total=0, credential={
        "account_name": os.environ["AZURE_STORAGE_ACCOUNT_NAME"],
        "account_key": "d3Jvbmcga2V5"})
    with pytest.raises(HttpResponseError) as e:
        wrong.get_container_client(emulator_filesystem).get_container_properties()
    assert e.value.status_code == 403 and e.value.error_code == "AuthenticationFailed"


def test_conditions_still_hold_through_the_blob_api(container):
    blob = container.get_blob_client("cond.txt")
    etag = blob.upload_blob(b"1")["etag"]
    blob.upload_blob(b"2", overwrite=True)
    from azure.core import MatchConditions

    with pytest.raises(ResourceModifiedError):
        blob.upload_blob(b"3", overwrite=True, etag=etag,
                         match_condition=MatchConditions.IfNotModified)
