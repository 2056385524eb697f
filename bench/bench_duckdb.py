"""DuckDB over the lake: ctx.duckdb end to end vs DuckDB on local files vs SDK + pandas.

One run, against the Data Lake emulator in its own process (``python -m worker emulate``,
TLS on loopback), on a generated dataset (default about 1 GB of parquet in 50 files):

(a) ``python -m worker run bench/bench_duckdb.py:rollup``: ``ctx.lake.dataset`` streamed
    (DuckDB scans it through ranged reads: only the columns the query needs), ``ctx.sql``
    over it, the result written back through the lake;
(s) the same with ``stage=True``: the files downloaded to scratch in parallel first;
(p) staged with ``columns=`` the query's columns: only their parquet chunks are downloaded
    (sparse local copies, ``worker/lake/columns.py``);
(b) the same query by DuckDB on the files already on local disk, same threads and
    memory_limit (the floor);
(c) today's hand-written pattern: download each file with the DataLake SDK,
    ``pandas.read_parquet`` and a groupby per file, combine, upload the result;
(l) an ideal client, the lower bound of any Python path on this machine: the credential
    library and DuckDB imported, one token, the byte ranges (p) reads, known in advance,
    fetched with bare urllib3 (no listing, footers, retries, checks, logs or write back).

Each runs as its own process; wall time and peak RSS (``wait4``) are measured from outside.
(a), (s) and (p) run as the tasks of one Batch node (the variables Batch sets), whose token
cache (``worker/tokencache.py``) holds the storage token, fetched once before the timed runs
as the node's first task would: a task then imports no azure-identity and asks no identity
endpoint, as on a busy node. ``--no-token-cache`` runs them off Batch instead, each getting
its own token through azure-identity's DefaultAzureCredential (before issue 27, on a node too).

    .ci-venvs/py38/bin/python bench/bench_duckdb.py [--files 50] [--rows 810000]
        [--memory-mib 1024] [--data DIR] [--repeat 1] [--link-mbps 2000] [--latency-ms 10]

``--link-mbps``/``--latency-ms`` run the emulator under its network model (a Standard_D2a_v4
node: 2000 Mbit/s; Data Lake: milliseconds per request). Each variant's client CPU (user +
system of its process) is reported per MB it must move, and (p) against its physical bound:
the bytes of its column chunks at the link's rate, plus the requests that must follow one
another, plus (b)'s local compute (``bench/physical.py``).

Only the standard library is imported at the top: (a) imports this file as its handler.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emulated import start_emulators  # noqa: E402
from physical import Link, child_cpu_seconds, per_mb, process_cpu_seconds  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGIONS = ("eu-west", "eu-north", "us-east", "us-west", "us-central", "apac-sg", "apac-jp",
           "apac-au", "latam-br", "latam-mx", "africa-za", "me-ae")

# The queries every variant computes: the example (two columns of six) and a daily
# rollup reading five columns with a distinct count (heavier, spills at 1 GiB).
QUERIES = {
    "total": "select region, sum(amount) as total from sales group by region order by region",
    "rollup": """
select region, date_trunc('day', ts) as day, count(*) as orders,
       count(distinct customer) as customers, sum(amount) as revenue, max(qty) as max_qty
