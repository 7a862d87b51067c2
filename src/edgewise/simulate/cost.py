"""The one cost function: what an op costs on an accelerator, given what it must do.

Every hardware figure edgewise reports prices through `price`: the simulator, the
many-spec sweep and the planner's MILP coefficients. Per op (numpy arrays over ops, and
over specs when the rates are columns of shape (specs, 1)):
- MAC time = MACs / (peak MAC/s at the compute precision x utilization), the
  utilization being the fraction of the rows x cols array a K x N product fills after
  padding, K/(ceil(K/rows) rows) x N/(ceil(N/cols) cols), times the spec's sustained
  `mac_efficiency`; a depthwise conv runs at `depthwise_efficiency` of peak instead, and a
  product of two activations (no weights: attention's QK^T and AV) at its mapping times
  `activation_matmul_efficiency`, when the spec gives them;
- vector time = vector ops / (vector ops per cycle x clock), 0 for an op fused into an
  epilogue (`compile`); compute = MAC + vector time;
- DRAM time = DRAM bytes / DRAM bandwidth; SRAM time = SRAM bytes / SRAM bandwidth;
- overhead = `op_overhead_s` for an op dispatched as its own kernel (`compile`), else 0;
- latency = max(compute, DRAM, SRAM) + overhead when compute and DMA overlap, else
  max(compute + DRAM, SRAM) + overhead; the largest term is the op's bound;
- a `pipelined` spec (a dataflow chip streaming frames through layers that each hold a
  share of the array) costs a frame at steady state: the busiest resource over the whole
  model, max(sum compute, sum DRAM, sum SRAM); each op's latency is its time on that
  resource (so the ops still add up to the frame) and the per-op overhead, a latency
  through the pipeline rather than a cost per frame, is not counted;
- energy = MACs x e_mac + vector ops x e_vector + SRAM bytes x e_sram + DRAM bytes x e_dram
  + static power x latency.
What the DRAM and SRAM bytes are (weights streamed, spills, refills, tiled streams,
recomputations) is the schedule's business (`schedule.traffic`); this module only prices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgewise.hardware.spec import HardwareSpec
from edgewise.simulate.workload import OpWorkload

PJ = 1e-12
BOUNDS = ("compute", "dram", "sram", "overhead", "none")  # "none": costs nothing (a view)


@dataclass(frozen=True)
class Rates:
    """The figures of one spec (floats) or many (columns of shape (specs, 1)); typed Any
    because numpy broadcasts both the same way."""

    peak_macs_per_s: Any
    vector_ops_per_s: Any
    dram_bytes_per_s: Any  # 0: no DRAM
    sram_bytes_per_s: Any
    mac_j: Any
    vector_j: Any
    sram_j_per_byte: Any
    dram_j_per_byte: Any
    static_w: Any
    overlap: Any
    rows: Any
    cols: Any
    mac_efficiency: Any
    depthwise_efficiency: Any  # 0: a depthwise conv is mapped like any other
    activation_matmul_efficiency: Any  # 0: a product of two activations is mapped as any
    op_overhead_s: Any
    pipelined: Any

    @classmethod
    def of(cls, spec: HardwareSpec, precision: str) -> Rates:
        return cls(
            peak_macs_per_s=spec.peak_macs_per_s(precision),  # type: ignore[arg-type]
            vector_ops_per_s=spec.vector_ops_per_cycle * spec.clock_hz,
            dram_bytes_per_s=spec.dram_bandwidth_bytes_per_s if spec.dram_bytes else 0.0,
            sram_bytes_per_s=spec.sram_bandwidth_bytes_per_s,
            mac_j=spec.energy_pj_per_mac[precision] * PJ,  # type: ignore[index]
            vector_j=spec.vector_energy_pj_per_op * PJ,
            sram_j_per_byte=spec.sram_energy_pj_per_byte * PJ,
            dram_j_per_byte=spec.dram_energy_pj_per_byte * PJ,
            static_w=spec.static_power_w,
            overlap=spec.overlap_compute_dma,
            rows=spec.mac_array.rows,
            cols=spec.mac_array.cols,
            mac_efficiency=spec.mac_efficiency,
            depthwise_efficiency=spec.depthwise_efficiency or 0.0,
            activation_matmul_efficiency=spec.activation_matmul_efficiency or 0.0,
            op_overhead_s=spec.op_overhead_s,
            pipelined=spec.pipelined,
        )

    @classmethod
    def stacked(cls, specs: Sequence[HardwareSpec], precision: str) -> Rates:
        """Many specs as (specs, 1) columns, for broadcasting against (ops,) arrays."""
        each = [cls.of(s, precision) for s in specs]

        def col(name: str, dtype: type = np.float64) -> np.ndarray:
            return np.array([getattr(r, name) for r in each], dtype=dtype)[:, None]

        return cls(
            **{f: col(f) for f in cls.__dataclass_fields__ if f not in ("overlap", "pipelined")},
            overlap=col("overlap", bool),
            pipelined=col("pipelined", bool),
        )


def mapping_utilization(
    k: np.ndarray, n: np.ndarray, rows: int | np.ndarray, cols: int | np.ndarray
) -> np.ndarray:
    """Fraction of the array a K x N product fills after padding K to rows, N to cols."""
    k = np.maximum(k, 1)
    n = np.maximum(n, 1)
    return (k / (np.ceil(k / rows) * rows)) * (n / (np.ceil(n / cols) * cols))


def compute_seconds(work: OpWorkload, rates: Rates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(MAC seconds, vector seconds, utilization) per op. An op fused into an epilogue
    (`compile`) takes no vector time: the epilogue's own hardware runs it as the array's
    results stream out (its vector ops still count, and cost energy)."""
    macs = work.macs
    mapped = mapping_utilization(work.reduce_dim, work.out_dim, rates.rows, rates.cols)
    util = mapped * rates.mac_efficiency
    dw = work.depthwise & (rates.depthwise_efficiency > 0)
    util = np.where(dw, rates.depthwise_efficiency, util)
    dynamic = (macs > 0) & (work.weight_bytes == 0) & (rates.activation_matmul_efficiency > 0)
    util = np.where(dynamic, mapped * rates.activation_matmul_efficiency, util)
    util = np.where(macs > 0, util, 1.0)
    vector_s = work.vector_ops / rates.vector_ops_per_s
    if work.epilogue is not None:
        vector_s = np.where(work.epilogue, 0.0, vector_s)
    return macs / (rates.peak_macs_per_s * util), vector_s, util


