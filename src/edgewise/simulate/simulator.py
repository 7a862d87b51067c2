"""The cost model: each op's time, traffic and energy on a described accelerator.

Per op (all numpy arrays over ops):
- MAC time = MACs / (peak MAC/s at the compute precision x mapping utilization), where
  utilization is the fraction of the rows x cols array the op's K x N products fill
  after padding: K/(ceil(K/rows) rows) x N/(ceil(N/cols) cols);
- vector time = vector ops / (vector ops per cycle x clock);
- DRAM bytes = streamed weights (unless resident) + spills + refills + tiled streams, plus
  the model inputs on first read and the outputs on the last op; DRAM time = bytes / BW;
- SRAM bytes = every activation read and write, every weight read, internal scores;
- latency = max(MAC + vector time, DRAM time, SRAM time) when compute and DMA overlap,
  MAC + vector + DRAM time otherwise (never below SRAM time); the largest term is the
  op's bound;
- energy = MACs x e_mac + vector ops x e_vector + SRAM bytes x e_sram + DRAM bytes x e_dram
  + static power x latency.
The physical floor is max(total MACs / peak MAC/s, compulsory DRAM bytes / DRAM BW), the
compulsory bytes being every weight once plus the inputs and outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.hardware.spec import HardwareSpec
from edgewise.simulate.schedule import GapDecision, SramSchedule, furthest_next_use
from edgewise.simulate.workload import OpWorkload

BOUNDS = ("compute", "dram", "sram", "none")  # "none": the op costs nothing (a view)
PJ = 1e-12


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
    sram_bytes: int
    macs: int
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
    schedule: SramSchedule
    weights_resident: bool
    mac_s: np.ndarray
    vector_s: np.ndarray
    dram_s: np.ndarray
    sram_s: np.ndarray
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


def group_costs(
    sim: Simulation, keys: tuple[str, ...], peak_macs_per_s: float
) -> tuple[LayerCost, ...]:
    """Sum per-op costs into rows keyed by `keys` (one per op), in order of first op."""
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    rows = []
    for name, idx in groups.items():
        ix = np.array(idx)
        latency = float(sim.latency_s[ix].sum())
        macs = int(sim.work.macs[ix].sum())
        time_by_bound = np.bincount(sim.bound[ix], weights=sim.latency_s[ix], minlength=4)
        rows.append(
            LayerCost(
                name=name,
                op_count=len(idx),
                latency_s=latency,
                energy_j=float(sim.energy_j[ix].sum()),
                dram_bytes=int(sim.dram_bytes[ix].sum()),
                sram_bytes=int(sim.sram_bytes[ix].sum()),
                macs=macs,
                mac_utilization=macs / (peak_macs_per_s * latency) if latency else 0.0,
                bound=BOUNDS[int(np.argmax(time_by_bound[:3]))] if latency else "none",
                tiled_ops=int(sim.schedule.tiled[ix].sum()),
            )
        )
    return tuple(rows)


def mapping_utilization(
    k: np.ndarray, n: np.ndarray, rows: int | np.ndarray, cols: int | np.ndarray
) -> np.ndarray:
    """Fraction of the array a K x N product fills after padding K to rows, N to cols."""
    k = np.maximum(k, 1)
    n = np.maximum(n, 1)
    return (k / (np.ceil(k / rows) * rows)) * (n / (np.ceil(n / cols) * cols))


def weights_stay_resident(work: OpWorkload, spec: HardwareSpec) -> bool:
    """Resident when the spec keeps weights on chip (or has no DRAM) and all of them fit."""
    wants = spec.weights_resident or spec.dram_bytes == 0
    return wants and work.total_weight_bytes < spec.sram_bytes


def simulate(
    work: OpWorkload,
    spec: HardwareSpec,
    precision: str,
    decisions: Sequence[GapDecision] = (),
) -> Simulation:
    """Cost `work` on `spec` with the MAC array at `precision` (see the module docstring).

    `decisions` (from a plan) pin long-lived tensors; a recomputation's ops are costed on
    the op it lands on, so it fills that op's idle compute when the op is memory-bound.
    """
    if precision not in spec.macs_per_cycle:
        raise EdgewiseError(
            f"'{spec.name}' has no {precision} MACs (it supports: {', '.join(spec.macs_per_cycle)})"
        )
    peak = spec.peak_macs_per_s(precision)  # type: ignore[arg-type]
    has_dram = spec.dram_bytes > 0
    resident = weights_stay_resident(work, spec)
    capacity = spec.sram_bytes - (work.total_weight_bytes if resident else 0)
    if capacity <= 0 or (not has_dram and not resident):
        raise EdgewiseError(
            f"the weights ({work.total_weight_bytes / 2**20:.1f} MiB) do not fit in "
            f"'{spec.name}' SRAM ({spec.sram_bytes / 2**20:.1f} MiB)"
            + ("" if has_dram else " and it has no DRAM to stream them from")
        )
    schedule = furthest_next_use(work, capacity, decisions)
    if not has_dram and (schedule.spill_bytes.any() or schedule.tiled.any()):
        raise EdgewiseError(
            f"the activations do not fit in '{spec.name}' SRAM beside the weights and it has "
            "no DRAM to spill to"
        )
    util = np.where(
        work.macs > 0,
        mapping_utilization(
            work.reduce_dim, work.out_dim, spec.mac_array.rows, spec.mac_array.cols
        ),
        1.0,
    )
    mac_s = work.macs / (peak * util)
    vector_s = work.vector_ops / (spec.vector_ops_per_cycle * spec.clock_hz)
    macs, vector_ops = work.macs.copy(), work.vector_ops.copy()
    weight_reads = work.weight_bytes.astype(np.float64)
    sram = (
        work.act_read_bytes + work.act_write_bytes + work.weight_bytes + work.scores_bytes
    ).astype(np.float64)
    recomputed_macs = 0
    for d in decisions:  # re-run ops land on their host op, in time, traffic and energy
        if d.action != "recompute" or not d.segment:
            continue
        seg, at = np.array(d.segment), d.recompute_at
        mac_s[at] += mac_s[seg].sum()
        vector_s[at] += vector_s[seg].sum()
        macs[at] += work.macs[seg].sum()
        vector_ops[at] += work.vector_ops[seg].sum()
        weight_reads[at] += work.weight_bytes[seg].sum()
        sram[at] += sram[seg].sum()
        recomputed_macs += int(work.macs[seg].sum())
    # streamed weights cross DRAM at every op that reads them; resident ones once, loaded
    # before the first op. Inputs are read by the schedule; outputs leave after the last op.
    dram = schedule.dram_bytes.astype(np.float64)
    if not has_dram:  # an on-chip-only chip: inputs arrive over the host link, not DRAM
        dram[:] = 0
    elif work.n_ops:
        if resident:
            dram[0] += work.total_weight_bytes
        else:
            dram += weight_reads
        dram[-1] += work.output_bytes
    dram_s = dram / spec.dram_bandwidth_bytes_per_s if has_dram else np.zeros(work.n_ops)
    sram_s = sram / spec.sram_bandwidth_bytes_per_s
    compute_s = mac_s + vector_s
    if spec.overlap_compute_dma:
        latency = np.maximum(np.maximum(compute_s, dram_s), sram_s)
    else:
        latency = np.maximum(compute_s + dram_s, sram_s)
    bound = np.where(latency > 0, np.argmax(np.stack([compute_s, dram_s, sram_s]), axis=0), 3)
    e_mac = macs * spec.energy_pj_per_mac[precision] * PJ  # type: ignore[index]
    e_vec = vector_ops * spec.vector_energy_pj_per_op * PJ
    e_sram = sram * spec.sram_energy_pj_per_byte * PJ
    e_dram = dram * spec.dram_energy_pj_per_byte * PJ
    e_static = latency * spec.static_power_w
    energy = e_mac + e_vec + e_sram + e_dram + e_static
    total_latency = float(latency.sum())
    total_macs = int(macs.sum())
    compulsory = work.total_weight_bytes + work.input_bytes + work.output_bytes
    floor = max(  # the model's own MACs: recomputation is not compulsory work
        (total_macs - recomputed_macs) / peak,
        compulsory / spec.dram_bandwidth_bytes_per_s if has_dram else 0.0,
    )
    totals = Totals(
        latency_s=total_latency,
        energy_j=float(energy.sum()),
        mac_energy_j=float(e_mac.sum()),
        vector_energy_j=float(e_vec.sum()),
        sram_energy_j=float(e_sram.sum()),
        dram_energy_j=float(e_dram.sum()),
        static_energy_j=float(e_static.sum()),
        dram_bytes=int(dram.sum()),
        sram_bytes=int(sram.sum()),
        macs=total_macs,
        mac_utilization=total_macs / (peak * total_latency) if total_latency else 0.0,
        floor_s=floor,
        floor_ratio=total_latency / floor if floor else float("inf"),
        peak_sram_bytes=schedule.peak_sram_bytes + (work.total_weight_bytes if resident else 0),
        spilled_bytes=int(schedule.spill_bytes.sum()),
        tiled_ops=int(schedule.tiled.sum()),
        recomputed_macs=recomputed_macs,
        feasible=schedule.feasible,
    )
    return Simulation(
        spec_name=spec.name,
        precision=precision,
        work=work,
        schedule=schedule,
        weights_resident=resident,
        mac_s=mac_s,
        vector_s=vector_s,
        dram_s=dram_s,
        sram_s=sram_s,
        latency_s=latency,
        dram_bytes=dram.astype(np.int64),
        sram_bytes=sram.astype(np.int64),
        energy_j=energy,
        utilization=np.where(latency > 0, mac_s / np.maximum(latency, 1e-30), 0.0) * util,
        bound=bound,
        totals=totals,
    )
