"""The simulator: a workload, a schedule and a spec in; per-op time, traffic and energy out.

The pipeline is short and the same for every caller: the workload as the spec's compiler
runs it (`compile`: fusion, weight compression, dispatch) -> weights resident or streamed ->
a schedule (the default Belady schedule, or a plan's) -> `schedule.traffic` (the bytes
that schedule moves) -> per-op DRAM and SRAM bytes (streamed weights, recomputed
segments' weights and compute landing on the op they run at) -> `cost.price`, the one
cost function. The physical floor is max(total MACs / peak MAC/s, compulsory DRAM bytes
/ DRAM BW), the compulsory bytes being every weight once (none when they were loaded with
the model) plus the inputs and outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgewise.analysis.lifetimes import segments
from edgewise.errors import EdgewiseError
from edgewise.hardware.spec import HardwareSpec
from edgewise.ir.graph import gc_paused
from edgewise.simulate.compile import compiled
from edgewise.simulate.cost import (
    BOUNDS,
    OpCost,
    Rates,
    compute_seconds,
    mapping_utilization,
    overhead_seconds,
    price,
)
from edgewise.simulate.schedule import Pin, Schedule, Traffic, belady, traffic
from edgewise.simulate.workload import OpWorkload

__all__ = [
    "BOUNDS",
    "LayerCost",
    "Simulation",
    "Totals",
    "group_costs",
    "mapping_utilization",
    "simulate",
]


@dataclass(frozen=True)
class Totals:
    latency_s: float
    energy_j: float
    mac_energy_j: float
    vector_energy_j: float
    sram_energy_j: float
    dram_energy_j: float
    static_energy_j: float
    dram_bytes: int
    # the DRAM bytes by kind (they add up to dram_bytes): weights streamed or loaded,
    # storages read back (spilled activations, model inputs), storages written out
    # (`spilled_bytes`), tiled ops' and recomputations' streams, model outputs
    dram_weight_bytes: int
    dram_refill_bytes: int
    dram_stream_bytes: int
    dram_output_bytes: int
    dram_long_lived_bytes: int  # of refills + spills: long-lived tensors' (skips') round trips
    dram_input_bytes: int  # of refills: model inputs read
    dram_scores_bytes: int  # of tiled streams: attention scores through DRAM
    sram_bytes: int
    macs: int
    # the latency by what bounds each op (they add up to latency_s)
    compute_bound_s: float
    dram_bound_s: float
    sram_bound_s: float
    overhead_bound_s: float
    overhead_s: float  # of the latency: the runtime's fixed per-op cost, on every op
    dispatched_ops: int  # ops run as kernels of their own (views and fused ops are not)
    mac_utilization: float  # MACs / (peak MAC/s x latency)
    floor_s: float
    floor_ratio: float  # latency / floor
    peak_sram_bytes: int
    spilled_bytes: int
    tiled_ops: int
    recomputed_macs: int  # MACs re-run by a plan's recomputations (inside `macs`)
    feasible: bool  # SRAM never exceeded (a plan's pinned tensors always fit)


@dataclass(frozen=True)
class Simulation:
    """Per-op arrays and totals of one workload on one spec."""

    spec_name: str
    precision: str
    work: OpWorkload
    schedule: Schedule
    traffic: Traffic
    weights_resident: bool
    mac_s: np.ndarray
    vector_s: np.ndarray
    dram_s: np.ndarray
    sram_s: np.ndarray
    overhead_s: np.ndarray
    latency_s: np.ndarray
    dram_bytes: np.ndarray
    sram_bytes: np.ndarray
    energy_j: np.ndarray
    utilization: np.ndarray  # mapping utilization of the array while the op computes
    bound: np.ndarray  # index into BOUNDS
    totals: Totals


@dataclass(frozen=True, slots=True)
class LayerCost:
    """One layer's (or block's) share of a simulation; additive over its ops."""

    name: str
    op_count: int
    latency_s: float
    energy_j: float
    dram_bytes: int
    sram_bytes: int
    macs: int
    mac_utilization: float  # MACs / (peak MAC/s x latency)
    bound: str  # the bound of the ops that take most of its time
    tiled_ops: int
    vector_ops: int = 0
    fused_ops: int = 0  # ops run in another op's epilogue (`compile.fuse_epilogues`)


@gc_paused()
def group_costs(
    sim: Simulation, keys: tuple[str, ...], peak_macs_per_s: float
) -> tuple[LayerCost, ...]:
    """Sum per-op costs into rows keyed by `keys` (one per op), in order of first op."""
    group_of: dict[str, int] = {}
    group = np.array([group_of.setdefault(key, len(group_of)) for key in keys], dtype=np.int64)
    group = group.reshape(-1)
    rows = len(group_of)
    sizes = np.bincount(group, minlength=rows)
    counts = sizes.tolist()
    order = np.argsort(group, kind="stable")  # each group's ops together, in op order
    bounds = segments(sizes)

    def float_sums(values: np.ndarray) -> list[float]:
        # exactly numpy's sum of each group's values: below 8 values it adds them in
        # order from 0, as bincount does; longer groups are summed as numpy does (pairwise)
        out = np.bincount(group, weights=values, minlength=rows)
        grouped = values[order]
        for g in np.flatnonzero(sizes >= 8).tolist():
            out[g] = grouped[bounds[g] : bounds[g + 1]].sum()
        return out.tolist()

    def int_sums(values: np.ndarray) -> list[int]:
        out = np.zeros(rows, dtype=np.int64)
        np.add.at(out, group, values.astype(np.int64))
        return out.tolist()

    latency, energy = float_sums(sim.latency_s), float_sums(sim.energy_j)
    dram, sram, macs = int_sums(sim.dram_bytes), int_sums(sim.sram_bytes), int_sums(sim.work.macs)
    tiled, vector = int_sums(sim.schedule.tiled), int_sums(sim.work.vector_ops)
    epilogue = sim.work.epilogue
    fused = int_sums(epilogue) if epilogue is not None else [0] * rows
    kinds = len(BOUNDS)
    by_bound = np.bincount(group * kinds + sim.bound, weights=sim.latency_s, minlength=kinds * rows)
    bound = np.argmax(by_bound.reshape(rows, kinds)[:, : kinds - 1], axis=1).tolist()
    # positional: name, op count, latency, energy, DRAM, SRAM, MACs, utilization, bound, tiled,
    # vector ops, fused ops
    return tuple(
        LayerCost(name, counts[g], latency[g], energy[g], dram[g], sram[g], macs[g],
                  macs[g] / (peak_macs_per_s * latency[g]) if latency[g] else 0.0,
                  BOUNDS[bound[g]] if latency[g] else "none", tiled[g], vector[g], fused[g])
        for name, g in group_of.items()
    )  # fmt: skip


def weights_stay_resident(work: OpWorkload, spec: HardwareSpec) -> bool:
    """Resident when the spec keeps weights on chip (or has no DRAM) and all of them fit
    (with `weights_cached`: beside the largest op's working set too)."""
    if work.total_weight_bytes == 0:
        return _wants_resident(spec)
    return resident_weight_bytes(work, spec) == work.total_weight_bytes


def _wants_resident(spec: HardwareSpec) -> bool:
    return spec.weights_resident or spec.dram_bytes == 0


def resident_weight_bytes(work: OpWorkload, spec: HardwareSpec) -> int:
    """Weight bytes kept in SRAM: all of them when the spec keeps weights on chip (or has no
    DRAM) and they fit, else none; with `weights_cached` (a parameter cache), as many as fit
    beside the largest op's working set (none held back on a pipelined chip), the rest
    streaming from DRAM at every use."""
    total = work.total_weight_bytes
    if not _wants_resident(spec):
        return 0
    if not spec.weights_cached or spec.dram_bytes == 0:
        return total if total < spec.sram_bytes else 0
    working = 0 if spec.pipelined else int((work.operand_bytes + work.scores_bytes).max(initial=0))
    return max(0, min(total, spec.sram_bytes - working))


def streamed_share(work: OpWorkload, spec: HardwareSpec) -> float:
    """The share of the weights that streams from DRAM at every use (0: all resident)."""
    total = work.total_weight_bytes
    return 1.0 - resident_weight_bytes(work, spec) / total if total else 0.0


# a pipelined (dataflow) chip passes activations between layers through line buffers: no
# tensor is held whole, so none is spilled (the SRAM schedule has room for everything)
STREAMED_ACTIVATIONS = 2**62


def activation_capacity(work: OpWorkload, spec: HardwareSpec) -> tuple[int, bool]:
    """(SRAM bytes left for activations, weights resident?), or a one-line error."""
    resident = weights_stay_resident(work, spec)
    capacity = spec.sram_bytes - resident_weight_bytes(work, spec)
    if spec.pipelined and capacity > 0:
        return STREAMED_ACTIVATIONS, resident
    if capacity <= 0 or (spec.dram_bytes == 0 and not resident and work.total_weight_bytes):
        raise EdgewiseError(
            f"the weights ({work.total_weight_bytes / 2**20:.1f} MiB) do not fit in "
            f"'{spec.name}' SRAM ({spec.sram_bytes / 2**20:.1f} MiB)"
            + ("" if spec.dram_bytes else " and it has no DRAM to stream them from")
        )
    return int(capacity), resident


def streamed_weight_bytes(
    work: OpWorkload, share: float, resident_ops: np.ndarray | None = None
) -> np.ndarray:
    """Per op, the weight bytes it reads from DRAM at every call: the streamed `share`
    (`streamed_share`) of what it reads, none for an op whose weights a plan keeps."""
    out = work.weight_bytes * float(share)
    if resident_ops is not None:
        out[resident_ops] = 0.0
    return out


def loaded_weight_bytes(
    work: OpWorkload, share: float, resident_ops: np.ndarray | None = None
) -> float:
    """Weight bytes held in SRAM across calls: the spec's resident share plus what a plan
    keeps; loaded from DRAM once, before the first op of the first call."""
    held = float(work.weight_bytes[resident_ops].sum()) if resident_ops is not None else 0.0
    return work.total_weight_bytes * (1.0 - float(share)) + held


def weight_dram_bytes(
    work: OpWorkload,
    share: float,
    preloaded: bool = False,
    resident_ops: np.ndarray | None = None,
) -> np.ndarray:
    """Per op, the DRAM bytes of weights: `streamed_weight_bytes` at every op, and what is
    held across calls (`loaded_weight_bytes`) loaded at the first op, unless it is on chip
    already (`weights_preloaded`, or a later call of a phase)."""
    out = streamed_weight_bytes(work, share, resident_ops)
    load = loaded_weight_bytes(work, share, resident_ops)
    if work.n_ops and not preloaded and load:
        out[0] += load
    return out


@dataclass(frozen=True)
class Demand:
    """What each op must do under a schedule, before any spec prices it."""

    mac_s: np.ndarray
    vector_s: np.ndarray
    macs: np.ndarray
    vector_ops: np.ndarray
    dram_bytes: np.ndarray
    sram_bytes: np.ndarray
    overhead_s: np.ndarray
    utilization: np.ndarray
    recomputed_macs: int


def demand(
    work: OpWorkload,
    rates: Rates,
    schedule: Schedule,
    moved: Traffic,
    share: float,
    has_dram: bool,
    preloaded: bool = False,
) -> Demand:
    """Per-op compute and bytes: the schedule's traffic, weights (streamed at every op that
    reads them, the resident rest loaded once before the first op), and each recomputation's
    segment landing on the op it runs before (its compute, weights and SRAM traffic; it
    runs as one kernel there, dispatched with that op)."""
    mac_s, vector_s, util = compute_seconds(work, rates)
    overhead = overhead_seconds(work.dispatched, work.n_ops, rates)
    macs, vector_ops = work.macs.copy(), work.vector_ops.copy()
    resident_ops = schedule.resident_ops
    weight_reads = weight_dram_bytes(work, share, preloaded, resident_ops)
    if not preloaded and work.n_ops:  # held inputs too are loaded once, by the first call
        weight_reads[0] += schedule.held_input_bytes(work)
    streams = streamed_weight_bytes(work, share, resident_ops)
    sram = work.sram_bytes.astype(np.float64)
    recomputed = 0
    base_mac_s, base_vector_s, base_sram = mac_s, vector_s, sram.copy()
    mac_s, vector_s = mac_s.copy(), vector_s.copy()
    for r in schedule.recompute:  # segments cost what their ops cost in the model itself
        if not r.segment:
            continue
        seg, at = np.array(r.segment), r.at
        mac_s[at] += base_mac_s[seg].sum()
        vector_s[at] += base_vector_s[seg].sum()
        macs[at] += work.macs[seg].sum()
        vector_ops[at] += work.vector_ops[seg].sum()
        weight_reads[at] += streams[seg].sum()
        sram[at] += base_sram[seg].sum()
        recomputed += int(work.macs[seg].sum())
    dram = moved.dram_bytes.astype(np.float64)
    if has_dram:
        dram += weight_reads
    else:  # an on-chip-only chip: inputs arrive over the host link, not DRAM
        dram[:] = 0
    return Demand(mac_s, vector_s, macs, vector_ops, dram, sram, overhead, util, recomputed)


@gc_paused()
def simulate(
    work: OpWorkload,
    spec: HardwareSpec,
    precision: str,
    pins: Sequence[Pin] = (),
    schedule: Schedule | None = None,
    warm: bool = False,
) -> Simulation:
    """Cost `work` on `spec` with the MAC array at `precision` (see the module docstring).

    Without `schedule`, the default Belady schedule is used, with `pins` (a baseline's
    decisions on long-lived storages) respected; a plan passes its own schedule. `warm`:
    a later call of a phase, whose weights held across calls are on chip already.
    """
    work = compiled(work, spec)
    if precision not in spec.macs_per_cycle:
        raise EdgewiseError(
            f"'{spec.name}' has no {precision} MACs (it supports: {', '.join(spec.macs_per_cycle)})"
        )
    rates = Rates.of(spec, precision)
    has_dram = spec.dram_bytes > 0
    capacity, resident = activation_capacity(work, spec)
    share = streamed_share(work, spec)
    if schedule is None:
        schedule = belady(work, capacity, pins)
    elif schedule.capacity_bytes > capacity:
        raise EdgewiseError(
            f"the schedule was made for {schedule.capacity_bytes} bytes of activation SRAM, "
            f"'{spec.name}' leaves {capacity}: plan again for this spec"
        )
    if schedule.resident_ops is not None and schedule.resident_ops.any() and share < 1:
        raise EdgewiseError(
            f"'{spec.name}' keeps weights on chip itself (weights_resident): a plan that "
            "keeps layers' weights is for a spec that streams them"
        )
    moved = traffic(work, schedule)
    off_chip = moved.spill_bytes.any() or moved.stream_bytes.any() or schedule.tiled.any()
    if not has_dram and off_chip:
        raise EdgewiseError(
            f"the activations do not fit in '{spec.name}' SRAM beside the weights and it has "
            "no DRAM to spill to"
        )
    preloaded = spec.weights_preloaded or warm
    need = demand(work, rates, schedule, moved, share, has_dram, preloaded)
    cost: OpCost = price(
        need.mac_s,
        need.vector_s,
        need.macs,
        need.vector_ops,
        need.dram_bytes,
        need.sram_bytes,
        need.overhead_s,
        rates,
    )
    peak = rates.peak_macs_per_s
    latency = cost.latency_s
    energy = cost.energy_j
    total_latency = float(latency.sum())
    total_macs = int(need.macs.sum())
    loaded = loaded_weight_bytes(work, share, schedule.resident_ops)
    weights = work.total_weight_bytes - (loaded if preloaded else 0.0)
    held_in = schedule.held_input_bytes(work)
    inputs = work.input_bytes - (held_in if preloaded else 0)
    compulsory = weights + inputs + work.output_bytes
    floor = max(  # the model's own MACs: recomputation is not compulsory work
        (total_macs - need.recomputed_macs) / peak,
        compulsory / spec.dram_bandwidth_bytes_per_s if has_dram else 0.0,
    )
    totals = Totals(
        latency_s=total_latency,
        energy_j=float(energy.sum()),
        mac_energy_j=float(cost.mac_j.sum()),
        vector_energy_j=float(cost.vector_j.sum()),
        sram_energy_j=float(cost.sram_j.sum()),
        dram_energy_j=float(cost.dram_j.sum()),
        static_energy_j=float(cost.static_j.sum()),
        dram_bytes=round(float(need.dram_bytes.sum())),
        dram_weight_bytes=round(
            float(need.dram_bytes.sum())
            - float(moved.dram_bytes.sum())
            - (0 if preloaded else held_in)
        )
        if has_dram
        else 0,
        dram_refill_bytes=int(moved.refill_bytes.sum()) + (0 if preloaded else held_in)
        if has_dram
        else 0,
        dram_stream_bytes=int(moved.stream_bytes.sum()) if has_dram else 0,
        dram_output_bytes=int(moved.output_bytes.sum()) if has_dram else 0,
        dram_long_lived_bytes=moved.long_lived_bytes if has_dram else 0,
        dram_input_bytes=moved.input_bytes + (0 if preloaded else held_in) if has_dram else 0,
        dram_scores_bytes=int((2 * work.scores_bytes[schedule.tiled]).sum()) if has_dram else 0,
        sram_bytes=round(float(need.sram_bytes.sum())),
        macs=total_macs,
        compute_bound_s=float(latency[cost.bound == 0].sum()),
        dram_bound_s=float(latency[cost.bound == 1].sum()),
        sram_bound_s=float(latency[cost.bound == 2].sum()),
        overhead_bound_s=float(latency[cost.bound == 3].sum()),
        overhead_s=float(cost.overhead_s.sum()),
        dispatched_ops=int(work.dispatched.sum()) if work.dispatched is not None else 0,
        mac_utilization=total_macs / (peak * total_latency) if total_latency else 0.0,
        floor_s=floor,
        floor_ratio=total_latency / floor if floor else float("inf"),
        peak_sram_bytes=int(moved.occupancy_bytes.max(initial=0))
        + resident_weight_bytes(work, spec),
        spilled_bytes=int(moved.spill_bytes.sum()),
        tiled_ops=int(schedule.tiled.sum()),
        recomputed_macs=need.recomputed_macs,
        feasible=moved.feasible,
    )
    return Simulation(
        spec_name=spec.name,
        precision=precision,
        work=work,
        schedule=schedule,
        traffic=moved,
        weights_resident=resident,
        mac_s=need.mac_s,
        vector_s=need.vector_s,
        dram_s=cost.dram_s,
        sram_s=cost.sram_s,
        overhead_s=cost.overhead_s,
        latency_s=latency,
        dram_bytes=np.round(need.dram_bytes).astype(np.int64),
        sram_bytes=np.round(need.sram_bytes).astype(np.int64),
        energy_j=energy,
        utilization=np.where(latency > 0, need.mac_s / np.maximum(latency, 1e-30), 0.0)
        * need.utilization,
        bound=cost.bound,
        totals=totals,
    )
