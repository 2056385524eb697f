"""ctx.duckdb and ctx.sql: real DuckDB and pyarrow over the file:// lake and the Data Lake
emulator (real SDK over HTTPS), in process and as real ``python -m worker run`` tasks."""

from __future__ import annotations

import os
import re
import struct
import sys
from pathlib import Path
from typing import Callable, Dict

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from support import clean_env, read_result, run_worker, start_worker

from worker import PermanentError, RetryableError
from worker.batch import TaskInfo
from worker.config import Config
from worker.context import Context
from worker.db import DuckDBMemoryError, InputDataError, SqlError, settings, translate_error
from worker.resources import task_budget

HUNDRED_MIB_AS_MB = str(100 * 1024 * 1024 / 1e6)  # WORKER_MEMORY_MB giving exactly 100 MiB


class LakeUnderTest:
    """A lake to seed and read back, and the variables that point the worker at it."""

    def __init__(self, kind: str, env: Dict[str, str], seed: Callable[[str, bytes], None],
                 read: Callable[[str], bytes]) -> None:
        self.kind = kind
        self.env = env
        self.seed = seed
        self.read = read

    def seed_table(self, path: str, table: pa.Table) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        self.seed(path, sink.getvalue().to_pybytes())

    def read_table(self, path: str) -> pa.Table:
        return pq.read_table(pa.BufferReader(self.read(path)))


@pytest.fixture(params=["file", "emulator"])
def lake(request, tmp_path) -> LakeUnderTest:
    if request.param == "file":
        root = tmp_path / "lake"
        root.mkdir()

        def seed(path: str, data: bytes) -> None:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)

        return LakeUnderTest("file", {"WORKER_LAKE_URL": root.as_uri()}, seed,
                             lambda path: (root / path).read_bytes())
    emulators = request.getfixturevalue("emulators")
    env = dict(request.getfixturevalue("emulator_env"))
    request.getfixturevalue("emulator_environ")  # the in-process SDK reads os.environ
    fs = request.getfixturevalue("emulator_filesystem")
    return LakeUnderTest("emulator", env, lambda p, d: emulators.seed_file(fs, p, d),
                         lambda p: emulators.read_file(fs, p))


@pytest.fixture
def make_ctx(lake, tmp_path):
    """Contexts on ``lake`` as the runner builds them; closed after the test."""
    made = []

    def make(**env: str) -> Context:
        environ = dict(lake.env, WORKER_SCRATCH_DIR=str(tmp_path / "scratch"), **env)
        config = Config.from_env(environ)
        ctx = Context(config, TaskInfo.from_env(environ, cwd=tmp_path), run_id=f"t{len(made)}")
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.abort()
        ctx.close()


def sales_table(i: int, rows: int = 200) -> pa.Table:
    return pa.table({
        "region": [("eu", "us", "apac")[(i + r) % 3] for r in range(rows)],
        "amount": [float(i * rows + r) for r in range(rows)],
    })


def seed_sales(lake: LakeUnderTest, files: int = 40) -> pa.Table:
    tables = [sales_table(i) for i in range(files)]
    for i, table in enumerate(tables):
        day = f"2024-01-{1 + i % 2:02d}"
        lake.seed_table(f"raw/sales/date={day}/part-{i:03d}.parquet", table)
    return pa.concat_tables(tables)


def expected_totals(table: pa.Table) -> Dict[str, float]:
    totals: Dict[str, float] = {}
    for region, amount in zip(table["region"].to_pylist(), table["amount"].to_pylist()):
        totals[region] = totals.get(region, 0.0) + amount
    return totals


def run_task(tmp_path, spec, *params, env, name="result.json", timeout=120):
    result = tmp_path / name
    args = [a for p in params for a in ("--param", p)]
    proc = run_worker("run", spec, *args, "--result", str(result), env=env, timeout=timeout)
    return proc, read_result(result)


# -- configuration ---------------------------------------------------------------------


def test_settings_split_the_node_by_slots(tmp_path):
    base = {"WORKER_CORES": "8", "WORKER_MEMORY_MB": "16000"}
    one = settings(Config.from_env(base), tmp_path)
    half = settings(Config.from_env(dict(base, WORKER_TASK_SLOTS="2")), tmp_path)
    two_of_four = settings(
        Config.from_env(dict(base, WORKER_TASK_SLOTS="4", WORKER_REQUIRED_SLOTS="2")), tmp_path
    )
    assert (one["threads"], half["threads"], two_of_four["threads"]) == ("8", "4", "4")
    assert one["memory_limit"] == f"{int(16000e6 * 0.6) // 2**20}MiB"
    assert half["memory_limit"] == two_of_four["memory_limit"] == f"{int(8000e6 * 0.6) // 2**20}MiB"
    assert one["temp_directory"] == str(tmp_path / "duckdb-tmp")
    assert one["autoinstall_known_extensions"] == one["autoload_known_extensions"] == "false"


