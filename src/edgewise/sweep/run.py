"""Running a sweep into a store: one DuckDB table, one row per point, resumable.

Per model and precision the graph's workload is prepared once; the points are split into
batches, each evaluated by `simulate.batch.evaluate_points` (the one cost function over
points x ops; one schedule per distinct SRAM size) and, when the space asks for a plan,
planned point by point with `plan.planner.make_plan` on the point's spec. Batches run on
a local process pool (or inline with one worker) or as Ray tasks; whichever ran them, the
rows are the same. Each finished batch is inserted in its own transaction, so a sweep
stopped at any moment (Ctrl-C, kill -9) keeps every finished batch and none half; a rerun
of the same space skips the points already stored (by `space.point_ids`) and a point is
never stored twice (the id is the table's primary key).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.hardware.spec import HardwareSpec, compute_precision, load_spec, parse_precision
from edgewise.ir.graph import Graph
from edgewise.ir.pipeline import Pipeline
from edgewise.simulate.batch import (
    POINT_OUTPUTS,
    evaluate_pipeline_points,
    evaluate_points,
    spec_at,
)
from edgewise.simulate.workload import OpWorkload, op_workload
from edgewise.sweep.space import Space, point_ids

PLAN_OUTPUTS = ("plan_status", "plan_latency_s", "plan_energy_j", "plan_dram_bytes",
                "plan_peak_sram_bytes", "plan_summary")  # fmt: skip
Progress = Callable[[int, int], None]  # (points done, points in all)


def column(field: str) -> str:
    """A swept field's column in the store: `mac_array.rows` -> `mac_array_rows`."""
    return field.replace(".", "_")


def table_columns(space: Space) -> list[tuple[str, str]]:
    """(name, DuckDB type) of the store's table for this space."""
    cols = [("point_id", "BIGINT PRIMARY KEY"), ("model", "VARCHAR"), ("precision", "VARCHAR"),
            ("hardware", "VARCHAR")]  # fmt: skip
    cols += [(column(f), "DOUBLE") for f in space.fields]
    cols += [(o, "BOOLEAN" if o == "feasible" else "DOUBLE") for o in POINT_OUTPUTS]
    cols += [("area_mm2", "DOUBLE")]
    if space.plan is not None:
        cols += [(o, "VARCHAR" if o in ("plan_status", "plan_summary") else "DOUBLE")
                 for o in PLAN_OUTPUTS]  # fmt: skip
    return cols


class Store:
    """The DuckDB file: table `points` and table `space` (what made it)."""

    def __init__(self, path: Path, space: Space) -> None:
        duckdb = need_duckdb()

        try:
            self.con = duckdb.connect(str(path))
        except duckdb.Error as e:
            raise EdgewiseError(
                f"cannot open the store '{path}': {str(e).splitlines()[0]}"
            ) from None
        wanted = table_columns(space)
        have = [r[0] for r in self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'points' "
            "ORDER BY ordinal_position").fetchall()]  # fmt: skip
        if have and have != [n for n, _ in wanted]:
            raise EdgewiseError(
                f"'{path}' holds points of another space (its columns differ): give a new "
                "file, or the space file that made it"
            )
        if not have:
            self.con.execute(f"CREATE TABLE points ({', '.join(f'{n} {t}' for n, t in wanted)})")
        self.con.execute("CREATE TABLE IF NOT EXISTS space (space_hash VARCHAR, hardware "
                         "VARCHAR, started TIMESTAMP DEFAULT current_timestamp)")  # fmt: skip
        self.con.execute("INSERT INTO space (space_hash, hardware) VALUES (?, ?)",
                         [space.text_hash, space.hardware])  # fmt: skip

    def done(self) -> np.ndarray:
        rows = self.con.execute("SELECT point_id FROM points").fetchnumpy()["point_id"]
        return np.asarray(rows, dtype=np.int64)

    def insert(self, rows: dict[str, Any]) -> None:
        """One batch, in one transaction: all of it or none."""
        import pyarrow as pa

        table = pa.table(rows)
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.register("batch_rows", table)
            self.con.execute("INSERT INTO points BY NAME SELECT * FROM batch_rows")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        finally:
            self.con.unregister("batch_rows")

    def close(self) -> None:
        self.con.close()


