"""fsspec with adlfs against the emulators, configured by the emulators' env file alone.

``python tests/stacks/adlfs_stack.py FILESYSTEM WORKDIR``, run with the env file's variables
(``fsspec.filesystem("abfs")`` reads AZURE_STORAGE_ACCOUNT_NAME/_KEY and
FSSPEC_ABFS_ACCOUNT_HOST, aiohttp trusts SSL_CERT_FILE). Reads the files the test seeded
under ``seeded/``, writes its own under ``adlfs/``, and prints the report of ``steps.py``.
"""

from __future__ import annotations

import os
import sys

from payload import digest, payload
from steps import check, digests, report, step

BIG = 20 << 20


def main(filesystem: str, workdir: str) -> None:
    import fsspec

    fs = fsspec.filesystem("abfs")
    root = filesystem + "/"
    seeded = sorted(root + "seeded/" + n for n in ("dfs.bin", "lake.bin"))
    step("ls", lambda: check(fs.ls(root + "seeded") == seeded and filesystem in fs.ls(""),
                             "ls gave %s" % fs.ls(root + "seeded")))
    step("find", lambda: check(fs.find(root + "seeded") == seeded, "find: %s"
                               % fs.find(root + "seeded")))
    step("glob", lambda: check(fs.glob(root + "seeded/*.bin") == seeded, "glob: %s"
                               % fs.glob(root + "seeded/*.bin")))
    for path in seeded:
        step("read " + path, lambda p=path: digests.__setitem__(
            "read:" + p[len(root):], digest(fs.cat(p))))
    step("open for read", lambda: _open_read(fs, seeded[0]))
    step("pipe", lambda: fs.pipe(root + "adlfs/small.bin", payload("adlfs/small.bin", 1000)))
    step("open for write", lambda: _open_write(fs, root + "adlfs/written.bin"))
    step("put and get 20 MB", lambda: _put_get(fs, root, workdir))
    step("mv a file", lambda: _mv_file(fs, root))
    step("mv a folder", lambda: _mv_folder(fs, root))
    step("rm -r", lambda: _rm_recursive(fs, root))
    step("pandas and pyarrow parquet", lambda: _parquet(fs, root))


def _open_read(fs, path: str) -> None:
    with fs.open(path, "rb") as f:
        f.seek(1000)
        got = f.read(5000)
    name = path.split("/", 1)[1]
    check(got == payload(name, 300_000)[1000:6000], "a ranged read differs")


def _open_write(fs, path: str) -> None:
    data = payload("adlfs/written.bin", 200_000)
    with fs.open(path, "wb", block_size=64 * 1024) as f:
        for start in range(0, len(data), 50_000):
            f.write(data[start:start + 50_000])
    fs.invalidate_cache()
    check(fs.info(path)["size"] == len(data), "the written size differs")


def _put_get(fs, root: str, workdir: str) -> None:
    local, back = os.path.join(workdir, "big.bin"), os.path.join(workdir, "big.back")
    data = payload("adlfs/big.bin", BIG)
    with open(local, "wb") as f:
        f.write(data)
    fs.put(local, root + "adlfs/big.bin")
    fs.get(root + "adlfs/big.bin", back)
    with open(back, "rb") as f:
        check(f.read() == data, "the 20 MB file came back different")


def _mv_file(fs, root: str) -> None:
    fs.pipe(root + "adlfs/mv/src.txt", b"move me")
    fs.mv(root + "adlfs/mv/src.txt", root + "adlfs/mv/dst.txt")
    fs.invalidate_cache()
    check(not fs.exists(root + "adlfs/mv/src.txt"), "the source is still there")
    check(fs.cat(root + "adlfs/mv/dst.txt") == b"move me", "the moved file differs")


def _mv_folder(fs, root: str) -> None:
    fs.pipe({root + "adlfs/dir/1.txt": b"1", root + "adlfs/dir/sub/2.txt": b"2"})
    fs.mv(root + "adlfs/dir", root + "adlfs/moved", recursive=True)
    fs.invalidate_cache()
    check(not fs.exists(root + "adlfs/dir"), "the source folder is still there")
    found = fs.find(root + "adlfs/moved")
    check(found == [root + "adlfs/moved/1.txt", root + "adlfs/moved/sub/2.txt"],
          "moved: %s" % found)
    check(fs.cat(root + "adlfs/moved/sub/2.txt") == b"2", "a moved file differs")


def _rm_recursive(fs, root: str) -> None:
    fs.rm(root + "adlfs/moved", recursive=True)
    fs.invalidate_cache()
    check(not fs.exists(root + "adlfs/moved"), "the folder is still there")
    check(fs.find(root + "adlfs/moved") == [], "files are left")


def _parquet(fs, root: str) -> None:
    import pandas as pd
    import pyarrow.parquet as pq

    frame = pd.DataFrame({"n": list(range(1000)), "s": ["x%d" % i for i in range(1000)]})
    frame.to_parquet("abfs://%sadlfs/table.parquet" % root)
    check(pd.read_parquet("abfs://%sadlfs/table.parquet" % root).equals(frame),
          "pandas read back a different frame")
    table = pq.read_table(root + "adlfs/table.parquet", filesystem=fs)
    check(table.num_rows == 1000 and table.column("s")[999].as_py() == "x999",
          "pyarrow read back a different table")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    report()