def test_more_slots_than_cores_still_get_one_thread():
    budget = task_budget(Config.from_env({"WORKER_CORES": "2", "WORKER_TASK_SLOTS": "8"}))
    assert budget.threads == 1 and budget.share == 0.125
    assert "WORKER_TASK_SLOTS=8" in budget.describe()


def test_detected_node_size_is_the_machine():
    budget = task_budget(Config.from_env({}))
    assert 1 <= budget.node_cores <= (__import__("os").cpu_count() or 1)
    assert budget.node_memory > 256e6
    assert budget.cores_source != "WORKER_CORES" and budget.memory_source != "WORKER_MEMORY_MB"


def test_memory_fraction_is_validated():
    with pytest.raises(Exception, match="WORKER_DUCKDB_MEMORY_FRACTION=1.5 must be a fraction"):
        Config.from_env({"WORKER_DUCKDB_MEMORY_FRACTION": "1.5"})


# -- in process over both lakes --------------------------------------------------------


def test_connection_is_configured_for_the_task_and_closed_with_it(make_ctx):
    ctx = make_ctx(WORKER_CORES="4", WORKER_MEMORY_MB="2000", WORKER_TASK_SLOTS="2")
    conn = ctx.duckdb
    assert ctx.duckdb is conn
    row = conn.sql(
        "select current_setting('threads'), current_setting('memory_limit'), "
        "current_setting('temp_directory'), current_setting('autoinstall_known_extensions'), "
        "current_setting('autoload_known_extensions')"
    ).fetchall()[0]
    assert row[0] == 2 and row[1] == f"{int(1000e6 * 0.6) // 2**20}.0 MiB"
    assert Path(row[2]) == ctx.scratch / "duckdb-tmp"
    assert row[3] is False and row[4] is False
    ctx.close()
    with pytest.raises(duckdb.Error):
        conn.sql("select 1").fetchall()


def test_query_over_a_folder_of_many_parquet_files(make_ctx, lake):
    everything = seed_sales(lake, files=40)
    ctx = make_ctx()
    sales = ctx.lake.dataset("raw/sales/")
    assert len(sales.files) == 40 and sales.format == "parquet"
    out = ctx.sql("select region, sum(amount) as total, count(*) as n from sales "
                  "group by region order by region", sales=sales)
    rows = out.fetchall()
    assert {r[0]: r[1] for r in rows} == pytest.approx(expected_totals(everything))
    assert sum(r[2] for r in rows) == everything.num_rows
    # hive folders name a column; the same dataset object is staged only once
    days = ctx.sql("select date::varchar, count(*) from sales group by all order by 1",
                   sales=sales).fetchall()
    assert days == [("2024-01-01", 4000), ("2024-01-02", 4000)]
    if lake.kind == "file":
        assert all(not p.startswith(str(ctx.scratch)) for p in sales.local_files(ctx.scratch))
    else:
        assert all(p.startswith(str(ctx.scratch)) for p in sales.local_files(ctx.scratch))


def test_a_glob_and_a_single_file_and_csv_json(make_ctx, lake):
    seed_sales(lake, files=4)
    lake.seed("raw/people.csv", b"name,age\nada,36\nbob,41\n")
    lake.seed("raw/events.jsonl", b'{"kind": "a", "n": 1}\n{"kind": "b", "n": 2}\n')
    ctx = make_ctx()
    part = ctx.lake.dataset("raw/sales/date=2024-01-01/part-000.parquet")
    glob = ctx.lake.dataset("raw/sales/*/part-00[0-1].parquet")
    csv = ctx.lake.dataset("raw/people.csv")
    events = ctx.lake.dataset("raw/events.jsonl")
    assert ctx.sql("select count(*) from part", part=part).fetchall() == [(200,)]
    assert ctx.sql("select count(*) from g", g=glob).fetchall() == [(400,)]
    assert ctx.sql("select sum(age) from csv", csv=csv).fetchall() == [(77,)]
    assert ctx.sql("select sum(n) from e where kind = ?", ["b"], e=events).fetchall() == [(2,)]


@pytest.mark.parametrize("lake", ["file"], indirect=True)
def test_sql_is_lazy_without_params_and_with_them_only_from_duckdb_2(make_ctx):
    """docs/sql.md: a relation runs when it is fetched, written or queried;
    with ``params`` DuckDB 1.x (the Python 3.8 pin) runs the query at once."""
    ctx = make_ctx()
    relation = ctx.sql("select error('ran') as x")  # nothing runs yet
    with pytest.raises(duckdb.Error, match="ran"):
        relation.fetchall()
    eager = int(duckdb.__version__.split(".")[0]) < 2
    if eager:
        with pytest.raises(InputDataError, match="ran"):
            ctx.sql("select error($1) as x", params=["ran"])
    else:
        relation = ctx.sql("select error($1) as x", params=["ran"])
        with pytest.raises(duckdb.Error, match="ran"):
            relation.fetchall()


