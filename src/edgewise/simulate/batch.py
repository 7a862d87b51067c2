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
from edgewise.simulate.cost import Rates, compute_seconds, overhead_seconds, price
from edgewise.simulate.schedule import Traffic, belady, traffic
from edgewise.simulate.simulator import activation_capacity, streamed_share
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