from sales group by all order by region, day
""",
}


# -- (a) the handler run by the worker ---------------------------------------------------


#: The columns each query reads, for (p).
QUERY_COLUMNS = {
    "total": ["region", "amount"],
    "rollup": ["region", "ts", "customer", "amount", "qty"],
}


def rollup(ctx, source: str, target: str, query: str = "total", stage: str = "no",
           columns: str = "no"):
    """(a), (s) and (p): the ctx.duckdb path; returns its own stage/query timings."""
    started = time.perf_counter()
    sales = ctx.lake.dataset(source, stage=stage == "yes",
                             columns=QUERY_COLUMNS[query] if columns == "yes" else None)
    if sales.mode == "stage":
        sales.local_files(ctx.scratch / "lake")  # stage now, to time it apart from the query
    staged = time.perf_counter()
    out = ctx.sql(QUERIES[query], sales=sales)
    ctx.lake.write_table(out, target)
    done = time.perf_counter()
    settings = ctx.duckdb.sql(
        "select current_setting('threads'), current_setting('memory_limit')").fetchall()[0]
    return {"stage_s": round(staged - started, 2), "query_write_s": round(done - staged, 2),
            "threads": settings[0], "memory_limit": settings[1], "files": len(sales.files),
            "mode": sales.mode, "azure_identity": "azure.identity" in sys.modules}


# -- (b) the floor -----------------------------------------------------------------------


def floor(data_dir: str, out: str, threads: int, memory_mib: int, tmp: str, query: str) -> None:
    import duckdb

    conn = duckdb.connect(config={"threads": str(threads), "memory_limit": f"{memory_mib}MiB",
                                  "temp_directory": tmp})
    conn.execute(f"create view sales as select * from read_parquet('{data_dir}/*.parquet')")
    conn.sql(QUERIES[query]).write_parquet(out)


# -- (c) today's pattern -----------------------------------------------------------------


def pandas_pattern(source: str, target: str, query: str) -> None:
    import io

    import pandas as pd
    from azure.identity import ManagedIdentityCredential
    from azure.storage.filedatalake import DataLakeServiceClient

    account, fs_name = os.environ["WORKER_LAKE_URL"].rsplit("/", 1)
    credential = ManagedIdentityCredential(client_id=os.environ["AZURE_CLIENT_ID"])
    fs = DataLakeServiceClient(account, credential=credential).get_file_system_client(fs_name)
    partials, pairs = [], []
    for path in sorted(p.name for p in fs.get_paths(source) if not p.is_directory):
        df = pd.read_parquet(io.BytesIO(fs.get_file_client(path).download_file().readall()))
        if query == "total":
            partials.append(df.groupby("region")["amount"].sum())
            continue
        df["day"] = df["ts"].dt.floor("D")
        keys = ["region", "day"]
        partials.append(df.groupby(keys).agg(
            orders=("amount", "size"), revenue=("amount", "sum"), max_qty=("qty", "max")))
        pairs.append(df[keys + ["customer"]].drop_duplicates())
    if query == "total":
        total = pd.concat(partials).groupby(level=0).sum().rename("total").reset_index()
        fs.get_file_client(target).upload_data(total.to_parquet(index=False), overwrite=True)
        return
    both = pd.concat(partials).groupby(level=[0, 1]).agg(
        {"orders": "sum", "revenue": "sum", "max_qty": "max"})
    both["customers"] = pd.concat(pairs).drop_duplicates().groupby(["region", "day"]).size()
    data = both.reset_index().sort_values(["region", "day"]).to_parquet(index=False)
    fs.get_file_client(target).upload_data(data, overwrite=True)


# -- (l) an ideal client: the lower bound of any Python path here -------------------------


def ideal_ranges(data_dir: str, prefix: str, query: str) -> List[Tuple[str, int, int, int]]:
    """(lake key, file size, start, end) of every read (l) makes: the query's column chunks
    as the stager computes them, taken from the local copies, so (l) reads no footers."""
    sys.path.insert(0, ROOT)
    from pathlib import Path

    from worker.lake import columns

    reads = []
    names = sorted(os.listdir(data_dir))
    chunks = columns._chunks({name: Path(data_dir, name) for name in names})
    for name in names:
        path = os.path.join(data_dir, name)
        size = os.path.getsize(path)
        spans = columns._ranges(Path(path), size, chunks[name], set(QUERY_COLUMNS[query]))
        spans.append((size - 8 - _footer_length(path), size))
        for start, end in columns._split(columns._coalesce(spans), columns.PIECE):
            reads.append((f"{prefix}/{name}", size, start, end))
    return reads


def _footer_length(path: str) -> int:
    import struct

    with open(path, "rb") as f:
        f.seek(-8, os.SEEK_END)
        return struct.unpack("<I", f.read(4))[0]


def ideal(ranges_file: str, out_dir: str, threads: int, memory_mib: int, query: str,
          concurrency: int) -> None:
    """What no real path can beat here: the credential library and DuckDB imported, one
    token, the known ranges fetched with bare urllib3 (no retries, checks or logs) into
    sparse files, the query run on them, its result written locally."""
    from concurrent.futures import ThreadPoolExecutor

    import duckdb
    import urllib3
    from azure.identity import ManagedIdentityCredential

    with open(ranges_file) as f:
        reads = json.load(f)
    token = ManagedIdentityCredential(client_id=os.environ["AZURE_CLIENT_ID"]).get_token(
        "https://storage.azure.com/.default").token
    pool = urllib3.PoolManager(maxsize=concurrency, ca_certs=os.environ["REQUESTS_CA_BUNDLE"])
    base = os.environ["WORKER_LAKE_URL"]
    targets = {}
    for key, size, _, _ in reads:
        if key not in targets:
            targets[key] = os.path.join(out_dir, key.replace("/", "_"))
            with open(targets[key], "wb") as f:
                f.truncate(size)

    def fetch(read) -> None:
        key, _, start, end = read
        response = pool.request("GET", f"{base}/{key}", preload_content=False, headers={
            "Authorization": f"Bearer {token}", "x-ms-version": "2023-11-03",
            "Range": f"bytes={start}-{end - 1}"})
        data = response.read()
        response.release_conn()
        fd = os.open(targets[key], os.O_WRONLY)
        os.pwrite(fd, data, start)
        os.close(fd)

    with ThreadPoolExecutor(concurrency) as executor:
        list(executor.map(fetch, reads))
    conn = duckdb.connect(config={"threads": str(threads), "memory_limit": f"{memory_mib}MiB"})
    files = ", ".join(f"'{path}'" for path in targets.values())
    columns = ", ".join(QUERY_COLUMNS[query])
    conn.execute(f"create view sales as select {columns} from read_parquet([{files}])")
    conn.sql(QUERIES[query]).write_parquet(os.path.join(out_dir, "result.parquet"))


# -- the run -----------------------------------------------------------------------------


def generate(data_dir: str, files: int, rows: int) -> int:
    """Write the dataset once (kept in ``data_dir`` for later runs); returns its bytes."""
    import duckdb

    os.makedirs(data_dir, exist_ok=True)
    regions = "[" + ", ".join(f"'{r}'" for r in REGIONS) + "]"
    conn = duckdb.connect()
    for i in range(files):
        path = os.path.join(data_dir, f"part-{i:03d}.parquet")
        if os.path.exists(path):
            continue
        start = i * rows
        conn.execute(f"""copy (select
            {regions}[1 + (hash(range, 1) % 12)::int] as region,
            (hash(range, 2) % 5000000)::bigint as customer,
            timestamp '2024-01-25' + to_microseconds((hash(range, 3) % 604800000000)::bigint)
                as ts,
            round((hash(range, 4) % 1000000) / 100.0, 2)::double as amount,
            (1 + hash(range, 5) % 100)::integer as qty,
            'SKU-' || (hash(range, 6) % 50000)::varchar as sku
            from range({start}, {start + rows})) to '{path}' (format parquet)""")
    return sum(os.path.getsize(os.path.join(data_dir, f)) for f in os.listdir(data_dir))


def seed(env: Dict[str, str], data_dir: str, prefix: str) -> None:
    from azure.identity import ManagedIdentityCredential
    from azure.storage.filedatalake import DataLakeServiceClient

    os.environ.update(env)
    account, fs_name = env["WORKER_LAKE_URL"].rsplit("/", 1)
    credential = ManagedIdentityCredential(client_id=env["AZURE_CLIENT_ID"])
    fs = DataLakeServiceClient(account, credential=credential).get_file_system_client(fs_name)
    for name in sorted(os.listdir(data_dir)):
        with open(os.path.join(data_dir, name), "rb") as f:
            fs.get_file_client(f"{prefix}/{name}").upload_data(
                f, overwrite=True, chunk_size=32 << 20)


def measure(cmd: List[str], env: Dict[str, str]) -> Tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds of one process run to completion."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-3000:])
            raise SystemExit(f"{' '.join(cmd[:5])} failed with status {status}")
    return seconds, usage.ru_maxrss / 1024, child_cpu_seconds(usage)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--rows", type=int, default=810000, help="rows per file")
    parser.add_argument("--memory-mib", type=int, default=1024, help="DuckDB memory_limit")
    parser.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "bench-duckdb"))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--query", choices=sorted(QUERIES), default="total")
    parser.add_argument("--variants", default="aspbcl", help="which of a, s, p, b, c, l to run")
    parser.add_argument("--floor", nargs=4, metavar=("DATA", "OUT", "THREADS", "TMP"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--pandas", nargs=2, metavar=("SOURCE", "TARGET"), help=argparse.SUPPRESS)
    parser.add_argument("--ideal", nargs=3, metavar=("RANGES", "OUT", "THREADS"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--ideal-concurrency", type=int, default=2,
                        help="requests in flight in (l); 2 is the fastest on loopback here")
    parser.add_argument("--link-mbps", type=float, default=None,
                        help="the emulator's link, shared by all connections (default: none)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="the emulator's time to first byte per request (default 0)")
    parser.add_argument("--no-token-cache", dest="token_cache", action="store_false",
                        help="run (a), (s), (p) off Batch, each asking for its own token")
    args = parser.parse_args(argv)
    if args.floor:
        data, out, threads, tmp = args.floor
        floor(data, out, int(threads), args.memory_mib, tmp, args.query)
        return 0
    if args.pandas:
        pandas_pattern(*args.pandas, args.query)
        return 0
    if args.ideal:
        ranges, out, threads = args.ideal
        ideal(ranges, out, int(threads), args.memory_mib, args.query, args.ideal_concurrency)
        return 0
    return run(args)


def run(args) -> int:
    data_dir = os.path.join(args.data, f"{args.files}x{args.rows}")
    size = generate(data_dir, args.files, args.rows)
    print(f"dataset: {args.files} files, {size / 1e6:.0f} MB, {args.files * args.rows} rows")
    workdir = tempfile.mkdtemp(prefix="bench-duckdb-")
    emulator, emu_env = start_emulators(Path(workdir), link_mbps=args.link_mbps,
                                        latency_ms=args.latency_ms)
    try:
        seed(emu_env, data_dir, "raw/sales")
        env = dict(os.environ, **emu_env, PYTHONUNBUFFERED="1", WORKER_SCRATCH_DIR=workdir,
                   WORKER_MEMORY_MB=str(args.memory_mib * 1024 * 1024 / 1e6),
                   WORKER_DUCKDB_MEMORY_FRACTION="1")
        if args.token_cache:
            env = node_env(env, Path(workdir) / "node")
        reads = ideal_ranges(data_dir, "raw/sales", args.query)
        with open(os.path.join(workdir, "ranges.json"), "w") as f:
            json.dump(reads, f)
        column_bytes = sum(end - start for _, _, start, end in reads)
        runs: Dict[str, List[Tuple[float, float, float]]] = {v: [] for v in "aspbcl"}
        served: Dict[str, List[float]] = {v: [] for v in "aspbcl"}  # the emulators' CPU
        inner: Dict[str, dict] = {}
        for i in range(args.repeat):
            for variant in args.variants:
                cmd = commands(args, variant, i, data_dir, workdir)
                if variant == "b":
                    warm_page_cache(data_dir)
                server_started = process_cpu_seconds(emulator.pid)
                task_env = dict(env, AZ_BATCH_TASK_ID=f"{variant}{i}") if args.token_cache \
                    and variant in "asp" else env
                runs[variant].append(measure(cmd, task_env))
                served[variant].append(process_cpu_seconds(emulator.pid) - server_started)
                if variant in "asp":
                    with open(os.path.join(workdir, f"{variant}{i}.json")) as f:
                        inner[variant] = json.load(f)["return_value"]
        report(args, size, column_bytes, runs, inner, served)
    finally:
        emulator.terminate()
        emulator.wait(10)
    return 0


def node_env(env: Dict[str, str], root: Path) -> Dict[str, str]:
    """The variables of a Batch node's tasks, with its token folder (as the start task makes
    it) holding the storage token: fetched here once, as the node's first task would."""
    tokens = root / "shared" / "batch-worker" / "tokens"
    tokens.mkdir(parents=True)
    tokens.chmod(0o1733)
    (root / "task" / "wd").mkdir(parents=True)
    env = dict(env, AZ_BATCH_NODE_ID="tvm-bench", AZ_BATCH_POOL_ID="bench",
               AZ_BATCH_JOB_ID="duckdb", AZ_BATCH_NODE_SHARED_DIR=str(root / "shared"),
               AZ_BATCH_TASK_DIR=str(root / "task"),
               AZ_BATCH_TASK_WORKING_DIR=str(root / "task" / "wd"))
    warm = ("from worker.config import Config; from worker.identity import get_credential; "
            "get_credential(Config.from_env()).get_token('https://storage.azure.com/.default')")
    subprocess.run([sys.executable, "-c", warm], env=env, cwd=ROOT, check=True)
    return env


