"""The Data Lake emulator driven by the real DataLake SDK over HTTPS with IMDS tokens."""

from __future__ import annotations

import threading

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.filedatalake import ContentSettings


@pytest.fixture
def fs(emulators, emulator_environ, emulator_filesystem):
    """A FileSystemClient on a fresh file system, read-write identity, no retries."""
    return emulators.service_client().get_file_system_client(emulator_filesystem)


def test_file_system_lifecycle(emulators, emulator_environ):
    service = emulators.service_client()
    client = service.create_file_system("lifecycle-fs", metadata={"team": "a"})
    assert client.exists()
    props = client.get_file_system_properties()
    assert props.metadata == {"team": "a"} and props.etag
    client.set_file_system_metadata({"team": "b"})
    assert client.get_file_system_properties().metadata == {"team": "b"}
    assert "lifecycle-fs" in [f.name for f in service.list_file_systems()]
    with pytest.raises(ResourceExistsError) as e:
        service.create_file_system("lifecycle-fs")
    assert e.value.error_code == "ContainerAlreadyExists"
    client.delete_file_system()
    assert not client.exists()
    with pytest.raises(ResourceNotFoundError):
        client.get_file_system_properties()


def test_upload_download_and_properties(fs):
    f = fs.get_file_client("dir/sub/data.bin")
    f.upload_data(b"0123456789", overwrite=True, metadata={"k": "v"},
                  content_settings=ContentSettings(content_type="text/plain"))
    assert f.download_file().readall() == b"0123456789"
    assert f.download_file(offset=2, length=3).readall() == b"234"
    props = f.get_file_properties()
    assert props.size == 10 and props.metadata == {"k": "v"}
    assert props.content_settings.content_type == "text/plain"
    d = fs.get_directory_client("dir/sub").get_directory_properties()
    assert d.metadata.get("hdi_isfolder") == "true"


def test_empty_file_and_missing_file(fs):
    f = fs.get_file_client("empty.txt")
    f.create_file()
    assert f.download_file().readall() == b""
    assert f.exists() and not fs.get_file_client("nope").exists()
    with pytest.raises(ResourceNotFoundError) as e:
        fs.get_file_client("nope").download_file()
    assert e.value.error_code == "BlobNotFound"


def test_put_blob_creates_the_file_and_its_parents_in_one_request(emulators, fs):
    from azure.storage.blob import ContainerClient
    from azure.storage.blob import ContentSettings as BlobContentSettings

    # The emulator's path-style account URL serves the Blob API too.
    container = ContainerClient(emulators.account_url, fs.file_system_name,
                                credential=emulators.credential(), retry_total=0,
                                connection_verify=emulators.ca_path)
    blob = container.get_blob_client("put/deep/data.csv")
    before = emulators.counts("lake").get("put_blob", 0)
    reply = blob.upload_blob(b"a,b\n1,2\n", overwrite=True, metadata={"k": "v"},
                             content_settings=BlobContentSettings(content_type="text/csv"))
    assert emulators.counts("lake")["put_blob"] == before + 1
    assert reply["content_md5"] and reply["etag"]
    f = fs.get_file_client("put/deep/data.csv")
    assert f.download_file().readall() == b"a,b\n1,2\n"
    props = f.get_file_properties()
    assert props.metadata == {"k": "v"} and props.content_settings.content_type == "text/csv"
    names = {(p.name, p.is_directory) for p in fs.get_paths("put", recursive=True)}
    assert names == {("put/deep", True), ("put/deep/data.csv", False)}
    blob.upload_blob(b"", overwrite=True)  # replaces, and an empty blob is a file too
    assert f.get_file_properties().size == 0
    with pytest.raises(ResourceExistsError) as e:
        blob.upload_blob(b"x", overwrite=False)
    assert e.value.error_code == "BlobAlreadyExists"
    with pytest.raises(ResourceExistsError):
        container.get_blob_client("put/deep").upload_blob(b"x", overwrite=True)  # a directory


def test_upload_without_overwrite_fails_as_on_azure(fs):
    with pytest.raises(ResourceNotFoundError) as e:
        fs.get_file_client("new.txt").upload_data(b"abc")
    assert e.value.error_code == "PathNotFound"
    existing = fs.get_file_client("old.txt")
    existing.upload_data(b"abc", overwrite=True)
    with pytest.raises(ResourceModifiedError):
        existing.upload_data(b"xyz")
    assert existing.download_file().readall() == b"abc"