def test_arrow_tables_and_datasets_are_queried_by_name(make_ctx, tmp_path):
    ctx = make_ctx()
    table = pa.table({"x": list(range(1000))})
    pq.write_table(table, tmp_path / "x.parquet")
    dataset = pads.dataset(str(tmp_path / "x.parquet"))
    reader = table.to_reader()
    assert ctx.sql("select sum(x) from t", t=table).fetchall() == [(499500,)]
    assert ctx.sql("select count(*) from d where x < 10", d=dataset).fetchall() == [(10,)]
    assert ctx.sql("select max(x) from r", r=reader).fetchall() == [(999,)]
    rel = ctx.sql("select x * 2 as y from t", t=table)
    assert ctx.sql("select max(y) from rel", rel=rel).fetchall() == [(1998,)]


def test_partitioned_write_reads_back_the_same(make_ctx, lake):
    everything = seed_sales(lake, files=6)
    ctx = make_ctx()
    out = ctx.sql("select region, amount from sales", sales=ctx.lake.dataset("raw/sales"))
    written = ctx.lake.write_table(out, "curated/by_region", partition_by=["region"])
    assert sorted(written) == [f"curated/by_region/region={r}/data_0.parquet"
                               for r in ("apac", "eu", "us")]
    outputs = ctx.commit()
    assert [o["path"] for o in outputs] == sorted(written)
    by_region = {o["path"].split("/")[2]: o["rows"] for o in outputs}
    counts = {f"region={r}": everything["region"].to_pylist().count(r) for r in ("apac", "eu", "us")}
    assert by_region == counts
    for path in written:
        region = path.split("/")[2].split("=")[1]
        got = lake.read_table(path)
        assert got.column_names == ["amount"]  # the partition column is in the folder name
        want = sorted(a for r, a in zip(everything["region"].to_pylist(),
                                        everything["amount"].to_pylist()) if r == region)
        assert sorted(got["amount"].to_pylist()) == want
    # and the folder reads back through the lake as one dataset with the column restored
    back = make_ctx().sql("select region, sum(amount) from c group by 1",
                          c=make_ctx().lake.dataset("curated/by_region")).fetchall()
    assert dict(back) == pytest.approx(expected_totals(everything))


def test_arrow_table_partitioned_and_single_file_writes(make_ctx, lake):
    ctx = make_ctx()
    table = sales_table(0, rows=30)
    written = ctx.lake.write_table(table, "out/arrow", partition_by=["region"])
    ctx.lake.write_table(ctx.sql("select * from t", t=table), "out/one.parquet")
    outputs = {o["path"]: o["rows"] for o in ctx.commit()}
    assert outputs["out/one.parquet"] == 30
    assert sum(outputs[p] for p in written) == 30 and len(written) == 3
    assert lake.read_table("out/one.parquet").num_rows == 30


def test_a_join_several_times_larger_than_memory_limit_spills(make_ctx, lake):
    # 2.5M rows of 64-character strings: ~180 MB of raw data, a hash join of ~2-3x that;
    # the strings repeat a pattern so the parquet stays small for the emulator.
    ctx = make_ctx(WORKER_MEMORY_MB=HUNDRED_MIB_AS_MB, WORKER_DUCKDB_MEMORY_FRACTION="1")
    source = ctx.scratch / "gen.parquet"
    ctx.duckdb.execute(
        "copy (select range as k, repeat('x', 56) || lpad(range::varchar, 8, '0') as pad "
        f"from range(2500000)) to '{source}' (format parquet)"
    )
    lake.seed("big/data.parquet", source.read_bytes())
    query = ("select a.k % 100 as bucket, count(*) as n, max(b.pad) as pad from data a "
             "join data b on a.k = b.k group by bucket order by bucket")
    out = ctx.sql(query, data=ctx.lake.dataset("big/data.parquet"))
    ctx.lake.write_table(out, "big/out.parquet")
    assert ctx.commit()[0]["rows"] == 100
    assert ctx.duckdb.sql("select current_setting('memory_limit')").fetchall() == [("100.0 MiB",)]
    # the same query with nowhere to spill runs out of memory: it is larger than the limit
    nowhere = dict(settings(ctx.config, ctx.scratch), temp_directory="")
    files = ctx.lake.dataset("big/data.parquet").local_files(ctx.scratch / "lake")
    with duckdb.connect(config=nowhere) as plain, pytest.raises(duckdb.OutOfMemoryException) as e:
        plain.execute(f"create view data as select * from read_parquet({files!r})")
        plain.sql(query).fetchall()
    translated = translate_error(e.value, ctx.config)
    assert isinstance(translated, DuckDBMemoryError) and translated.exit_code == 1
    assert str(translated).startswith("DuckDB ran out of memory at memory_limit=100MiB (1 of node")
    assert "WORKER_REQUIRED_SLOTS" in str(translated) and "\n" not in str(translated)