def commands(args, variant: str, i: int, data_dir: str, workdir: str) -> List[str]:
    if variant in "asp":
        return [sys.executable, "-m", "worker", "run", "bench/bench_duckdb.py:rollup",
                "--param", "source=raw/sales", "--param", f"target=curated/{variant}{i}.parquet",
                "--param", f"query={args.query}",
                "--param", f"stage={'no' if variant == 'a' else 'yes'}",
                "--param", f"columns={'yes' if variant == 'p' else 'no'}",
                "--result", os.path.join(workdir, f"{variant}{i}.json")]
    if variant == "b":
        threads = len(os.sched_getaffinity(0))
        return [sys.executable, __file__, "--memory-mib", str(args.memory_mib),
                "--query", args.query, "--floor", data_dir,
                os.path.join(workdir, f"b{i}.parquet"), str(threads), os.path.join(workdir, "t")]
    if variant == "l":
        out = tempfile.mkdtemp(prefix=f"l{i}-", dir=workdir)
        threads = len(os.sched_getaffinity(0))
        return [sys.executable, __file__, "--memory-mib", str(args.memory_mib),
                "--query", args.query, "--ideal-concurrency", str(args.ideal_concurrency),
                "--ideal", os.path.join(workdir, "ranges.json"), out, str(threads)]
    return [sys.executable, __file__, "--query", args.query, "--pandas", "raw/sales",
            f"curated/c{i}.parquet"]