def test_chunked_parallel_upload_and_chunked_download(emulators, fs):
    data = bytes(range(256)) * 40
    f = fs.get_file_client("chunks.bin")
    f.upload_data(data, overwrite=True, chunk_size=1000, max_concurrency=4)
    small = emulators.service_client(max_single_get_size=1024, max_chunk_get_size=512)
    reader = small.get_file_client(fs.file_system_name, "chunks.bin")
    assert reader.download_file(max_concurrency=3).readall() == data


def test_appends_are_invisible_until_flushed(fs):
    f = fs.get_file_client("staged.txt")
    f.upload_data(b"old", overwrite=True)
    f.append_data(b"new data", offset=3, length=8)
    assert f.download_file().readall() == b"old"
    f.flush_data(11)
    assert f.download_file().readall() == b"oldnew data"


def test_flush_checks_contiguity_and_conditions(fs):
    f = fs.get_file_client("gap.txt")
    created = f.create_file()
    f.append_data(b"abc", offset=0, length=3)
    f.append_data(b"xyz", offset=10, length=3)
    with pytest.raises(HttpResponseError) as e:
        f.flush_data(13)
    assert e.value.error_code == "InvalidFlushPosition"
    f.flush_data(3, etag=created["etag"], match_condition=MatchConditions.IfNotModified)
    with pytest.raises(ResourceModifiedError) as e:
        f.flush_data(3, etag=created["etag"], match_condition=MatchConditions.IfNotModified)
    assert e.value.error_code == "ConditionNotMet"


def test_create_if_missing_and_conflicts(fs):
    f = fs.get_file_client("once.txt")
    f.create_file()
    with pytest.raises(ResourceExistsError) as e:
        f.create_file(match_condition=MatchConditions.IfMissing)
    assert e.value.error_code == "PathAlreadyExists"
    fs.create_directory("adir")
    with pytest.raises(ResourceExistsError):
        fs.get_file_client("adir").create_file()


def test_metadata_keeps_directory_marker(fs):
    d = fs.create_directory("meta")
    d.set_metadata({"a": "1"})
    assert d.get_directory_properties().metadata == {"a": "1", "hdi_isfolder": "true"}


def test_list_paths_recursive_flat_and_paged(fs):
    for name in ("a/1.txt", "a/b/2.txt", "c.txt"):
        fs.get_file_client(name).upload_data(b"x", overwrite=True)
    everything = [(p.name, p.is_directory) for p in fs.get_paths()]
    assert everything == [("a", True), ("a/1.txt", False), ("a/b", True),
                          ("a/b/2.txt", False), ("c.txt", False)]
    assert [p.name for p in fs.get_paths(path="a", recursive=False)] == ["a/1.txt", "a/b"]
    pages = list(fs.get_paths(max_results=2).by_page())
    assert [len(list(page)) for page in pages] == [2, 2, 1]
    props = next(iter(fs.get_paths(path="a", recursive=False)))
    assert props.last_modified is not None and props.etag and props.content_length == 1
    with pytest.raises(ResourceNotFoundError) as e:
        list(fs.get_paths(path="missing"))
    assert e.value.error_code == "PathNotFound"


def test_rename_within_and_across_file_systems(emulators, fs):
    f = fs.get_file_client("src/file.txt")
    f.upload_data(b"moved", overwrite=True)
    renamed = f.rename_file(fs.file_system_name + "/dst.txt")
    assert renamed.download_file().readall() == b"moved"
    assert not f.exists()
    other = emulators.new_filesystem("other")
    d = fs.create_directory("tree")
    fs.get_file_client("tree/leaf.txt").upload_data(b"leaf", overwrite=True)
    d.rename_directory(other + "/tree2")
    assert emulators.read_file(other, "tree2/leaf.txt") == b"leaf"
    assert not fs.get_directory_client("tree").exists()


