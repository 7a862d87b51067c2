"""The same cost model as `simulator.simulate`, evaluated for many specs at once.

Sweeps ask thousands of "what if" questions of one workload. Everything but the SRAM
schedule is array arithmetic over (specs x ops); the schedule depends on the spec only
through the SRAM bytes left for activations, so it is computed once per distinct
capacity and shared. Results equal `simulate` spec by spec (tests check it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.hardware.spec import HardwareSpec
from edgewise.simulate.schedule import SramSchedule, furthest_next_use
from edgewise.simulate.simulator import PJ, mapping_utilization, weights_stay_resident
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
    missing = [s.name for s in specs if precision not in s.macs_per_cycle]
    if missing:
        raise EdgewiseError(f"no {precision} MACs in: {', '.join(sorted(set(missing)))}")
    if any(s.dram_bytes == 0 for s in specs):
        raise EdgewiseError(
            "simulate_many needs specs with DRAM; simulate on-chip-only specs one by one"
        )

    def column(get) -> np.ndarray:  # type: ignore[no-untyped-def]
        return np.array([get(s) for s in specs], dtype=np.float64)[:, None]

    resident = np.array([weights_stay_resident(work, s) for s in specs])
    capacity = np.array(
        [
            s.sram_bytes - (work.total_weight_bytes if r else 0)
            for s, r in zip(specs, resident, strict=True)
        ]
    )
    if (capacity <= 0).any():
        raise EdgewiseError("some specs keep weights resident in an SRAM smaller than the weights")
    schedules: dict[int, SramSchedule] = {}
    for c in np.unique(capacity):
        schedules[int(c)] = furthest_next_use(work, int(c))

    mac_ops = np.flatnonzero(work.macs)
    k = np.maximum(work.reduce_dim[mac_ops], 1).astype(np.float64)
    n = np.maximum(work.out_dim[mac_ops], 1).astype(np.float64)
    sram_per_op = (
        work.act_read_bytes + work.act_write_bytes + work.weight_bytes + work.scores_bytes
    ).astype(np.float64)
    rows = column(lambda s: s.mac_array.rows)
    cols = column(lambda s: s.mac_array.cols)
    peak = column(lambda s: s.macs_per_cycle[precision] * s.clock_hz)
    vector_rate = column(lambda s: s.vector_ops_per_cycle * s.clock_hz)
    dram_bw = column(lambda s: s.dram_bandwidth_bytes_per_s)
    sram_bw = column(lambda s: s.sram_bandwidth_bytes_per_s)
    overlap = column(lambda s: s.overlap_compute_dma).astype(bool)
    latency = np.empty(len(specs))
    dram_total = np.empty(len(specs))
    for start in range(0, len(specs), CHUNK):
        part = slice(start, min(start + CHUNK, len(specs)))
        r, c = rows[part], cols[part]
        util = mapping_utilization(k, n, r, c)
        compute = work.vector_ops / vector_rate[part]  # (specs, ops)
        compute[:, mac_ops] += work.macs[mac_ops] / (peak[part] * util)
        dram = np.stack([schedules[int(x)].dram_bytes for x in capacity[part]]).astype(np.float64)
        streamed = ~resident[part]
        dram[streamed] += work.weight_bytes
        dram[~streamed, 0] += work.total_weight_bytes
        dram[:, -1] += work.output_bytes
        dram_s = dram / dram_bw[part]
        per_op = np.where(overlap[part], np.maximum(compute, dram_s), compute + dram_s)
        latency[part] = np.maximum(per_op, sram_per_op / sram_bw[part]).sum(axis=1)
        dram_total[part] = dram.sum(axis=1)
    macs = float(work.macs.sum())
    peak_all = peak[:, 0]
    energy = (
        macs * column(lambda s: s.energy_pj_per_mac[precision])[:, 0] * PJ
        + float(work.vector_ops.sum()) * column(lambda s: s.vector_energy_pj_per_op)[:, 0] * PJ
        + float(sram_per_op.sum()) * column(lambda s: s.sram_energy_pj_per_byte)[:, 0] * PJ
        + dram_total * column(lambda s: s.dram_energy_pj_per_byte)[:, 0] * PJ
        + latency * column(lambda s: s.static_power_w)[:, 0]
    )
    compulsory = work.total_weight_bytes + work.input_bytes + work.output_bytes
    floor = np.maximum(macs / peak_all, compulsory / dram_bw[:, 0])
    return BatchResult(
        latency_s=latency,
        energy_j=energy,
        dram_bytes=dram_total,
        mac_utilization=macs / (peak_all * latency),
        floor_s=floor,
        schedules_computed=len(schedules),
    )
