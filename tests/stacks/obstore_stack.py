"""obstore (Rust's object_store) against the emulators, configured by the env file alone.

``python tests/stacks/obstore_stack.py FILESYSTEM``, run with the env file's variables
(``AzureStore(container)`` reads AZURE_STORAGE_ACCOUNT_NAME/_KEY and AZURE_STORAGE_ENDPOINT;
its TLS trusts SSL_CERT_FILE). Reads the files the test seeded under ``seeded/``, writes
its own under ``obstore/``, and prints the report of ``steps.py``.
"""

from __future__ import annotations

import sys

from payload import digest, payload
from steps import check, digests, report, step


def main(filesystem: str) -> None:
    import obstore as obs
    from obstore.store import AzureStore

    store = AzureStore(filesystem)
    for path in ("seeded/dfs.bin", "seeded/lake.bin"):
        step("get " + path, lambda p=path: digests.__setitem__(
            "read:" + p, digest(bytes(obs.get(store, p).bytes()))))
    step("get ranges", lambda: _ranges(obs, store))
    step("put", lambda: obs.put(store, "obstore/small.bin", payload("obstore/small.bin", 1000)))
    step("multipart put", lambda: obs.put(
        store, "obstore/multi.bin", payload("obstore/multi.bin", 1 << 20),
        chunk_size=256 * 1024, use_multipart=True))
    step("head", lambda: check(obs.head(store, "obstore/multi.bin")["size"] == 1 << 20,
                               "head gave another size"))
    step("list with delimiter", lambda: _list(obs, store))
    step("copy", lambda: _copy(obs, store))
    step("rename", lambda: _rename(obs, store))
    step("delete", lambda: _delete(obs, store))
    step("put if absent", lambda: _put_if_absent(obs, store))


def _ranges(obs, store) -> None:
    data = payload("seeded/dfs.bin", 300_000)
    check(bytes(obs.get_range(store, "seeded/dfs.bin", start=10, end=1010)) == data[10:1010],
          "get_range differs")
    parts = obs.get_ranges(store, "seeded/dfs.bin", starts=[0, 200_000], ends=[100, 250_000])
    check([bytes(p) for p in parts] == [data[:100], data[200_000:250_000]],
          "get_ranges differs")


def _list(obs, store) -> None:
    obs.put(store, "obstore/sub/x.txt", b"x")
    listing = obs.list_with_delimiter(store, "obstore")
    names = sorted(o["path"] for o in listing["objects"])
    check(names == ["obstore/multi.bin", "obstore/small.bin"], "objects: %s" % names)
    check(listing["common_prefixes"] == ["obstore/sub"], "prefixes: %s"
          % listing["common_prefixes"])
    everything = sorted(o["path"] for batch in obs.list(store, "obstore") for o in batch)
    check(everything == ["obstore/multi.bin", "obstore/small.bin", "obstore/sub/x.txt"],
          "list: %s" % everything)


def _copy(obs, store) -> None:
    obs.copy(store, "obstore/small.bin", "obstore/copy.bin")
    check(bytes(obs.get(store, "obstore/copy.bin").bytes()) == payload("obstore/small.bin",
                                                                        1000), "copy differs")
    from obstore.exceptions import AlreadyExistsError

    try:
        obs.copy(store, "obstore/small.bin", "obstore/copy.bin", overwrite=False)
    except AlreadyExistsError:
        return
    raise AssertionError("a copy onto an existing object without overwrite succeeded")


def _rename(obs, store) -> None:
    obs.rename(store, "obstore/copy.bin", "obstore/renamed.bin")
    check(obs.head(store, "obstore/renamed.bin")["size"] == 1000, "the renamed size differs")
    try:
        obs.head(store, "obstore/copy.bin")
    except FileNotFoundError:  # obstore's NotFoundError
        return
    raise AssertionError("the renamed source is still there")


def _delete(obs, store) -> None:
    obs.delete(store, "obstore/renamed.bin")
    obs.delete(store, ["obstore/sub/x.txt"])
    names = sorted(o["path"] for batch in obs.list(store, "obstore") for o in batch)
    check(names == ["obstore/multi.bin", "obstore/small.bin"], "left: %s" % names)


def _put_if_absent(obs, store) -> None:
    from obstore.exceptions import AlreadyExistsError

    try:
        obs.put(store, "obstore/small.bin", b"again", mode="create")
    except AlreadyExistsError:
        return
    raise AssertionError("a create over an existing object succeeded")


if __name__ == "__main__":
    main(sys.argv[1])
    report()