def warm_page_cache(data_dir: str) -> None:
    """Read the dataset once (untimed) before (b): the floor is DuckDB's compute on files in
    memory. This machine's kernel reclaims cold page cache (DAMON), so without it (b)
    sometimes measured the disk instead (1.2 s, and 15 s for 5 GB, against 0.6 s warm)."""
    for name in sorted(os.listdir(data_dir)):
        with open(os.path.join(data_dir, name), "rb") as f:
            while f.read(16 << 20):
                pass


#: Requests of (p) that must follow one another: the listing, the footers, the chunks (each
#: wave in parallel), then the write back (put, record, rename, clean-up).
P_SERIAL = 7


def report(args, size: int, column_bytes: int, runs: Dict[str, List[Tuple[float, float, float]]],
           inner, served: Dict[str, List[float]]) -> None:
    limit = args.memory_mib * 1.048576
    link = Link(args.link_mbps, args.latency_ms)
    print(f"python {sys.version.split()[0]}, query {args.query!r}, memory_limit "
          f"{args.memory_mib} MiB ({limit:.0f} MB), dataset {size / 1e6:.0f} MB (the query's "
          f"columns: {column_bytes / 1e6:.0f} MB), {link.describe()}, best of {args.repeat}")
    print("| variant | wall s (best) | all runs s | peak RSS MB (max) | CPU s | CPU ms/MB moved "
          "| emulator CPU s |")
    print("|---|---|---|---|---|---|---|")
    names = {"a": "(a) ctx.duckdb streamed: ranged reads + query + write back",
             "s": "(s) ctx.duckdb staged: download + query + write back",
             "p": "(p) ctx.duckdb staged, columns=: their chunks + query + write back",
             "b": "(b) DuckDB on local files (floor)",
             "c": "(c) SDK download + pandas per file",
             "l": "(l) ideal client: known ranges, bare urllib3, no checks, local result"}
    moved = {"a": column_bytes, "s": size, "p": column_bytes, "b": 0, "c": size,
             "l": column_bytes}
    best, cpu = {}, {}
    for variant, measured in runs.items():
        if measured:
            best[variant] = min(t for t, _, _ in measured)
            cpu[variant] = min(c for _, _, c in measured)
            times = " / ".join(f"{t:.1f}" for t, _, _ in measured)
            peak = max(m for _, m, _ in measured)
            print(f"| {names[variant]} | {best[variant]:.1f} | {times} | {peak:.0f} | "
                  f"{cpu[variant]:.1f} | {per_mb(cpu[variant], moved[variant]):.1f} | "
                  f"{min(served[variant]):.1f} |")
    for variant, got in sorted(inner.items()):
        print(f"({variant}) in the handler (last run, mode {got['mode']}): stage "
              f"{got['stage_s']} s, query + write {got['query_write_s']} s "
              f"({got['threads']} threads, {got['memory_limit']}; azure-identity "
              f"{'imported' if got.get('azure_identity') else 'not imported'})")
    if "b" in best:
        bound = link.bound(column_bytes, P_SERIAL, best["b"])
        print(f"physical bound of (p): {bound:.2f} s = {column_bytes / 1e6:.0f} MB at the link "
              f"+ {P_SERIAL} serial requests + (b) {best['b']:.2f} s of local compute")
        for variant in "apl":
            if variant in best:
                goal = " (goal <= 1.25)" if variant == "p" else ""
                print(f"{variant}/bound = {best[variant] / bound:.2f}{goal}")
    if "a" in best and "b" in best:
        print(f"a/b = {best['a'] / best['b']:.2f}")
    if "s" in best and "b" in best:
        print(f"s/b = {best['s'] / best['b']:.2f}, s/a = {best['s'] / best.get('a', 1):.2f}")
    if "p" in best and "c" in best:
        print(f"c/p = {best['c'] / best['p']:.1f} (goal >= 5)")
    if "p" in cpu and "l" in cpu:
        print(f"client CPU per MB, p/l = {cpu['p'] / cpu['l']:.2f} (goal <= 1.5; both run "
              "the query too)")
    if "l" in best and "b" in best:
        print(f"l/b = {best['l'] / best['b']:.2f}, c/l = {best.get('c', 0) / best['l']:.1f}: "
              "what no Python path over this emulator can beat")
    for variant in "aspcl":
        if runs[variant]:
            peak = max(m for _, m, _ in runs[variant])
            print(f"peak RSS ({variant}) {peak:.0f} MB vs memory_limit + 300 = "
                  f"{limit + 300:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
