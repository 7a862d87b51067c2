"""Reading a sweep's store: SQL over `points` (read-only), its Pareto front, Parquet export.

The CLI's `sweep query | pareto | export` and the API's `SweepResult` read through these,
so a front or a query is the same figure from either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.sweep.pareto import check_objectives, pareto_mask
from edgewise.sweep.run import need_duckdb


def connect(store: Path):  # type: ignore[no-untyped-def]
    duckdb = need_duckdb()
    if not store.is_file():
        raise EdgewiseError(f"no store at '{store}': write one with `edgewise sweep SPACE -o`")
    try:
        return duckdb.connect(str(store), read_only=True)
    except duckdb.Error as e:
        raise EdgewiseError(f"cannot open '{store}': {str(e).splitlines()[0]}") from None


def _read(store: Path, sql: str, read: Callable[[Any], Any]) -> Any:
    """`read` of the cursor `sql` gives, on a read-only connection closed after."""
    import duckdb

    con = connect(store)
    try:
        return read(con.execute(sql))
    except duckdb.Error as e:
        raise EdgewiseError(f"the query failed: {str(e).splitlines()[0]}") from None
    finally:
        con.close()


def query(store: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The column names and rows `sql` returns."""
    return _read(store, sql, lambda cur: ([d[0] for d in cur.description or []], cur.fetchall()))


def query_frame(store: Path, sql: str) -> Any:
    """`sql`'s result as a pandas DataFrame (DuckDB builds it)."""
    return _read(store, sql, lambda cur: cur.df())


@dataclass(frozen=True)
class Front:
    """The feasible points (`where` applied), their objective values and which are on the
    front; `points` are the front's rows, sorted by the objectives."""

    objectives: tuple[str, ...]
    names: tuple[str, ...]
    values: np.ndarray  # feasible points x objectives
    mask: np.ndarray  # on the front, per feasible point
    points: tuple[tuple[Any, ...], ...]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.names, r, strict=True)) for r in self.points]


def pareto_front(store: Path, minimize: list[str], where: str | None = None) -> Front:
    """The feasible points no other beats on every `minimize` column (infinite values are
    never on it)."""
    cond = "feasible" + (f" AND ({where})" if where else "")
    names, data = query(store, f"SELECT * FROM points WHERE {cond}")
    objectives = check_objectives(minimize, names)
    idx = [names.index(o) for o in objectives]
    values = np.array([[r[i] for i in idx] for r in data], dtype=np.float64).reshape(-1, len(idx))
    finite = np.all(np.isfinite(values), axis=1)
    mask = np.zeros(len(data), dtype=bool)
    mask[finite] = pareto_mask(values[finite])
    front = [data[i] for i in np.flatnonzero(mask)]
    front.sort(key=lambda r: tuple(r[i] for i in idx))
    return Front(tuple(objectives), tuple(names), values, mask, tuple(front))


def export_parquet(store: Path, target: Path) -> None:
    """The table `points` as one Parquet file (written whole, then moved into place)."""
    import duckdb

    if target.suffix.lower() != ".parquet":
        raise EdgewiseError(f"export writes Parquet: give a .parquet file (got '{target}')")
    con = connect(store)
    tmp = target.with_name(target.name + ".partial")
    try:
        con.execute(f"COPY points TO '{str(tmp).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)")
    except duckdb.Error as e:
        tmp.unlink(missing_ok=True)
        raise EdgewiseError(f"cannot write '{target}': {str(e).splitlines()[0]}") from None
    finally:
        con.close()
    tmp.replace(target)