@pytest.mark.parametrize("query, error, message", [
    ("selec 1", SqlError, 'Parser Error: syntax error at or near "selec"'),
    ("select nope from t", SqlError, 'Binder Error: Referenced column "nope" not found'),
    ("select * from missing", SqlError, "Catalog Error: Table with name missing does not exist"),
])
def test_sql_errors_are_one_line(make_ctx, lake, query, error, message):
    seed_sales(lake, files=1)
    ctx = make_ctx()
    with pytest.raises(error) as e:
        ctx.sql(query, t=ctx.lake.dataset("raw/sales"))
    assert message in str(e.value) and "\n" not in str(e.value)
    assert e.value.exit_code == 1


def test_a_corrupt_parquet_file_is_bad_input_data(make_ctx, lake):
    seed_sales(lake, files=2)
    lake.seed("raw/sales/date=2024-01-01/part-999.parquet", b"PAR1 not really parquet PAR1")
    ctx = make_ctx()
    relation = ctx.sql("select count(*) from s", s=ctx.lake.dataset("raw/sales"))
    with pytest.raises(duckdb.Error) as e:  # the relation runs (and fails) in the handler
        relation.fetchall()
    translated = translate_error(e.value, ctx.config)  # what the runner does with it
    assert isinstance(translated, InputDataError) and isinstance(translated, PermanentError)
    assert translated.exit_code == 4 and translated.code == "input_data"
    assert "part-999.parquet" in str(translated) and "\n" not in str(translated)


def test_an_unknown_format_is_refused(make_ctx, lake):
    lake.seed("raw/x.bin", b"x")
    ctx = make_ctx()
    with pytest.raises(ValueError, match="cannot tell the format of the dataset 'raw/x.bin'"):
        ctx.sql("select * from x", x=ctx.lake.dataset("raw/x.bin"))


# -- as real tasks ---------------------------------------------------------------------


def test_the_issue_example_as_a_task(tmp_path, lake):
    everything = seed_sales(lake, files=12)
    proc, record = run_task(
        tmp_path, "handlers.duckdb_tasks:daily", "source=raw/sales/date=2024-01-01/",
        "target=curated/daily/2024-01-01.parquet", env=clean_env(**lake.env),
    )
    assert proc.returncode == 0, proc.stderr
    assert record["outputs"][0]["path"] == "curated/daily/2024-01-01.parquet"
    assert record["outputs"][0]["rows"] == 3
    day = pa.concat_tables([sales_table(i) for i in range(0, 12, 2)])
    got = lake.read_table("curated/daily/2024-01-01.parquet").to_pydict()
    assert dict(zip(got["region"], got["total"])) == pytest.approx(expected_totals(day))
    assert everything.num_rows == 2400


def test_two_tasks_on_a_two_slot_node_get_half_each(tmp_path):
    single = run_task(tmp_path, "handlers.duckdb_tasks:settings", env=clean_env(),
                      name="one.json")[1]["return_value"]
    env = clean_env(WORKER_TASK_SLOTS="2")
    procs = [
        start_worker("run", "handlers.duckdb_tasks:settings", "--param", "hold=1",
                     "--result", str(tmp_path / f"slot{i}.json"), env=env)
        for i in range(2)
    ]
    for proc in procs:
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    records = [read_result(tmp_path / f"slot{i}.json") for i in range(2)]
    starts = sorted(r["started_at"] for r in records)
    ends = sorted(r["ended_at"] for r in records)
    assert starts[1] < ends[0], "the two tasks did not run side by side"
    for record in records:
        got = record["return_value"]
        assert got["threads"] == max(1, single["threads"] // 2)
        assert to_bytes(got["memory_limit"]) == pytest.approx(
            to_bytes(single["memory_limit"]) / 2, rel=0.01)
        assert got["temp_directory"].startswith(got["scratch"])
        assert got["autoinstall"] is False and got["autoload"] is False
    assert records[0]["return_value"]["scratch"] != records[1]["return_value"]["scratch"]


def to_bytes(text: str) -> float:
    number, unit = re.match(r"([\d.]+) (\w+)", text).groups()
    return float(number) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit]