def need_duckdb():  # type: ignore[no-untyped-def]
    try:
        import duckdb
        import pyarrow  # noqa: F401 - batches reach DuckDB as Arrow tables
    except ImportError:
        raise EdgewiseError(
            "sweeps need DuckDB and pyarrow: pip install 'edgewise[sweep]'"
        ) from None
    return duckdb


@dataclass(frozen=True)
class Task:
    """One batch: the points of one model and precision (picklable, for pools and Ray)."""

    model: str
    precision: str
    base: dict[str, Any]  # the base spec, dumped
    ids: np.ndarray
    columns: dict[str, np.ndarray]
    plan: dict[str, Any] | None
    area: tuple[float, float] | None  # (mm² per MiB of SRAM, mm² per MAC cell)


Work = OpWorkload | tuple[tuple[OpWorkload, int], ...]  # a graph's, or a pipeline's phases


def evaluate_task(task: Task, work: Work, graph: Graph | None = None) -> dict[str, Any]:
    """The rows of one batch (see the module docstring); a pipeline's per run."""
    base = HardwareSpec.model_validate(task.base)
    weights, activations = parse_precision(task.precision, base)
    compute = compute_precision(weights, activations)
    n = len(task.ids)
    if isinstance(work, tuple):
        out = evaluate_pipeline_points(work, base, compute, task.columns)
    else:
        out = evaluate_points(work, base, compute, task.columns)
    rows: dict[str, Any] = {
        "point_id": task.ids, "model": [task.model] * n, "precision": [task.precision] * n,
        "hardware": [base.name] * n,
    }  # fmt: skip
    rows |= {column(f): np.asarray(v, dtype=np.float64) for f, v in task.columns.items()}
    rows |= out
    rows["area_mm2"] = _area(base, task.columns, task.area, n)
    if task.plan is not None:
        assert graph is not None and not isinstance(work, tuple)  # pipelines are not planned
        rows |= _planned(graph, work, base, weights, activations, compute, task)
    return rows


def _area(base: HardwareSpec, columns: dict[str, np.ndarray], area: tuple[float, float] | None,
          n: int) -> np.ndarray:  # fmt: skip
    if area is None:  # stored as NULL: no area model in the space
        return np.array([None] * n, dtype=object)
    sram = np.asarray(columns.get("sram_bytes", np.full(n, base.sram_bytes)), dtype=np.float64)
    rows = np.asarray(columns.get("mac_array.rows", np.full(n, base.mac_array.rows)), float)
    cols = np.asarray(columns.get("mac_array.cols", np.full(n, base.mac_array.cols)), float)
    return sram / 2**20 * area[0] + rows * cols * area[1]


ENERGY_ONLY = frozenset({"static_power_w", "sram_energy_pj_per_byte", "dram_energy_pj_per_byte"})


def decision_fields(fields: tuple[str, ...], objective: str) -> tuple[str, ...]:
    """The swept fields a plan's decisions depend on: for a latency or DRAM objective not
    the energy-only ones (they change no time and no byte, so neither the solver's problem
    nor its candidate recompute positions), for energy all of them."""
    return tuple(f for f in fields if objective == "energy" or f not in ENERGY_ONLY)