def test_rename_errors(fs):
    with pytest.raises(ResourceNotFoundError) as e:
        fs.get_file_client("ghost").rename_file(fs.file_system_name + "/x")
    assert e.value.error_code == "SourcePathNotFound"
    f = fs.get_file_client("real.txt")
    f.upload_data(b"r", overwrite=True)
    with pytest.raises(ResourceNotFoundError) as e:
        f.rename_file(fs.file_system_name + "/no/such/parent.txt")
    assert e.value.error_code == "RenameDestinationParentPathNotFound"
    fs.get_file_client("taken.txt").upload_data(b"t", overwrite=True)
    with pytest.raises(ResourceExistsError) as e:
        f.rename_file(fs.file_system_name + "/taken.txt", match_condition=MatchConditions.IfMissing)
    assert e.value.error_code == "PathAlreadyExists"
    with pytest.raises(HttpResponseError) as e:  # the SDK maps this code to no subclass
        f.rename_file(fs.file_system_name + "/y.txt", source_etag='"0x8D0000000000000"',
                      source_match_condition=MatchConditions.IfNotModified)
    assert e.value.status_code == 412 and e.value.error_code == "SourceConditionNotMet"


def test_delete_file_directory_and_not_empty(fs):
    fs.get_file_client("d/x.txt").upload_data(b"x", overwrite=True)
    d = fs.get_directory_client("d")
    with pytest.raises(ResourceExistsError) as e:
        d._client.path.delete(recursive=False)  # the SDK's own generated operation
    assert e.value.response.headers["x-ms-error-code"] == "DirectoryNotEmpty"
    fs.get_file_client("d/x.txt").delete_file()
    d.delete_directory()
    with pytest.raises(ResourceNotFoundError) as e:
        fs.get_file_client("d/x.txt").delete_file()
    assert e.value.error_code == "PathNotFound"


def test_paginated_delete_loops_on_continuation(emulators, fs):
    for i in range(7):
        fs.get_file_client("many/f%d" % i).upload_data(b"x", overwrite=True)
    emulators.set.lake_app.store.delete_page_size = 3
    try:
        emulators.reset_counts()
        fs.get_directory_client("many").delete_directory()
    finally:
        emulators.set.lake_app.store.delete_page_size = 5000
    assert not fs.get_directory_client("many").exists()
    assert emulators.counts("lake")["delete"] >= 3


def test_download_detects_change_between_chunks(emulators, fs):
    f = fs.get_file_client("changing.bin")
    f.upload_data(b"a" * 64, overwrite=True)
    small = emulators.service_client(max_single_get_size=16, max_chunk_get_size=16)
    downloader = small.get_file_client(fs.file_system_name, "changing.bin").download_file()
    f.upload_data(b"b" * 64, overwrite=True)
    with pytest.raises(ResourceModifiedError):
        downloader.readall()


def test_concurrent_writers_and_readers_see_whole_versions(emulators, fs):
    f = fs.get_file_client("hot.bin")
    versions = [bytes([65 + i]) * 200_000 for i in range(4)]
    f.upload_data(versions[0], overwrite=True)
    seen, errors = [], []

    def read() -> None:
        client = emulators.service_client().get_file_client(fs.file_system_name, "hot.bin")
        for _ in range(5):
            try:
                seen.append(client.download_file().readall())
            except ResourceModifiedError:
                pass  # a chunked read raced a flush: the SDK refuses mixed versions
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for data in versions[1:]:
        f.upload_data(data, overwrite=True, chunk_size=50_000, max_concurrency=4)
    for t in readers:
        t.join()
    assert not errors
    # upload_data(overwrite=True) first re-creates the file empty, as on Azure: readers may
    # see that empty file, or any whole version, never a mix or a half-flushed file.
    assert seen and all(s in versions or s == b"" for s in seen)
    assert f.download_file().readall() == versions[-1]


@pytest.mark.parametrize("flat", [False, True])
def test_account_information_says_whether_the_namespace_is_hierarchical(
        emulators, emulator_environ, emulator_filesystem, flat):
    """Get Account Information (the Blob SDK's call), on the account and on a container;
    ``lake_behaviour(flat_namespace=True)`` (``emulate --flat-namespace``) reports a flat
    account, as a deployment on plain Blob Storage would."""
    from azure.storage.blob import BlobServiceClient

    emulators.lake_behaviour(flat_namespace=flat)
    blob = BlobServiceClient(emulators.account_url, credential=emulators.credential(),
                             connection_verify=emulators.ca_path, retry_total=0)
    for info in (blob.get_account_information(),
                 blob.get_container_client(emulator_filesystem).get_account_information()):
        assert info["is_hns_enabled"] is (not flat)
        assert info["account_kind"] == "StorageV2"
    assert emulators.counts("lake") == {"get_account_info": 2}