def test_a_corrupt_parquet_file_exits_4(tmp_path, lake):
    seed_sales(lake, files=2)
    lake.seed("raw/sales/date=2024-01-02/part-999.parquet", b"garbage" * 100)
    proc, record = run_task(tmp_path, "handlers.duckdb_tasks:daily", "source=raw/sales",
                            "target=curated/x.parquet", env=clean_env(**lake.env))
    assert proc.returncode == 4, proc.stderr
    assert record["error"]["type"] == "InputDataError"
    assert record["error"]["code"] == "input_data"
    assert record["error"]["message"].startswith("bad input data: ")
    assert "part-999.parquet" in record["error"]["message"]
    assert record["outputs"] == []
    final = proc.stderr.strip().splitlines()[-1]
    assert "exit 4 (bad input data" in final and "InputDataError" in final


def test_a_corrupt_file_read_by_the_handler_itself_exits_4(tmp_path):
    lake_dir = tmp_path / "lake"
    (lake_dir / "raw").mkdir(parents=True)
    (lake_dir / "raw" / "bad.parquet").write_bytes(b"garbage" * 100)
    proc, record = run_task(tmp_path, "handlers.duckdb_tasks:lazy_failure",
                            "source=raw/bad.parquet",
                            env=clean_env(WORKER_LAKE_URL=lake_dir.as_uri()))
    assert proc.returncode == 4, proc.stderr
    assert record["error"]["type"] == "InputDataError"


def test_a_sql_bug_exits_1_with_one_line(tmp_path):
    lake_dir = tmp_path / "lake"
    (lake_dir / "raw").mkdir(parents=True)
    pq.write_table(sales_table(0), lake_dir / "raw" / "s.parquet")
    proc, record = run_task(tmp_path, "handlers.duckdb_tasks:query", "source=raw",
                            "sql=select regon from t",
                            env=clean_env(WORKER_LAKE_URL=lake_dir.as_uri()))
    assert proc.returncode == 1, proc.stderr
    assert record["error"]["type"] == "SqlError" and record["error"]["code"] == "sql"
    message = record["error"]["message"]
    assert message.startswith('Binder Error: Referenced column "regon" not found in FROM clause!')
    assert "\n" not in message and "|" in message  # DuckDB's extra lines, joined


def test_out_of_memory_exits_1_naming_the_limit_and_the_fix(tmp_path):
    _seed_dir(tmp_path)
    proc, record = run_task(
        tmp_path, "handlers.duckdb_tasks:query", "source=raw",
        "sql=select string_agg(repeat('x', 1000) || range, ',') from range(300000)",
        env=clean_env(WORKER_LAKE_URL=(tmp_path / "lake").as_uri(),
                      WORKER_MEMORY_MB=HUNDRED_MIB_AS_MB, WORKER_DUCKDB_MEMORY_FRACTION="1"),
    )
    assert proc.returncode == 1, proc.stderr
    assert record["error"]["type"] == "DuckDBMemoryError"
    assert record["error"]["message"].startswith("DuckDB ran out of memory at memory_limit=100MiB")
    assert "WORKER_REQUIRED_SLOTS" in record["error"]["message"]


def _seed_dir(tmp_path: Path) -> None:
    (tmp_path / "lake" / "raw").mkdir(parents=True)
    pq.write_table(sales_table(0), tmp_path / "lake" / "raw" / "s.parquet")


def test_a_handler_without_duckdb_imports_neither_duckdb_nor_pyarrow(tmp_path):
    proc, record = run_task(tmp_path, "handlers.duckdb_tasks:no_duckdb", env=clean_env())
    assert proc.returncode == 0, proc.stderr
    assert record["return_value"] == {"duckdb": False, "pyarrow": False}


def test_importing_the_worker_does_not_import_duckdb():
    code = "import worker, worker.db, worker.context, worker.lake, sys; " \
           "print('duckdb' in sys.modules, 'pyarrow' in sys.modules)"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=clean_env(), cwd=str(Path(__file__).parent), timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr


# -- streamed datasets: ranged reads over the emulator lake ----------------------------


# Ranged reads are for remote lakes: a file:// lake is read in place.
emulator_only = pytest.mark.parametrize("lake", ["emulator"], indirect=True)


class ReadCounter:
    """Observes the real store (the SDK over HTTPS underneath): ranged reads and bytes
    moved, and whether anything was downloaded whole."""

    def __init__(self, store) -> None:
        self.reads = []
        self.downloads = []
        read_bytes, download_file = store.read_bytes, store.download_file

        def counted_read(key, offset=0, length=None, etag=None):
            data = read_bytes(key, offset, length, etag=etag)
            self.reads.append((key, offset, len(data)))
            return data

        def counted_download(key, local_path):
            self.downloads.append(key)
            download_file(key, local_path)

        store.read_bytes, store.download_file = counted_read, counted_download

    @property
    def bytes(self) -> int:
        return sum(n for _, _, n in self.reads)