def _planned(graph: Graph, work: OpWorkload, base: HardwareSpec, weights: str,
             activations: str, compute: str, task: Task) -> dict[str, Any]:  # fmt: skip
    """Plan each point; points that differ only in fields the decisions do not depend on
    (`decision_fields`) share one plan, simulated on each point's own spec (as `simulate
    --plan` would: the figure `make_plan` gives that point)."""
    from edgewise.plan.planner import make_plan
    from edgewise.simulate.simulator import simulate

    p = task.plan or {}
    out: dict[str, list[Any]] = {o: [] for o in PLAN_OUTPUTS}
    keyed = decision_fields(tuple(task.columns), p["objective"])
    plans: dict[tuple[float, ...], Any] = {}
    for i in range(len(task.ids)):
        point = {f: float(v[i]) for f, v in task.columns.items()}
        spec = spec_at(base, point)
        key = tuple(point[f] for f in keyed)
        if key not in plans:
            try:
                o = make_plan(graph, spec, weights, activations, compute, p["objective"],
                              frozenset(p["allow"]), time_limit_s=p["time_limit_s"])  # fmt: skip
                plans[key] = (o.plan, o.result.status if o.plan is not None else "infeasible")
            except EdgewiseError as e:
                plans[key] = (None, f"error: {e}")
        plan, status = plans[key]
        t = None
        if plan is not None:
            planned = plan.workload(work, graph)
            t = simulate(planned, spec, compute, schedule=plan.sram_schedule(planned)).totals
        out["plan_status"].append(status)
        out["plan_latency_s"].append(t.latency_s if t else None)
        out["plan_energy_j"].append(t.energy_j if t else None)
        out["plan_dram_bytes"].append(float(t.dram_bytes) if t else None)
        out["plan_peak_sram_bytes"].append(float(t.peak_sram_bytes) if t else None)
        out["plan_summary"].append(plan.described() if plan is not None else "")
    return out


# --------------------------------------------------------------------------- executors

_WORKER: dict[str, Any] = {}


def _init_worker(works: dict[tuple[str, str], OpWorkload], graphs: dict[str, Graph]) -> None:
    _WORKER["works"], _WORKER["graphs"] = works, graphs


def _run_in_worker(task: Task) -> dict[str, Any]:
    work = _WORKER["works"][task.model, task.precision]
    return evaluate_task(task, work, _WORKER["graphs"].get(task.model))


@dataclass(frozen=True)
class SweepSummary:
    points: int  # in the space
    skipped: int  # already in the store
    evaluated: int
    batches: int
    seconds: float
    executor: str


def base_spec(space: Space) -> HardwareSpec:
    """The space's base spec, its precisions checked against it (before any work)."""
    base = load_spec(space.hardware, list(space.overrides))
    for precision in space.precisions:
        parse_precision(precision, base)
    if base.dram_bytes == 0 or base.pipelined:
        raise EdgewiseError(f"'{base.name}': a sweep needs a spec with DRAM that is not "
                            "pipelined")  # fmt: skip
    return base


def space_graphs(space: Space) -> dict[str, Graph | Pipeline]:
    """Each model of the space captured (a pipeline's phases for a pipeline), by key."""
    from edgewise.capture.pipelines import pipeline_named
    from edgewise.capture.source import graph_from_source
    from edgewise.capture.workload import workload_for

    graphs: dict[str, Graph | Pipeline] = {}
    for m in space.models:
        if m.pipeline is not None:
            pipe = pipeline_named(m.pipeline, m.batch, m.resolution, m.frames, m.cfg, m.steps,
                                  m.cfg_mode)  # fmt: skip
            if pipe is None:
                raise EdgewiseError(f"'{m.pipeline}' is not a pipeline (pipelines: sd15, sdxl)")
            graphs[m.key] = pipe
        else:
            workload = workload_for(m.batch, m.resolution, m.frames, m.cfg)
            graphs[m.key] = graph_from_source(m.name or m.file, None, workload)
    return graphs


def check_sweep_options(workers: int | None, batch_points: int | None) -> None:
    """--workers and --batch-points within reason, before any capture."""
    if workers is not None and not 1 <= workers <= 1024:
        raise EdgewiseError(f"--workers must be from 1 to 1024 (got {workers})")
    if batch_points is not None and not 1 <= batch_points <= 10_000_000:
        raise EdgewiseError(f"--batch-points must be from 1 to 10,000,000 (got {batch_points})")


