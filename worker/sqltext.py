"""SQL text for DuckDB: literals and quoted identifiers.

Queries carry values as literals, not as parameters: on duckdb 1.2 (the Python 3.8 pin) a
query's first Python parameter imports pandas, numpy and pyarrow, a second of start-up for
a task that uses none of them. A base module of its own, so the lake (which asks DuckDB for
parquet footers) and ``worker.db`` (which queries the lake) need not import each other.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping


def sql_literal(value: Any) -> str:
    """``value`` as a DuckDB SQL literal: a bool, number, string, list or struct."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, Mapping):
        pairs = (f"{sql_literal(str(k))}: {sql_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, Iterable):
        return "[" + ", ".join(sql_literal(v) for v in value) + "]"
    raise TypeError(f"cannot pass a {type(value).__name__} as a DuckDB reader option")


def identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