def wide_table(rows: int = 200000) -> pa.Table:
    """Six columns of incompressible doubles (800 kB per column chunk of 100k rows, more
    than the 512 KiB holes that reads coalesce over), plus ``a`` = 0, 1, 2 ..."""
    import random

    rand = random.Random(5)
    return pa.table({
        "a": [float(r) for r in range(rows)],
        **{name: [rand.random() for _ in range(rows)] for name in "bcdef"},
    })


@emulator_only
def test_a_streamed_query_fetches_only_the_columns_it_reads(make_ctx, lake, emulators):
    sink = pa.BufferOutputStream()
    pq.write_table(wide_table(), sink, row_group_size=100000, compression="none")
    data = sink.getvalue().to_pybytes()
    lake.seed("wide/data.parquet", data)
    ctx = make_ctx()
    wide = ctx.lake.dataset("wide/data.parquet", stage=False)
    assert wide.mode == "stream"
    counter = ReadCounter(ctx.lake.store)
    emulators.reset_counts()
    assert ctx.sql("select sum(a), count(*) from w", w=wide).fetchall() == [
        (200000 * 199999 / 2, 200000)]
    assert counter.downloads == [] and not (ctx.scratch / "lake").exists()
    assert 0 < counter.bytes < len(data) / 5, (counter.bytes, len(data))
    assert all(key == "wide/data.parquet" for key, _, _ in counter.reads)
    # one GET per ranged read: the footer, then coalesced chunks of column a
    assert emulators.counts("lake").get("read") == len(counter.reads) <= 8


@emulator_only
def test_a_partition_filter_reads_only_its_folders(make_ctx, lake):
    everything = seed_sales(lake, files=8)
    ctx = make_ctx()
    sales = ctx.lake.dataset("raw/sales", stage=False)
    counter = ReadCounter(ctx.lake.store)
    rows = ctx.sql("select region, sum(amount) from sales where date = '2024-01-02' "
                   "group by 1", sales=sales).fetchall()
    odd = pa.concat_tables([sales_table(i) for i in range(1, 8, 2)])
    assert dict(rows) == pytest.approx(expected_totals(odd))
    assert everything.num_rows == 1600
    read = {key.split("/")[2] for key, _, _ in counter.reads}
    assert read <= {"date=2024-01-02", "date=2024-01-01"}
    scanned = {key for key, _, _ in counter.reads if "date=2024-01-02" in key}
    assert len(scanned) == 4
    # the first file is opened once for the schema; the other day's files never
    assert len({key for key, _, _ in counter.reads} - scanned) <= 1


@emulator_only
def test_a_streamed_scan_keeps_twice_the_transfer_concurrency_in_flight(make_ctx, lake):
    """Arrow reads a file's ranges one after another, so a streamed scan gets twice
    WORKER_TRANSFER_CONCURRENCY IO threads (pyarrow's pool is process-wide, never shrunk)."""
    seed_sales(lake, files=2)
    ctx = make_ctx(WORKER_TRANSFER_CONCURRENCY="13")
    streamed = ctx.lake.dataset("raw/sales", stage=False)
    assert ctx.sql("select count(*) from s", s=streamed).fetchall() == [(400,)]
    assert pa.io_thread_count() >= 26


def test_how_each_dataset_is_read(make_ctx, lake):
    seed_sales(lake, files=2)
    lake.seed("raw/people.csv", b"name,age\nada,36\nbob,41\n")
    ctx = make_ctx()
    remote = lake.kind == "emulator"
    parquet = ctx.lake.dataset("raw/sales")
    streamed = ctx.lake.dataset("raw/sales", stage=False)
    by_name = ctx.lake.dataset("raw/sales", union_by_name=True)
    csv = ctx.lake.dataset("raw/people.csv")
    assert streamed.mode == ("stream" if remote else "local")
    assert parquet.mode == by_name.mode == csv.mode == ("stage" if remote else "local")
    assert ctx.sql("select count(*) from s", s=streamed).fetchall() == [(400,)]
    assert ctx.sql("select count(*), count(distinct date) from s", s=by_name).fetchall() == [
        (400, 2)]
    if remote:
        assert all(p.startswith(str(ctx.scratch)) for p in parquet.local_files(ctx.scratch))
        with pytest.raises(ValueError, match="cannot be streamed \\(stage=False\\)"):
            ctx.lake.dataset("raw/people.csv", stage=False).mode  # noqa: B018