def run_sweep(
    space: Space,
    graphs: dict[str, Graph | Pipeline],
    store_path: Path,
    workers: int | None = None,
    ray_address: str | None = None,
    batch_points: int | None = None,
    progress: Progress | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> SweepSummary:
    """Evaluate every point of `space` not yet in the store; `graphs` (or pipelines) by
    model key."""
    import time

    start = time.perf_counter()
    base = base_spec(space)
    store = Store(store_path, space)
    try:
        done = store.done()
        tasks, works, skipped = [], {}, 0
        size = batch_points or (64 if space.plan is not None else 65_536)
        area = (space.area.sram_mm2_per_mib.value, space.area.mac_mm2.value) if space.area else None
        plan = space.plan.model_dump() if space.plan is not None else None
        for entry in space.models:
            for precision in space.precisions:
                weights, activations = parse_precision(precision, base)
                g = graphs[entry.key]
                works[entry.key, precision] = (
                    tuple((op_workload(p.graph, weights, activations), p.calls) for p in g.phases)
                    if isinstance(g, Pipeline) else op_workload(g, weights, activations)
                )  # fmt: skip
                ids = point_ids(entry.key, precision, space.columns)
                todo = np.flatnonzero(~np.isin(ids, done))
                keyed = decision_fields(space.fields, plan["objective"]) if plan else ()
                if keyed:  # points that share a plan's decisions, in the same batch
                    todo = todo[np.lexsort([space.columns[f][todo] for f in keyed[::-1]])]
                skipped += len(ids) - len(todo)
                for lo in range(0, len(todo), size):
                    pick = todo[lo : lo + size]
                    tasks.append(Task(entry.key, precision, base.model_dump(), ids[pick],
                                      {f: c[pick] for f, c in space.columns.items()}, plan,
                                      area))  # fmt: skip
        total = sum(len(t.ids) for t in tasks)
        needed = {k: g for k, g in graphs.items() if isinstance(g, Graph) and plan is not None}
        finished = 0
        executor = "inline"
        results: Iterator[dict[str, Any]]
        if ray_address is not None:
            executor = "ray"
            results = _ray_results(tasks, works, needed, ray_address)
        elif (workers or os.cpu_count() or 1) > 1 and len(tasks) > 1:
            executor = "process pool"
            results = _pool_results(tasks, works, needed, workers or os.cpu_count() or 1)
        else:
            results = (evaluate_task(t, works[t.model, t.precision], needed.get(t.model))
                       for t in tasks)  # fmt: skip
        for k, rows in enumerate(results, start=1):
            store.insert(rows)
            finished += len(rows["point_id"])
            if progress is not None:
                progress(finished, total)
            if on_batch is not None:
                on_batch(k, len(tasks))
    finally:
        store.close()
    return SweepSummary(space.points * len(space.models) * len(space.precisions), skipped,
                        finished, len(tasks), time.perf_counter() - start, executor)  # fmt: skip


def _pool_results(tasks: list[Task], works: dict, graphs: dict, workers: int) -> Iterator[dict]:  # type: ignore[type-arg]
    """Batches on a local process pool (spawned: no state shared with this process but the
    workloads it is handed once), yielded as they finish."""
    context, size = get_context("spawn"), min(workers, len(tasks))
    with ProcessPoolExecutor(size, context, _init_worker, (works, graphs)) as pool:
        pending: set[Future[dict[str, Any]]] = set()
        queue = iter(tasks)
        for task in queue:  # keep twice the workers busy, no more (bounded memory)
            pending.add(pool.submit(_run_in_worker, task))
            if len(pending) >= 2 * workers:
                break
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                yield f.result()
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(pool.submit(_run_in_worker, nxt))


def _ray_results(tasks: list[Task], works: dict, graphs: dict, address: str) -> Iterator[dict]:  # type: ignore[type-arg]
    """Batches as Ray tasks (the workloads put in the object store once), yielded as they
    finish. `address`: 'local' starts a Ray instance here; 'auto' or an address joins a
    cluster; a Ray already started in this process is used as it is."""
    try:
        import ray
    except ImportError:
        raise EdgewiseError("--ray needs Ray: pip install 'edgewise[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address, include_dashboard=False,
                 logging_level=40, log_to_driver=False)  # fmt: skip
    work_refs = {k: ray.put(w) for k, w in works.items()}
    graph_refs = {k: ray.put(g) for k, g in graphs.items()}
    remote = ray.remote(_ray_task)
    pending = [remote.remote(t, work_refs[t.model, t.precision], graph_refs.get(t.model))
               for t in tasks]  # fmt: skip
    while pending:
        finished, pending = ray.wait(pending, num_returns=1)
        yield ray.get(finished[0])


def _ray_task(task: Task, work: OpWorkload, graph: Graph | None) -> dict[str, Any]:
    return evaluate_task(task, work, graph)
