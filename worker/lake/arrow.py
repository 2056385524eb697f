"""Arrow and Parquet for the lake; pyarrow is imported only when a handler uses them."""

from __future__ import annotations

import sys
from typing import Any, List, Optional, Sequence, Tuple

from ..errors import InputDataError, first_line


def read_table(lake, keys: List[str], columns: Optional[Sequence[str]] = None):
    """Read parquet files in parallel and concatenate them into one ``pyarrow.Table``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .parallel import run_parallel

    def one(key: str):
        local = lake.store.local_path(lake._readable(key))
        source = local if local else pa.BufferReader(lake.read_bytes(key))
        try:
            return pq.read_table(source, columns=list(columns) if columns else None)
        except pa.ArrowException as e:  # a corrupt file: name it as the lake names it
            raise InputDataError(f"bad input data: {key!r} in the lake {lake.url} is not "
                                 f"readable parquet: {first_line(e)}") from None

    tables = run_parallel(one, keys, lake.concurrency)
    return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]


def table_to_parquet(table: Any, **options: Any) -> Tuple[bytes, int]:
    """Serialise ``table`` (Arrow, or anything with ``.arrow()``/pandas) to parquet bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = as_arrow(table)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **options)
    return sink.getvalue().to_pybytes(), table.num_rows


def write_parquet(
    table: Any, target: str, partition_by: Optional[Sequence[str]] = None, **options: Any
) -> None:
    """Write ``table`` to a local parquet file, or a folder of hive partitions."""
    if is_duckdb_relation(table):
        extra = {"partition_by": list(partition_by)} if partition_by else {}
        table.write_parquet(target, **extra, **options)
        return
    import pyarrow.parquet as pq

    table = as_arrow(table)
    if partition_by:
        pq.write_to_dataset(
            table, target, partition_cols=list(partition_by),
            basename_template="part-{i}.parquet", **options,
        )
    else:
        pq.write_table(table, target, **options)


def row_count(path: str) -> int:
    """Rows in a local parquet file, from its footer: by pyarrow if the process has loaded
    it, else by DuckDB (a DuckDB result written by DuckDB: importing pyarrow only to count
    its rows would add a third of a second to the task)."""
    if "pyarrow.parquet" in sys.modules or "duckdb" not in sys.modules:
        import pyarrow.parquet as pq

        return pq.read_metadata(path).num_rows
    import duckdb

    from ..sqltext import sql_literal

    conn = duckdb.connect()
    try:
        query = f"select num_rows from parquet_file_metadata({sql_literal(path)})"
        return conn.execute(query).fetchone()[0]
    finally:
        conn.close()


def is_duckdb_relation(table: Any) -> bool:
    """True for a DuckDB relation (``ctx.sql(...)``), without importing duckdb."""
    return type(table).__name__ == "DuckDBPyRelation"


def as_arrow(table: Any):
    """Accept a pyarrow Table, a DuckDB relation/result, or a pandas DataFrame."""
    import pyarrow as pa

    if isinstance(table, pa.Table):
        return table
    if hasattr(table, "arrow"):
        result = table.arrow()
        return result.read_all() if hasattr(result, "read_all") else result
    if hasattr(table, "to_arrow_table"):
        return table.to_arrow_table()
    try:
        return pa.Table.from_pandas(table)
    except Exception as e:
        raise TypeError(
            f"cannot write a {type(table).__name__} as parquet: pass a pyarrow.Table, "
            "a DuckDB relation or a pandas DataFrame"
        ) from e