def dram_seconds(dram_bytes: np.ndarray, rates: Rates) -> np.ndarray:
    bw = rates.dram_bytes_per_s
    if np.ndim(bw) == 0:
        return dram_bytes / bw if bw else np.zeros_like(dram_bytes, dtype=np.float64)
    shape = np.broadcast_shapes(np.shape(dram_bytes), np.shape(bw))
    return np.divide(dram_bytes, bw, out=np.zeros(shape), where=bw > 0)


def latency_seconds(
    compute_s: np.ndarray, dram_s: np.ndarray, sram_s: np.ndarray, overlap: np.ndarray | bool
) -> np.ndarray:
    """max(compute, DRAM, SRAM) with compute/DMA overlap, else max(compute + DRAM, SRAM)
    (the overhead is added on top, by `price`)."""
    return np.where(
        overlap,
        np.maximum(np.maximum(compute_s, dram_s), sram_s),
        np.maximum(compute_s + dram_s, sram_s),
    )


def overhead_seconds(dispatched: np.ndarray | None, n_ops: int, rates: Rates) -> np.ndarray:
    """Per op, the runtime's fixed cost of dispatching it (0 for views and fused ops)."""
    if dispatched is None:
        return np.zeros(n_ops)
    return dispatched * np.asarray(rates.op_overhead_s, dtype=np.float64)


@dataclass(frozen=True)
class OpCost:
    """Per-op times, bound and energy split (arrays shaped like the inputs)."""

    mac_s: np.ndarray
    vector_s: np.ndarray
    dram_s: np.ndarray
    sram_s: np.ndarray
    overhead_s: np.ndarray
    latency_s: np.ndarray
    bound: np.ndarray  # index into BOUNDS
    mac_j: Any
    vector_j: Any
    sram_j: np.ndarray
    dram_j: np.ndarray
    static_j: np.ndarray

    @property
    def energy_j(self) -> np.ndarray:
        return self.mac_j + self.vector_j + self.sram_j + self.dram_j + self.static_j


def price(
    mac_s: np.ndarray,
    vector_s: np.ndarray,
    macs: np.ndarray,
    vector_ops: np.ndarray,
    dram_bytes: np.ndarray,
    sram_bytes: np.ndarray,
    overhead_s: np.ndarray,
    rates: Rates,
) -> OpCost:
    """Time and energy of ops that run `mac_s` + `vector_s` of compute, move the bytes
    and pay `overhead_s` (`overhead_seconds`)."""
    dram_s = dram_seconds(dram_bytes, rates)
    sram_s = sram_bytes / rates.sram_bytes_per_s
    compute_s = mac_s + vector_s
    latency = latency_seconds(compute_s, dram_s, sram_s, rates.overlap) + overhead_s
    terms = np.stack(np.broadcast_arrays(compute_s, dram_s, sram_s, overhead_s))
    bound = np.where(latency > 0, np.argmax(terms, axis=0), 4)
    if np.any(rates.pipelined):
        overhead_s = np.where(rates.pipelined, 0.0, overhead_s)
        busiest = np.argmax(terms[:3].sum(axis=-1, keepdims=True), axis=0)  # per spec
        on_it = np.take_along_axis(terms[:3], busiest[None], axis=0)[0]
        latency = np.where(rates.pipelined, on_it, latency)
        bound = np.where(rates.pipelined, np.where(on_it > 0, busiest, 4), bound)
    return OpCost(
        mac_s=mac_s,
        vector_s=vector_s,
        dram_s=dram_s,
        sram_s=sram_s,
        overhead_s=np.broadcast_to(overhead_s, np.shape(latency)).copy(),
        latency_s=latency,
        bound=bound,
        mac_j=macs * rates.mac_j,
        vector_j=vector_ops * rates.vector_j,
        sram_j=sram_bytes * rates.sram_j_per_byte,
        dram_j=dram_bytes * rates.dram_j_per_byte,
        static_j=latency * rates.static_w,
    )