@emulator_only
def test_a_streamed_scan_sees_the_tasks_own_staged_writes(make_ctx, lake):
    ctx = make_ctx()
    ctx.lake.write_table(sales_table(3), "mine/part.parquet")
    mine = ctx.lake.dataset("mine/part.parquet", stage=False)
    assert mine.mode == "stream"
    assert ctx.sql("select count(*) from m", m=mine).fetchall() == [(200,)]


@emulator_only
def test_a_corrupt_first_file_is_bad_input_data_when_streamed(make_ctx, lake):
    seed_sales(lake, files=2)
    lake.seed("raw/sales/date=2024-01-01/part-000.parquet", b"garbage" * 100)
    ctx = make_ctx()
    with pytest.raises(InputDataError) as e:  # pyarrow reads it for the schema
        ctx.sql("select count(*) from s", s=ctx.lake.dataset("raw/sales", stage=False))
    assert e.value.exit_code == 4 and str(e.value).startswith("bad input data: ")
    assert "part-000.parquet" in str(e.value) and "\n" not in str(e.value)


@emulator_only
def test_a_lake_outage_under_a_streamed_scan_is_transient(make_ctx, lake, emulators):
    from worker import RetryableError

    seed_sales(lake, files=4)
    ctx = make_ctx(WORKER_RETRY_TOTAL="1", WORKER_RETRY_BACKOFF="0.01")
    relation = ctx.sql("select count(*) from s", s=ctx.lake.dataset("raw/sales", stage=False))
    emulators.fault("lake", "read", status=503, times=None)
    with pytest.raises(duckdb.Error) as e:
        relation.fetchall()
    translated = translate_error(e.value, ctx.config)  # what the runner does with it
    assert isinstance(translated, RetryableError) and translated.exit_code == 3
    assert "503" in str(translated)


@emulator_only
@pytest.mark.parametrize("name", ["part-000", "part-999"])  # opened for the schema, or later
def test_a_corrupt_file_exits_4_when_streamed(tmp_path, lake, name):
    seed_sales(lake, files=2)
    lake.seed(f"raw/sales/date=2024-01-01/{name}.parquet", b"garbage" * 100)
    proc, record = run_task(tmp_path, "handlers.duckdb_tasks:daily", "source=raw/sales",
                            "target=curated/x.parquet", "stage=no", env=clean_env(**lake.env))
    assert proc.returncode == 4, proc.stderr
    assert record["error"]["type"] == "InputDataError"
    assert f"{name}.parquet" in record["error"]["message"]
    assert record["outputs"] == []


@emulator_only
def test_a_failed_streamed_scan_exits_with_its_code_while_reads_are_in_flight(
        tmp_path, lake, emulators):
    # pre-buffered reads outlive the failed query; one still running when the interpreter
    # shuts down used to abort the process (SIGABRT) instead of exit 4
    seed_sales(lake, files=12)
    lake.seed("raw/sales/date=2024-01-01/part-999.parquet", b"garbage" * 100)
    emulators.fault("lake", "read", "latency", delay=0.3, times=None)
    for attempt in range(2):
        proc, record = run_task(tmp_path, "handlers.duckdb_tasks:daily", "source=raw/sales",
                                "target=curated/x.parquet", "stage=no",
                                env=clean_env(**lake.env), name=f"r{attempt}.json")
        assert proc.returncode == 4, proc.stderr[-3000:]
        assert record["error"]["type"] == "InputDataError"


# -- staging only the named columns ------------------------------------------------------


@emulator_only
def test_staging_named_columns_fetches_only_their_chunks_and_answers_the_same(make_ctx, lake):
    sink = pa.BufferOutputStream()
    pq.write_table(wide_table(), sink, row_group_size=50000, compression="none")
    data = sink.getvalue().to_pybytes()
    for i in range(3):
        lake.seed(f"wide/part-{i}.parquet", data)
    ctx = make_ctx()
    full = ctx.sql("select sum(a), sum(d), count(*) from w",
                   w=ctx.lake.dataset("wide/")).fetchall()
    narrow = ctx.lake.dataset("wide/", columns=["a", "d"])
    counter = ReadCounter(ctx.lake.store)
    got = ctx.sql("select sum(a), sum(d), count(*) from w", w=narrow).fetchall()
    assert got == [pytest.approx(full[0], rel=1e-12)]  # float sums in any order
    assert counter.downloads == []
    # footers and the chunks of a and d only (b and c, 800 kB apart, are not fetched)
    assert len(data) * 3 / 4 < counter.bytes < len(data) * 3 * 0.4, (counter.bytes, len(data))
    local = narrow.local_files(ctx.scratch / "lake")
    assert [os.path.getsize(p) for p in local] == [len(data)] * 3  # same offsets, sparse
    assert all(os.stat(p).st_blocks * 512 < len(data) * 0.5 for p in local)
    with pytest.raises(SqlError, match="b"):  # not staged, so not queryable
        ctx.sql("select sum(b) from w", w=narrow).fetchall()


