"""Lake transfers: ``ctx.lake`` against plain loops over the Azure SDK, on the emulator.

One run starts ``python -m worker emulate`` (its own process, so the server does not share
our GIL), then measures, side by side (each case ``--repeat`` times in rotating order, the
median counts):

- 500 small files (64 KiB) up and down: a sequential loop over ``DataLakeFileClient`` with
  the SDK's default settings vs ``Lake.upload`` (+ commit: the atomic renames) and
  ``Lake.download`` of the folder;
- one large file (1 GiB by default) up and down: the SDK with default settings, the SDK's
  best settings (``max_concurrency``), and ``Lake.upload`` (+ commit) / ``Lake.download``.

    python bench/bench_lake.py [--files 500] [--file-kib 64] [--large-mib 1024]
                               [--repeat 3] [--latency-ms 0] [--link-mbps N]

The emulator answers in well under a millisecond; a real Data Lake takes milliseconds per
request. ``--latency-ms`` and ``--link-mbps`` set the emulator's network model: a wait before
every answer (waits of parallel requests overlap, as on the network) and one link shared by
all connections (a Standard_D2a_v4 node has about 2000 Mbit/s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, List, Optional

from emulated import start_emulators
from physical import Link, cpu_seconds, per_mb, process_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BEST_CONCURRENCY = 8


def start_lake_emulator(tmp: Path, latency_ms: float, link_mbps: Optional[float] = None):
    return start_emulators(tmp, latency_ms=latency_ms, link_mbps=link_mbps)


#: Requests of each case that must follow one another (the rest overlap): a listing or the
#: first piece before the others, the commit's claim, record, rename and clean-up.
SERIAL = {"small up": 6, "small down": 2, "large up": 8, "large down": 2}
CPU: Dict[str, float] = {}  # client CPU ms per MB moved, median, per case
SERVER_PID: Optional[int] = None  # the emulators' process, whose CPU is reported apart


def measure(cases: Dict[str, Callable[[], None]], cleanup: Callable[[], None], repeat: int,
            results: Dict[str, float], moved: int = 0) -> None:
    """Run every case ``repeat`` times in rotating order (cleaning up after each run, so the
    emulator's memory does not grow); keep the median of each, of wall time and of client
    CPU per MB ``moved`` (the emulator is another process: its CPU is not counted)."""
    times: Dict[str, List[float]] = {label: [] for label in cases}
    cpu: Dict[str, List[float]] = {label: [] for label in cases}
    server: Dict[str, List[float]] = {label: [] for label in cases}
    labels = list(cases)
    for round_ in range(repeat):
        for label in labels[round_ % len(labels):] + labels[:round_ % len(labels)]:
            started, cpu_started, server_started = (time.perf_counter(), cpu_seconds(),
                                                    _server_cpu())
            cases[label]()
            times[label].append(time.perf_counter() - started)
            cpu[label].append(per_mb(cpu_seconds() - cpu_started, moved))
            server[label].append(per_mb(_server_cpu() - server_started, moved))
            cleanup()
    for label in labels:
        results[label] = statistics.median(times[label])
        CPU[label] = statistics.median(cpu[label])
        runs = " ".join(f"{t:.2f}" for t in times[label])
        print(f"  {label:<46} {results[label]:7.2f} s  {CPU[label]:6.2f} ms CPU/MB  "
              f"(emulator {statistics.median(server[label]):5.2f})  (runs: {runs})",
              flush=True)


def _server_cpu() -> float:
    return process_cpu_seconds(SERVER_PID) if SERVER_PID else 0.0


def sdk_client(env: Dict[str, str], filesystem: str):
    """What a handler author would write: the SDK with its default settings."""
    from azure.identity import ManagedIdentityCredential
    from azure.storage.filedatalake import DataLakeServiceClient

    account_url = env["WORKER_LAKE_URL"].rsplit("/", 1)[0]
    credential = ManagedIdentityCredential(client_id=env["AZURE_CLIENT_ID"])
    return DataLakeServiceClient(account_url, credential=credential).get_file_system_client(
        filesystem)


def make_files(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"f{i:04}.bin").write_bytes(os.urandom(size))


def small_files(fs, lake, tmp: Path, args, results: Dict[str, float]) -> None:
    source = tmp / "small"
    make_files(source, args.files, args.file_kib * 1024)
    names = sorted(p.name for p in source.iterdir())

    def sdk_up() -> None:
        for name in names:
            fs.get_file_client(f"small-sdk/{name}").upload_data(
                (source / name).read_bytes(), overwrite=True)

    def sdk_down() -> None:
        target = tmp / "small-down"
        target.mkdir()
        for name in names:
            with open(target / name, "wb") as f:
                fs.get_file_client(f"small/{name}").download_file().readinto(f)

    def lake_up() -> None:
        lake.upload(str(source), "small-lake")
        lake.commit()

    def lake_down() -> None:
        lake.download("small", str(tmp / "small-down"))
        assert len(list((tmp / "small-down").iterdir())) == len(names)

    def cleanup() -> None:
        shutil.rmtree(tmp / "small-down", ignore_errors=True)
        for folder in ("small-sdk", "small-lake"):
            if fs.get_directory_client(folder).exists():
                fs.get_directory_client(folder).delete_directory()

    lake.upload(str(source), "small")  # what the downloads read
    lake.commit()
    n = args.files
    moved = n * args.file_kib * 1024
    measure(_cases(args, {f"small up: SDK sequential loop ({n} files)": sdk_up,
             f"small up: ctx.lake upload + commit ({n} files)": lake_up}), cleanup,
            args.repeat, results, moved)
    measure(_cases(args, {f"small down: SDK sequential loop ({n} files)": sdk_down,
             f"small down: ctx.lake download ({n} files)": lake_down}), cleanup,
            args.repeat, results, moved)


def large_file(fs, lake, tmp: Path, args, results: Dict[str, float]) -> None:
    source = tmp / "large.bin"
    with open(source, "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(args.large_mib):
            f.write(block)
    size = source.stat().st_size

    def sdk_up(**options) -> Callable[[], None]:
        def run() -> None:
            with open(source, "rb") as f:
                fs.get_file_client("large/up.bin").upload_data(
                    f, length=size, overwrite=True, **options)
        return run

    def sdk_down(**options) -> Callable[[], None]:
        def run() -> None:
            with open(tmp / "large-down.bin", "wb") as f:
                fs.get_file_client("large/in.bin").download_file(**options).readinto(f)
        return run

    def lake_up() -> None:
        lake.upload(str(source), "large/up.bin")
        lake.commit()

    def lake_down() -> None:
        lake.download("large/in.bin", str(tmp / "large-down.bin"))
        assert (tmp / "large-down.bin").stat().st_size == size

    def cleanup() -> None:
        for path in (tmp / "large-down.bin",):
            if path.exists():
                path.unlink()
        if fs.get_file_client("large/up.bin").exists():
            fs.get_file_client("large/up.bin").delete_file()

    lake.upload(str(source), "large/in.bin")  # what the downloads read
    lake.commit()
    best = {"max_concurrency": BEST_CONCURRENCY}
    label = f"{args.large_mib} MiB"
    measure(_cases(args, {f"large up: SDK defaults ({label})": sdk_up(),
             f"large up: SDK max_concurrency={BEST_CONCURRENCY}": sdk_up(**best),
             "large up: ctx.lake upload + commit": lake_up}), cleanup, args.repeat, results,
            size)
    measure(_cases(args, {f"large down: SDK defaults ({label})": sdk_down(),
             f"large down: SDK max_concurrency={BEST_CONCURRENCY}": sdk_down(**best),
             "large down: ctx.lake download": lake_down}), cleanup, args.repeat, results, size)


def _cases(args, cases: Dict[str, Callable[[], None]]) -> Dict[str, Callable[[], None]]:
    """With ``--only-lake``, ctx.lake's cases alone (a sweep of its settings)."""
    return {k: v for k, v in cases.items() if "ctx.lake" in k or not args.only_lake}


def ratios(results: Dict[str, float], args) -> None:
    def pick(prefix: str) -> float:
        return next(v for k, v in results.items() if k.startswith(prefix))

    link = Link(args.link_mbps, args.latency_ms)
    small, large = args.files * args.file_kib * 1024, args.large_mib << 20
    print("ratios of medians (higher is better for ctx.lake):")
    for way in ("up", "down"):
        seq, lake = pick(f"small {way}: SDK"), pick(f"small {way}: ctx.lake")
        bound = link.bound(small, SERIAL[f"small {way}"])
        print(f"  small {way}: ctx.lake vs SDK sequential loop   {seq / lake:6.2f}x   "
              f"(bound {bound:.2f} s: ctx.lake at {lake / bound:.2f}x of it)")
    for way in ("up", "down"):
        default, best = pick(f"large {way}: SDK defaults"), pick(f"large {way}: SDK max")
        lake = pick(f"large {way}: ctx.lake")
        bound = link.bound(large, SERIAL[f"large {way}"])
        print(f"  large {way}: ctx.lake vs SDK defaults          {default / lake:6.2f}x")
        print(f"  large {way}: ctx.lake vs SDK best settings     {best / lake:6.2f}x")
        print(f"  large {way}: ctx.lake vs its physical bound    {lake / bound:6.2f}x "
              f"(bound {bound:.2f} s = {large / 1e6:.0f} MB at the link + "
              f"{SERIAL[f'large {way}']} serial requests)")
    print(f"  ({link.describe()}; client CPU per MB in the table above)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--file-kib", type=int, default=64)
    parser.add_argument("--large-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case (median)")
    parser.add_argument("--latency-ms", type=float, default=0,
                        help="added to every lake request by the emulator (default 0)")
    parser.add_argument("--link-mbps", type=float, default=None,
                        help="one link shared by all connections (default: unlimited)")
    parser.add_argument("--only-lake", action="store_true",
                        help="ctx.lake's cases only, no ratios (to sweep WORKER_* settings)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-lake-"))
    proc, env = start_lake_emulator(tmp, args.latency_ms, args.link_mbps)
    global SERVER_PID
    SERVER_PID = proc.pid
    try:
        os.environ.update(env)  # the CA bundle and IMDS address for every client below
        from worker.config import Config
        from worker.lake import Lake, open_store

        filesystem = "bench-" + uuid.uuid4().hex[:8]
        fs = sdk_client(env, filesystem)
        fs.create_file_system()
        config = Config.from_env(dict(os.environ, WORKER_LAKE_URL=env["WORKER_LAKE_URL"]
                                      .rsplit("/", 1)[0] + "/" + filesystem))
        lake = Lake(open_store(config.lake_url, config=config), "bench",
                    concurrency=config.transfer_concurrency)
        print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, emulator latency "
              f"{args.latency_ms:g} ms/request, link {args.link_mbps or 'unlimited'} Mbit/s; "
              f"ctx.lake: "
              f"{config.transfer_concurrency} files in parallel, {config.lake_file_concurrency}"
              f" requests per file, {config.lake_chunk_size >> 20} MiB chunks")
        results: Dict[str, float] = {}
        small_files(fs, lake, tmp, args, results)
        large_file(fs, lake, tmp, args, results)
        if not args.only_lake:
            ratios(results, args)
        lake.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
