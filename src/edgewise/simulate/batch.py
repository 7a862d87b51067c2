"""The simulator evaluated for many specs at once, through the same cost function.

Sweeps ask thousands of "what if" questions of one workload. The schedule depends on a
spec only through the SRAM bytes left for activations, so it (and its traffic) is
computed once per distinct capacity; everything else is `cost.price` over (specs x ops)
arrays. Results equal `simulate` spec by spec (tests check it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.hardware.spec import HardwareSpec
from edgewise.simulate.compile import compile_key, compiled
from edgewise.simulate.cost import PJ, Rates, compute_seconds, overhead_seconds, price
from edgewise.simulate.schedule import Traffic, belady, traffic
from edgewise.simulate.simulator import (
    activation_capacity,
    resident_weight_bytes,
    streamed_share,
)
from edgewise.simulate.workload import OpWorkload

CHUNK = 512  # specs per block of (specs x ops) arrays: bounds memory, keeps numpy busy


@dataclass(frozen=True)
class BatchResult:
    """Totals per spec (arrays of length len(specs))."""

    latency_s: np.ndarray
    energy_j: np.ndarray
    dram_bytes: np.ndarray
    mac_utilization: np.ndarray
    floor_s: np.ndarray
    schedules_computed: int  # distinct SRAM capacities scheduled


def simulate_many(work: OpWorkload, specs: Sequence[HardwareSpec], precision: str) -> BatchResult:
    """Totals of `work` on every spec; specs whose compilers differ (fusion, weight
    compression) are evaluated on their own compiled workloads, group by group."""
    missing = [s.name for s in specs if precision not in s.macs_per_cycle]
    if missing:
        raise EdgewiseError(f"no {precision} MACs in: {', '.join(sorted(set(missing)))}")
    if any(s.dram_bytes == 0 for s in specs):
        raise EdgewiseError(
            "simulate_many needs specs with DRAM; simulate on-chip-only specs one by one"
        )
    n = len(specs)
    latency, energy, dram_total = np.empty(n), np.empty(n), np.empty(n)
    peak, floor = np.empty(n), np.empty(n)
    schedules = 0
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(specs):
        groups.setdefault(compile_key(s), []).append(i)
    for members in groups.values():
        part = [specs[i] for i in members]
        done = _same_compiler(compiled(work, part[0]), part, precision)
        idx = np.array(members)
        latency[idx], energy[idx], dram_total[idx], peak[idx], floor[idx] = done[:5]
        schedules += done[5]
    return BatchResult(
        latency_s=latency,
        energy_j=energy,
        dram_bytes=dram_total,
        mac_utilization=float(work.macs.sum()) / (peak * latency),
        floor_s=floor,
        schedules_computed=schedules,
    )


def _same_compiler(
    work: OpWorkload, specs: Sequence[HardwareSpec], precision: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """(latency, energy, DRAM bytes, peak MAC/s, floor, schedules) of specs sharing `work`."""
    capacity = np.array([activation_capacity(work, s)[0] for s in specs])
    share = np.array([streamed_share(work, s) for s in specs])
    preloaded = np.array([s.weights_preloaded for s in specs], dtype=bool)
    moved: dict[int, Traffic] = {
        int(c): traffic(work, belady(work, int(c))) for c in np.unique(capacity)
    }
    sram = work.sram_bytes.astype(np.float64)
    latency = np.empty(len(specs))
    energy = np.empty(len(specs))
    dram_total = np.empty(len(specs))
    peak = np.empty(len(specs))
    for start in range(0, len(specs), CHUNK):
        part = slice(start, min(start + CHUNK, len(specs)))
        rates = Rates.stacked(specs[part], precision)
        mac_s, vector_s, _ = compute_seconds(work, rates)
        dram = np.stack([moved[int(c)].dram_bytes for c in capacity[part]]).astype(np.float64)
        # as `simulator.weight_dram_bytes`, spec by spec
        dram += work.weight_bytes * share[part, None]
        dram[:, 0] += np.where(preloaded[part], 0.0, work.total_weight_bytes * (1 - share[part]))
        overhead = overhead_seconds(work.dispatched, work.n_ops, rates)
        cost = price(mac_s, vector_s, work.macs, work.vector_ops, dram, sram, overhead, rates)
        latency[part] = cost.latency_s.sum(axis=1)
        energy[part] = cost.energy_j.sum(axis=1)
        dram_total[part] = dram.sum(axis=1)
        peak[part] = np.broadcast_to(rates.peak_macs_per_s, (part.stop - part.start, 1))[:, 0]
    macs = float(work.macs.sum())
    weights = work.total_weight_bytes * np.where(preloaded, share, 1.0)
    compulsory = weights + work.input_bytes + work.output_bytes
    bandwidth = np.array([s.dram_bandwidth_bytes_per_s for s in specs])
    floor = np.maximum(macs / peak, compulsory / bandwidth)
    return latency, energy, dram_total, peak, floor, len(moved)


# --------------------------------------------------------------------------- sweep points
# A sweep point is a base spec with some of these fields set; what the point means is
# `spec_at`, and `point_rates` is the same thing for millions of points at once.
SWEEP_FIELDS = (
    "sram_bytes", "dram_bandwidth_bytes_per_s", "sram_bandwidth_bytes_per_s", "clock_hz",
    "mac_array.rows", "mac_array.cols", "vector_ops_per_cycle", "mac_efficiency",
    "op_overhead_s", "static_power_w", "sram_energy_pj_per_byte", "dram_energy_pj_per_byte",
)  # fmt: skip
INTEGER_FIELDS = ("sram_bytes", "mac_array.rows", "mac_array.cols")


def scaled_macs_per_cycle(base: float, base_cells: int, cells: np.ndarray | int) -> np.ndarray:
    """A MAC array of other rows x cols does macs_per_cycle x (rows x cols) / (base rows x
    cols) per cycle (the same MACs per cell), rounded half up to a whole number, at least 1."""
    return np.maximum(1, np.floor(base * np.asarray(cells) / base_cells + 0.5))


def spec_at(base: HardwareSpec, point: dict[str, float]) -> HardwareSpec:
    """The spec a sweep point describes, validated like any spec (its sources say so)."""
    unknown = sorted(set(point) - set(SWEEP_FIELDS))
    if unknown:
        raise EdgewiseError(f"cannot sweep {unknown[0]}: sweepable fields are "
                            f"{', '.join(SWEEP_FIELDS)}")  # fmt: skip
    data = base.model_dump()
    sources = dict(base.sources)
    for name, v in point.items():
        value: float | int = int(v) if name in INTEGER_FIELDS else float(v)
        if name.startswith("mac_array."):
            data["mac_array"][name.split(".")[1]] = value
        else:
            data[name] = value
        top = name.split(".")[0]
        sources[top] = f"sweep point: {name}={value}"
    cells = data["mac_array"]["rows"] * data["mac_array"]["cols"]
    base_cells = base.mac_array.rows * base.mac_array.cols
    if cells != base_cells:
        data["macs_per_cycle"] = {
            p: int(scaled_macs_per_cycle(v, base_cells, cells))
            for p, v in base.macs_per_cycle.items()
        }
        sources["macs_per_cycle"] = f"sweep point: scaled by the MAC array's rows x cols ({cells})"
    data["sources"] = sources
    return HardwareSpec.model_validate(data)


def point_rates(base: HardwareSpec, precision: str, columns: dict[str, np.ndarray]) -> Rates:
    """`Rates.of(spec_at(base, point), precision)` for every point, as (points, 1) columns."""
    n = len(next(iter(columns.values())))
    one = Rates.of(base, precision)

    def col(name: str) -> np.ndarray:
        return np.asarray(columns[name], dtype=np.float64).reshape(-1)

    def get(name: str, default: float) -> np.ndarray:
        return col(name) if name in columns else np.full(n, float(default))

    rows = get("mac_array.rows", base.mac_array.rows)
    cols = get("mac_array.cols", base.mac_array.cols)
    clock = get("clock_hz", base.clock_hz)
    mpc = scaled_macs_per_cycle(base.macs_per_cycle[precision], base.mac_array.rows  # type: ignore[index]
                                * base.mac_array.cols, rows * cols)  # fmt: skip
    fields = {f: np.full(n, float(getattr(one, f))) for f in one.__dataclass_fields__}
    fields |= {
        "peak_macs_per_s": mpc * clock,
        "vector_ops_per_s": get("vector_ops_per_cycle", base.vector_ops_per_cycle) * clock,
        "dram_bytes_per_s": get("dram_bandwidth_bytes_per_s", base.dram_bandwidth_bytes_per_s),
        "sram_bytes_per_s": get("sram_bandwidth_bytes_per_s", base.sram_bandwidth_bytes_per_s),
        "sram_j_per_byte": get("sram_energy_pj_per_byte", base.sram_energy_pj_per_byte) * PJ,
        "dram_j_per_byte": get("dram_energy_pj_per_byte", base.dram_energy_pj_per_byte) * PJ,
        "static_w": get("static_power_w", base.static_power_w),
        "rows": rows,
        "cols": cols,
        "mac_efficiency": get("mac_efficiency", base.mac_efficiency),
        "op_overhead_s": get("op_overhead_s", base.op_overhead_s),
    }
    out = {k: v[:, None] for k, v in fields.items()}
    out["overlap"] = out["overlap"].astype(bool)
    out["pipelined"] = out["pipelined"].astype(bool)
    return Rates(**out)


def _row_sums(x: np.ndarray) -> np.ndarray:
    """Each row added left to right: the same sum whatever the chunk's shape (numpy's
    `sum(axis=1)` and matrix products change their order with it), so a point's figures
    do not depend on the batch it ran in."""
    return np.cumsum(x, axis=1)[:, -1] if x.shape[1] else np.zeros(x.shape[0])


@dataclass(frozen=True)
class _Ops:
    """The per-op columns the cost function reads, for the distinct ops only."""

    macs: np.ndarray
    vector_ops: np.ndarray
    reduce_dim: np.ndarray
    out_dim: np.ndarray
    depthwise: np.ndarray
    weight_bytes: np.ndarray
    epilogue: np.ndarray | None
    dispatched: np.ndarray | None
    sram_bytes: np.ndarray


def _distinct_ops(work: OpWorkload, dram: np.ndarray) -> tuple[_Ops, np.ndarray, np.ndarray]:
    """Ops that cost the same on every point of one SRAM size (equal in every column the
    cost function reads, and in their DRAM bytes under its schedule) priced once, weighted
    by their count: a U-Net's repeated blocks make its 1,617 ops about 200 rows. Op 0 stays
    a row of its own (it carries the resident weights' load). The rows depend only on the
    workload and the size, so a point's figures do not depend on its batch. Returns (ops,
    count per row, DRAM bytes per row)."""
    n = work.n_ops
    zero = np.zeros(n)
    epilogue = work.epilogue if work.epilogue is not None else zero
    dispatched = work.dispatched if work.dispatched is not None else zero
    key = np.column_stack([
        work.macs, work.vector_ops, work.reduce_dim, work.out_dim, work.depthwise, epilogue,
        work.weight_bytes, work.sram_bytes, dispatched, np.arange(n) == 0, dram,
    ]).astype(np.float64)  # fmt: skip
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    count = np.bincount(inverse.reshape(-1), minlength=len(first)).astype(np.float64)
    order = np.argsort(first)  # rows in order of first occurrence: op 0 is row 0
    first, count = first[order], count[order]
    ops = _Ops(
        work.macs[first], work.vector_ops[first], work.reduce_dim[first], work.out_dim[first],
        work.depthwise[first], work.weight_bytes[first],
        None if work.epilogue is None else work.epilogue[first],
        None if work.dispatched is None else work.dispatched[first],
        work.sram_bytes[first].astype(np.float64),
    )  # fmt: skip
    return ops, count, dram[first]


POINT_OUTPUTS = (
    "latency_s", "energy_j", "mac_energy_j", "vector_energy_j", "sram_energy_j",
    "dram_energy_j", "static_energy_j", "dram_bytes", "peak_sram_bytes", "mac_utilization",
    "floor_s", "floor_ratio", "feasible",
)  # fmt: skip


def evaluate_points(
    work: OpWorkload,
    base: HardwareSpec,
    precision: str,
    columns: dict[str, np.ndarray],
    warm: bool = False,
) -> dict[str, np.ndarray]:
    """The totals `simulate` gives for each point (`spec_at`), under the default schedule
    (`warm`: a later call of a phase, as `simulate(..., warm=True)`): one schedule per
    distinct SRAM size, everything else the one cost function over (points x ops) arrays,
    `CHUNK` points at a time. Outputs: `POINT_OUTPUTS`."""
    if precision not in base.macs_per_cycle:
        raise EdgewiseError(f"'{base.name}' has no {precision} MACs")
    if base.dram_bytes == 0 or base.pipelined:
        raise EdgewiseError("a sweep needs a spec with DRAM that is not pipelined")
    work = compiled(work, base)
    n = len(next(iter(columns.values())))
    sram = np.asarray(columns.get("sram_bytes", np.full(n, base.sram_bytes)), dtype=np.int64)
    sizes, which = np.unique(sram, return_inverse=True)
    moved, share, held, fits = [], np.empty(len(sizes)), np.empty(len(sizes)), []
    for k, size in enumerate(sizes.tolist()):
        spec = spec_at(base, {"sram_bytes": size}) if size != base.sram_bytes else base
        capacity = activation_capacity(work, spec)[0]
        moved.append(traffic(work, belady(work, capacity)))
        share[k] = streamed_share(work, spec)
        held[k] = resident_weight_bytes(work, spec)
        fits.append(moved[-1].feasible)
    preloaded = base.weights_preloaded or warm
    rates_all = point_rates(base, precision, columns)
    out = {name: np.empty(n) for name in POINT_OUTPUTS}
    dram_by_size = np.stack([m.dram_bytes for m in moved]).astype(np.float64)
    for k in range(len(sizes)):  # the points of one SRAM size: one schedule, one op table
        ops, count, dram_row = _distinct_ops(work, dram_by_size[k])
        members = np.flatnonzero(which == k)
        for start in range(0, len(members), CHUNK):
            part = members[start : start + CHUNK]
            rates = Rates(**{f: getattr(rates_all, f)[part] for f in Rates.__dataclass_fields__})
            mac_s, vector_s, _ = compute_seconds(ops, rates)  # type: ignore[arg-type]
            dram = np.broadcast_to(dram_row + ops.weight_bytes * share[k], (len(part), len(count)))
            if not preloaded:  # op 0 is a row of its own: the resident weights' load
                dram = dram.copy()
                dram[:, 0] += work.total_weight_bytes * (1 - share[k])
            overhead = overhead_seconds(ops.dispatched, len(count), rates)
            cost = price(mac_s, vector_s, ops.macs, ops.vector_ops, dram, ops.sram_bytes,
                         overhead, rates)  # fmt: skip
            out["latency_s"][part] = _row_sums(cost.latency_s * count)
            out["energy_j"][part] = _row_sums(cost.energy_j * count)
            for name, part_j in (("mac_energy_j", cost.mac_j), ("vector_energy_j", cost.vector_j),
                                 ("sram_energy_j", cost.sram_j), ("dram_energy_j", cost.dram_j),
                                 ("static_energy_j", cost.static_j)):  # fmt: skip
                out[name][part] = _row_sums(np.broadcast_to(part_j, cost.latency_s.shape) * count)
            out["dram_bytes"][part] = _row_sums(dram * count)
    peak = rates_all.peak_macs_per_s[:, 0]
    macs = float(work.macs.sum())
    weights = work.total_weight_bytes * (share[which] if preloaded else 1.0)
    compulsory = weights + work.input_bytes + work.output_bytes
    out["floor_s"] = np.maximum(macs / peak, compulsory / rates_all.dram_bytes_per_s[:, 0])
    out["floor_ratio"] = out["latency_s"] / out["floor_s"]
    out["mac_utilization"] = macs / (peak * out["latency_s"])
    occupancy = np.array([m.occupancy_bytes.max(initial=0) for m in moved], dtype=np.float64)
    out["peak_sram_bytes"] = (occupancy + held)[which]
    out["feasible"] = np.array(fits, dtype=bool)[which]
    return out


_ADDITIVE = ("latency_s", "energy_j", "mac_energy_j", "vector_energy_j", "sram_energy_j",
             "dram_energy_j", "static_energy_j", "dram_bytes", "floor_s")  # fmt: skip


def evaluate_pipeline_points(
    phases: Sequence[tuple[OpWorkload, int]],
    base: HardwareSpec,
    precision: str,
    columns: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """A pipeline's totals per run for each point, as `simulate.pipeline` sums them: per
    phase the first call + (calls - 1) x a later call (warm), the phases added; the peak
    SRAM the largest; utilization and the floor ratio from the sums."""
    total: dict[str, np.ndarray] = {}
    macs = 0.0
    for work, calls in phases:
        first = evaluate_points(work, base, precision, columns)
        later = evaluate_points(work, base, precision, columns, warm=True) if calls > 1 else first
        for name in _ADDITIVE:
            total[name] = total.get(name, 0.0) + first[name] + (calls - 1) * later[name]
        total["peak_sram_bytes"] = np.maximum(total.get("peak_sram_bytes", 0.0),
                                              np.maximum(first["peak_sram_bytes"],
                                                         later["peak_sram_bytes"]))  # fmt: skip
        total["feasible"] = total.get("feasible", True) & first["feasible"] & later["feasible"]
        macs += float(work.macs.sum()) * calls
    peak = point_rates(base, precision, columns).peak_macs_per_s[:, 0]
    total["mac_utilization"] = macs / (peak * total["latency_s"])
    total["floor_ratio"] = total["latency_s"] / total["floor_s"]
    return {name: total[name] for name in POINT_OUTPUTS}