@emulator_only
def test_a_file_that_is_not_parquet_is_bad_input_data_when_columns_are_staged(make_ctx, lake):
    lake.seed("bad/part-0.parquet", b"this is not parquet at all, just text" * 10)
    ctx = make_ctx()
    with pytest.raises(InputDataError, match="bad/part-0.parquet is not a parquet file"):
        ctx.sql("select count(*) from t", t=ctx.lake.dataset("bad/", columns=["x"]))


@emulator_only
def test_a_dataset_lists_its_files_once(make_ctx, lake, emulators):
    seed_sales(lake, files=4)
    ctx = make_ctx()
    emulators.reset_counts()
    sales = ctx.lake.dataset("raw/sales/", columns=["amount"])
    assert ctx.sql("select count(*) from s", s=sales).fetchall() == [(800,)]
    assert emulators.counts("lake")["list_paths"] == 1


@emulator_only
def test_staging_named_columns_takes_every_leaf_of_a_nested_column(make_ctx, lake):
    n = 20000
    table = pa.table({
        "s": pa.array([{"a": i, "b": str(i)} for i in range(n)]),
        "m": pa.array([[i, i + 1] for i in range(n)]),
        "x": pa.array(range(n), pa.int64()),
    })
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=5000)
    lake.seed("nested/part-0.parquet", sink.getvalue().to_pybytes())
    ctx = make_ctx()
    narrow = ctx.lake.dataset("nested/", columns=["s", "x"])
    assert ctx.sql("select sum(s.a), max(s.b), sum(x) from t", t=narrow).fetchall() == [
        (sum(range(n)), "9999", sum(range(n)))]
    with pytest.raises(SqlError, match="m"):
        ctx.sql("select m from t", t=narrow).fetchall()


@emulator_only
def test_a_file_replaced_while_its_columns_are_staged_fails_retryably(make_ctx, lake):
    sink = pa.BufferOutputStream()
    pq.write_table(wide_table(), sink, row_group_size=50000)
    lake.seed("wide/part-0.parquet", sink.getvalue().to_pybytes())
    ctx = make_ctx()
    dataset = ctx.lake.dataset("wide/", columns=["a"])
    store = ctx.lake.store
    read_bytes = store.read_bytes

    def replaced_after_the_footer(key, offset=0, length=None, etag=None):
        data = read_bytes(key, offset, length, etag=etag)
        lake.seed("wide/part-0.parquet", b"a new version, written by another job")
        return data

    store.read_bytes = replaced_after_the_footer
    with pytest.raises(RetryableError, match="wide/part-0.parquet' .* changed while it was"):
        ctx.sql("select sum(a) from w", w=dataset)


@emulator_only
def test_staging_named_columns_loads_neither_pandas_nor_pyarrow(tmp_path, lake):
    # DuckDB parses the footers and counts the rows written; a query parameter would make
    # duckdb 1.2 (the Python 3.8 pin) import pandas, numpy and pyarrow: a second per task
    seed_sales(lake, files=2)
    proc, record = run_task(tmp_path, "handlers.duckdb_tasks:named_columns", "source=raw/sales",
                            "target=curated/t.parquet", env=clean_env(**lake.env))
    assert proc.returncode == 0, proc.stderr
    got = record["return_value"]
    assert got["written"] == ["curated/t.parquet"] and got["loaded"] == []
    assert record["outputs"][0]["rows"] == 3


@emulator_only
def test_a_corrupt_parquet_footer_is_bad_input_data_when_columns_are_staged(make_ctx, lake):
    garbage = b"PAR1" + os.urandom(5000) + struct.pack("<I", 3000) + b"PAR1"
    lake.seed("bad/part-7.parquet", garbage)
    ctx = make_ctx()
    with pytest.raises(InputDataError, match="bad input data: bad/part-7.parquet: "):
        ctx.sql("select count(*) from t", t=ctx.lake.dataset("bad/", columns=["x"]))


def test_named_columns_limit_what_a_query_sees_on_any_lake(make_ctx, lake):
    seed_sales(lake, files=2)
    ctx = make_ctx()
    sales = ctx.lake.dataset("raw/sales/", columns=["amount", "date"])
    assert ctx.sql("select count(*), count(distinct date) from s", s=sales).fetchall() == [
        (400, 2)]
    with pytest.raises(SqlError, match="region"):
        ctx.sql("select region from s", s=sales).fetchall()
    with pytest.raises(ValueError, match="list of column names"):
        ctx.lake.dataset("raw/sales/", columns="amount")
