"""Emulator throughput: requests/s for small reads, MB/s for large ranged reads (TLS).

The emulators run in their own process (``python -m worker emulate``), as in the other
benchmarks, so client and server do not share a GIL. Two clients are measured: raw
``http.client`` over one keep-alive TLS connection (the emulator's own ceiling) and the
real DataLake SDK (what a worker sees).

    .ci-venvs/py312/bin/python bench/bench_emulators.py [--large-mib 256] [--small-n 2000]
                                                       [--link-mbps N] [--latency-ms N]

With ``--link-mbps``/``--latency-ms`` the emulators run under their network model; the
emulator process's CPU seconds during the large reads are printed either way, so the cost
of pacing is the difference between a run with and without ``--link-mbps``. The emulator's
CPU per raw small read (``/proc``) is the steadiest figure on a shared machine: it measures
the server's cost of a request, whatever else the cores are doing.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import signal
import ssl
import sys
import tempfile
import time
import urllib.request
from typing import Dict
from urllib.parse import urlencode, urlsplit

from emulated import start_emulators


def token(env: Dict[str, str]) -> str:
    query = urlencode({"api-version": "2018-02-01", "resource": "https://storage.azure.com",
                       "client_id": env["AZURE_CLIENT_ID"]})
    request = urllib.request.Request(
        env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] + "/metadata/identity/oauth2/token?" + query,
        headers={"Metadata": "true"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)["access_token"]


def seed(fs, name: str, size: int) -> None:
    block = os.urandom(1 << 20)
    data = (block * (size // len(block) + 1))[:size]
    fs.get_file_client(name).upload_data(data, overwrite=True, chunk_size=32 << 20)


def raw_small(env: Dict[str, str], bearer: str, n: int) -> float:
    url = urlsplit(env["WORKER_LAKE_URL"] + "/small.bin")
    conn = http.client.HTTPSConnection(
        url.netloc, context=ssl.create_default_context(cafile=env["REQUESTS_CA_BUNDLE"]))
    headers = {"Authorization": "Bearer " + bearer, "x-ms-range": "bytes=0-1023",
               "x-ms-version": "2025-07-05"}
    started = time.perf_counter()
    for _ in range(n):
        conn.request("GET", url.path, headers=headers)
        conn.getresponse().read()
    return n / (time.perf_counter() - started)


def raw_large(env: Dict[str, str], bearer: str, size: int, chunk: int = 32 << 20) -> float:
    url = urlsplit(env["WORKER_LAKE_URL"] + "/large.bin")
    conn = http.client.HTTPSConnection(
        url.netloc, context=ssl.create_default_context(cafile=env["REQUESTS_CA_BUNDLE"]))
    buffer = memoryview(bytearray(chunk))
    started = time.perf_counter()
    for start in range(0, size, chunk):
        end = min(start + chunk, size) - 1
        conn.request("GET", url.path, headers={
            "Authorization": "Bearer " + bearer, "x-ms-range": "bytes=%d-%d" % (start, end),
            "x-ms-version": "2025-07-05"})
        response = conn.getresponse()
        view, want = buffer, end - start + 1
        while want:
            got = response.readinto(view[:want])
            view, want = view[got:], want - got
    return size / (time.perf_counter() - started) / 1e6


def sdk_small(fs, n: int) -> float:
    client = fs.get_file_client("small.bin")
    started = time.perf_counter()
    for _ in range(n):
        client.download_file().readall()
    return n / (time.perf_counter() - started)


def sdk_large(fs, size: int, concurrency: int) -> float:
    client = fs.get_file_client("large.bin")
    target = io.BytesIO(bytearray(size))
    started = time.perf_counter()
    client.download_file(max_concurrency=concurrency).readinto(target)
    return size / (time.perf_counter() - started) / 1e6


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large-mib", type=int, default=256)
    parser.add_argument("--small-n", type=int, default=2000)
    parser.add_argument("--link-mbps", type=float, default=None)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        proc, env = start_emulators(workdir, link_mbps=args.link_mbps,
                                    latency_ms=args.latency_ms)
        try:
            os.environ.update(env)
            from azure.identity import ManagedIdentityCredential
            from azure.storage.filedatalake import DataLakeServiceClient

            account, fs_name = env["WORKER_LAKE_URL"].rsplit("/", 1)
            credential = ManagedIdentityCredential(client_id=env["AZURE_CLIENT_ID"])
            fs = DataLakeServiceClient(account, credential, retry_total=0, max_chunk_get_size=
                                       32 << 20).get_file_system_client(fs_name)
            size = args.large_mib << 20
            seed(fs, "small.bin", 1024)
            seed(fs, "large.bin", size)
            bearer = token(env)
            print("python %s, link %s Mbit/s, latency %g ms" % (
                sys.version.split()[0], args.link_mbps or "unlimited", args.latency_ms))
            before = cpu_seconds(proc.pid)
            print("small reads, raw keep-alive TLS: %.0f req/s" % raw_small(env, bearer,
                                                                            args.small_n))
            print("emulator CPU per raw small read: %.0f us" % (
                (cpu_seconds(proc.pid) - before) / args.small_n * 1e6))
            print("small reads, DataLake SDK:       %.0f req/s" % sdk_small(fs, args.small_n // 4))
            before = cpu_seconds(proc.pid)
            print("large read %d MiB, raw 32 MiB ranges: %.0f MB/s" % (
                args.large_mib, max(raw_large(env, bearer, size) for _ in range(3))))
            for concurrency in (1, 2):
                print("large read %d MiB, SDK max_concurrency=%d: %.0f MB/s" % (
                    args.large_mib, concurrency,
                    max(sdk_large(fs, size, concurrency) for _ in range(2))))
            print("emulator CPU during the 7 large reads (%d MiB): %.2f s" % (
                7 * args.large_mib, cpu_seconds(proc.pid) - before))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
