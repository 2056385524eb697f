"""Client CPU of one lake request: ``ctx.lake``'s ranged read against bare urllib3.

Starts the emulators (their own process, no network model: only the client's CPU is
measured), writes one file, then reads the same range ``--reads`` times each way in this
process and prints the CPU time (``time.process_time``) per MB:

- ``store.rest.read``: what the column stager, a download and an open file send
  (``worker/lake/http.py``: azure-core's pipeline and its policies over the lean urllib3
  transport of ``worker/lake/transport.py``);
- a bare ``urllib3.PoolManager`` GET with the same headers: no checks, the floor.

The two alternate in ``--rounds`` rounds (each a ``--reads``/``--rounds`` share), so that a
machine whose speed drifts during the run (other work on its cores) weighs on both alike.

    python bench/bench_requests.py [--sizes 409600 65536] [--reads 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from emulated import start_emulators

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cpu_seconds(read, reads: int) -> float:
    started = time.process_time()
    for _ in range(reads):
        read()
    return time.process_time() - started


def side_by_side(ours, bare, size: int, reads: int, rounds: int):
    """CPU ms per MB of ``ours`` and ``bare``, run in alternating rounds."""
    ours(), bare()  # connections and a token in place before the clock starts
    share = max(1, reads // rounds)
    spent = [0.0, 0.0]
    for _ in range(rounds):
        spent[0] += cpu_seconds(ours, share)
        spent[1] += cpu_seconds(bare, share)
    megabytes = share * rounds * size / 1e6
    return spent[0] * 1000 / megabytes, spent[1] * 1000 / megabytes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[409600, 65536])
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-requests-"))
    proc, env = start_emulators(workdir)
    try:
        os.environ.update(env)
        import urllib3
        from azure.identity import ManagedIdentityCredential

        from worker.config import Config
        from worker.lake import open_store
        from worker.lake.http import API_VERSION, STORAGE_SCOPE

        filesystem = "r" + uuid.uuid4().hex[:8]
        base = env["WORKER_LAKE_URL"].rsplit("/", 1)[0]
        config = Config.from_env(dict(os.environ, WORKER_LAKE_URL=f"{base}/{filesystem}"))
        store = open_store(config.lake_url, config=config)
        store.rest._http.send("PUT", f"{base}/{filesystem}?restype=container", {}, ok=(201,))
        token = ManagedIdentityCredential(client_id=env["AZURE_CLIENT_ID"]).get_token(
            STORAGE_SCOPE).token
        pool = urllib3.PoolManager(ca_certs=env["REQUESTS_CA_BUNDLE"])
        print(f"Python {sys.version.split()[0]}, {args.reads} reads each, client CPU per MB")
        for size in args.sizes:
            store.write_bytes("data.bin", os.urandom(size))

            def bare(size: int = size) -> None:
                response = pool.request(
                    "GET", f"{base}/{filesystem}/data.bin", preload_content=False, headers={
                        "Authorization": f"Bearer {token}", "x-ms-version": API_VERSION,
                        "Range": f"bytes=0-{size - 1}"})
                assert len(response.read()) == size
                response.release_conn()

            ours, floor = side_by_side(lambda size=size: store.rest.read("data.bin", 0, size),
                                       bare, size, args.reads, args.rounds)
            print(f"  {size:>8} B: ctx.lake {ours:6.2f} ms/MB, bare urllib3 {floor:6.2f} ms/MB, "
                  f"ratio {ours / floor:.2f}")
        store.close()
    finally:
        proc.terminate()
        proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
