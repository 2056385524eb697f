"""One suite, two backends: the file:// lake and the Data Lake emulator behave the same.

The Azure case goes through the real SDK, real HTTPS and real managed-identity tokens
(``emulator_environ``); chunk sizes are small so "large" files span many requests quickly.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from worker.config import Config
from worker.lake import STAGING_DIR, Lake, open_store

CHUNK = 64 * 1024
FAST = {"WORKER_RETRY_BACKOFF": "0", "WORKER_RETRY_TOTAL": "1",
        "WORKER_LAKE_CHUNK_SIZE": str(CHUNK), "WORKER_LAKE_FILE_CONCURRENCY": "4"}


@pytest.fixture(params=["local", "azure"])
def config(request, tmp_path):
    if request.param == "local":
        env = dict(FAST, WORKER_LAKE_URL=(tmp_path / "lake").as_uri())
    else:
        env = dict(os.environ, **request.getfixturevalue("emulator_environ"), **FAST)
        env["WORKER_LAKE_URL"] += "/root"  # a prefix inside the file system
    return Config.from_env(env)


@pytest.fixture
def lake(config):
    lake = Lake(open_store(config.lake_url, config=config), "run-1", concurrency=8)
    yield lake
    lake.close()


def committed(config, run: str = "run-2") -> Lake:
    """A second view of the same root: sees committed data only."""
    return Lake(open_store(config.lake_url, config=config), run)


def test_write_read_round_trip_with_read_your_writes_then_commit(lake, config):
    lake.write_text("out/a.txt", "héllo")
    lake.write_bytes("out/b.bin", b"\x00\x01" * 10)
    assert lake.read_text("out/a.txt") == "héllo"  # the task sees its staged write
    assert lake.exists("out/a.txt")
    other = committed(config)
    assert not other.exists("out/a.txt")  # nobody else does, before the commit
    outputs = lake.commit()
    assert outputs == [
        {"path": "out/a.txt", "bytes": 6, "md5": hashlib.md5("héllo".encode()).hexdigest()},
        {"path": "out/b.bin", "bytes": 20, "md5": hashlib.md5(b"\x00\x01" * 10).hexdigest()},
    ]
    assert other.read_bytes("out/b.bin") == b"\x00\x01" * 10
    info = other.info("out/a.txt")
    assert (info.path, info.size, info.is_dir) == ("out/a.txt", 6, False)
    assert other.info("out").is_dir
    assert not other.exists(STAGING_DIR + "/run-1")


def test_empty_file_is_created(lake, config):
    lake.write_bytes("empty.txt", b"")
    lake.commit()
    assert committed(config).read_bytes("empty.txt") == b""
    assert committed(config).info("empty.txt").size == 0


def test_names_with_spaces_and_unicode(lake, config):
    lake.write_text("dir a/naïve ~x+y.txt", "ok")
    lake.commit()
    assert committed(config).read_text("dir a/naïve ~x+y.txt") == "ok"
    assert committed(config).glob("dir a/*.txt") == ["dir a/naïve ~x+y.txt"]


def test_ls_and_glob_recursive_never_show_staging(lake, config):
    for name in ("a/1.csv", "a/b/2.csv", "a/b/c/3.csv", "a/b/4.txt", "top.csv"):
        lake.write_text(name, name)
    lake.commit()
    lake.write_text("a/pending.csv", "staged")  # staged, not committed: under .worker-staging
    view = committed(config)
    assert sorted(e.path for e in view.ls("a")) == ["a/1.csv", "a/b"]
    assert view.glob("a/**/*.csv") == ["a/1.csv", "a/b/2.csv", "a/b/c/3.csv"]
    assert view.glob("*.csv") == ["top.csv"]
    assert view.glob("a/b/*.txt") == ["a/b/4.txt"]
    assert view.glob("nothing/**/*.csv") == []
    everything = [e.path for e in view.ls("", recursive=True)]
    assert not any(p.startswith(STAGING_DIR) for p in everything)


def test_large_file_streams_in_ranges(lake, config, tmp_path):
    data = os.urandom(CHUNK * 16 + 123)  # many chunks, and a partial last one
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    lake.upload(str(source), "big/big.bin")
    lake.commit()
    view = committed(config)
    with view.open("big/big.bin") as f:
        f.seek(CHUNK * 3 + 7)
        assert f.read(CHUNK * 2) == data[CHUNK * 3 + 7: CHUNK * 5 + 7]
        f.seek(-10, os.SEEK_END)
        assert f.read() == data[-10:]
        f.seek(0)
        assert hashlib.md5(f.read()).digest() == hashlib.md5(data).digest()
    target = tmp_path / "down.bin"
    view.download("big/big.bin", str(target))
    assert target.read_bytes() == data
    assert view.info("big/big.bin").size == len(data)


def test_many_small_files_up_and_down_as_a_folder(lake, config, tmp_path):
    source = tmp_path / "src"
    for i in range(120):
        path = source / f"part={i % 4}" / f"f{i:03}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"%d" % i * 100)
    keys = lake.upload(str(source), "many")
    assert len(keys) == 120
    assert len(lake.commit()) == 120
    target = tmp_path / "dst"
    paths = committed(config).download("many", str(target))
    assert len(paths) == 120
    assert (target / "part=3" / "f119.bin").read_bytes() == b"119" * 100
    assert len(committed(config).glob("many/part=1/*.bin")) == 30


def test_a_file_downloads_into_a_folder_named_with_a_slash_or_to_a_file(lake, config, tmp_path):
    lake.write_text("out/a.txt", "alpha")
    lake.commit()
    view = committed(config)
    assert view.download("out/a.txt", str(tmp_path / "new") + "/") == [
        str(tmp_path / "new" / "a.txt")]  # "new/" did not exist: made, the file inside
    assert view.download("out/a.txt", str(tmp_path / "b.txt")) == [str(tmp_path / "b.txt")]
    assert (tmp_path / "new" / "a.txt").read_text() == (tmp_path / "b.txt").read_text() == "alpha"


def test_overwrite_false_conflict_is_decided_at_commit(lake, config):
    lake.write_text("x.txt", "first")
    lake.commit()
    again = committed(config, "run-3")
    again.write_text("x.txt", "second", overwrite=False)
    with pytest.raises(FileExistsError, match="x.txt"):
        again.commit()
    assert committed(config).read_text("x.txt") == "first"
    replace = committed(config, "run-4")
    replace.write_text("x.txt", "third")  # overwrite=True by default
    replace.commit()
    assert committed(config).read_text("x.txt") == "third"


def test_abort_leaves_nothing_and_cleans_staging(lake, config, tmp_path):
    lake.write_text("gone/a.txt", "a")
    (tmp_path / "u.txt").write_text("u")
    lake.upload(str(tmp_path / "u.txt"), "gone/u.txt")
    lake.abort()
    view = committed(config)
    assert not view.exists("gone/a.txt") and not view.exists("gone/u.txt")
    assert not view.exists(f"{STAGING_DIR}/run-1")


def test_delete_file_and_folder(lake, config):
    for name in ("d/1.txt", "d/e/2.txt", "keep.txt"):
        lake.write_text(name, "x")
    lake.commit()
    lake.delete("keep.txt")
    assert not lake.exists("keep.txt")
    with pytest.raises(OSError):
        lake.delete("d")  # not empty, not recursive
    lake.delete("d", recursive=True)
    assert not lake.exists("d/e/2.txt") and not lake.exists("d")
    lake.write_text("d/again.txt", "y")  # parents are made again after the delete
    lake.commit()
    assert committed(config).read_text("d/again.txt") == "y"


def test_missing_paths_raise_file_not_found(lake):
    with pytest.raises(FileNotFoundError):
        lake.read_bytes("no/such.txt")
    with pytest.raises(FileNotFoundError):
        lake.info("no/such.txt")
    with pytest.raises(FileNotFoundError):
        lake.ls("no/such")
    with pytest.raises(FileNotFoundError):
        lake.open("no/such.txt")
    assert not lake.exists("no/such.txt")


def test_escapes_are_refused(lake):
    with pytest.raises(ValueError):
        lake.write_text("../outside.txt", "x")


def test_parquet_tables_one_file_and_a_folder(lake, config):
    pa = pytest.importorskip("pyarrow")
    for i in range(3):
        lake.write_table(pa.table({"n": [i, i + 10], "s": ["a", "b"]}), f"t/part-{i}.parquet")
    outputs = lake.commit()
    assert [o["rows"] for o in outputs] == [2, 2, 2]
    view = committed(config)
    assert view.read_table("t").num_rows == 6
    assert sorted(view.read_table("t/*.parquet", columns=["n"]).column("n").to_pylist()) == [
        0, 1, 2, 10, 11, 12]
    assert view.read_table("t/part-1.parquet").column("s").to_pylist() == ["a", "b"]


def test_a_big_upload_is_hashed_while_it_uploads(lake, tmp_path):
    data = os.urandom(9 << 20)  # above the size from which the MD5 is computed alongside
    source = tmp_path / "nine.bin"
    source.write_bytes(data)
    lake.upload(str(source), "nine.bin")
    [record] = lake.commit()
    assert record == {"path": "nine.bin", "bytes": len(data),
                      "md5": hashlib.md5(data).hexdigest()}
