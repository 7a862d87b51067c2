"""The planning problem: which long-lived tensors to keep on chip, spill, or recompute.

Each long-lived tensor (a U-Net skip) has a *gap*: the longest stretch between two of
its uses (usually from the block that makes it to the up-block that reads it). Across
the gap it is
- kept: resident in SRAM for the whole gap;
- spilled: written to DRAM at the gap's start and read back at its end (2 x bytes);
- recomputed: dropped at the gap's start and rebuilt at a chosen op `j` inside the gap
  by re-running the ops that made it from its *sources* (the nearest long-lived tensors
  or model inputs it was computed from), re-reading their weights, then held from `j`
  to the gap's end. Placing `j` on a memory-bound op lets the recomputation fill compute
  that would idle there: the overlap the cost model rewards.

The problem carries everything the solvers need as plain numbers taken from a baseline
simulation on the spec: per-op compute and DRAM time, the bytes of ordinary activations
live at each op, and per-tensor recompute costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgewise.analysis.memory import memory_timeline
from edgewise.hardware.spec import HardwareSpec
from edgewise.ir.graph import Graph, TensorKind
from edgewise.simulate.simulator import Simulation
from edgewise.simulate.workload import OpWorkload

MAX_PLACES = 6  # candidate recompute positions per tensor besides the gap's end


@dataclass(frozen=True, slots=True)
class LongLived:
    """One decision: a long-lived storage and what each choice would cost."""

    storage_id: int
    name: str  # producer scope, for people
    nbytes: int
    gap_start: int  # last op that uses it before the gap (or its producer)
    gap_end: int  # first op that uses it after the gap
    segment: tuple[int, ...]  # ops that recompute it from its sources
    sources: tuple[int, ...]  # storage ids of long-lived sources (must not be recomputed)
    input_sources: tuple[int, ...]  # model inputs (and other sources) read from DRAM
    held_inputs: tuple[tuple[int, int], ...]  # (last use, bytes): kept until the rebuild
    source_bytes: int  # bytes of sources that must be read from DRAM (model inputs)
    recompute_s: float  # compute time of the segment on the spec
    recompute_macs: int
    recompute_weight_bytes: int  # weights the segment re-reads from DRAM
    recompute_sram_bytes: int  # SRAM traffic of the segment (activations and weights)
    recompute_vector_energy_j: float  # its vector ops' energy (MACs are in recompute_macs)
    places: tuple[int, ...]  # candidate ops to recompute at (the last one is gap_end)
    ready_op: int  # recomputation may land after this op: every source exists by then


@dataclass(frozen=True, slots=True)
class WeightLayer:
    """A layer whose weight precision is a decision (weight-only quantization: MACs stay at
    the activation precision, so only weight bytes change)."""

    name: str  # module scope
    ops: tuple[int, ...]  # ops that read its weights
    weight_bytes: tuple[float, ...]  # per op, at the base precision
    options: tuple[str, ...]  # precisions allowed (floors and sensitivity applied), base first
    errors: tuple[float, ...]  # output error of each option (sensitivity file; base = 0)


@dataclass(frozen=True, slots=True)
class AttentionOp:
    """An attention op that may hold its scores (materialized) or stream tiles (tiled)."""

    op: int
    materialized_sram_bytes: float  # scores and softmax written and read through SRAM
    materialized_dram_bytes: float  # ... through DRAM when they do not fit beside the operands
    tiled_sram_bytes: float  # K and V re-read once per query tile (FlashAttention)


@dataclass(frozen=True)
class PlanProblem:
    model: str
    spec: HardwareSpec
    precision: str
    capacity_bytes: int  # SRAM for activations
    compute_s: np.ndarray  # per op, baseline (MAC + vector time)
    dram_s: np.ndarray  # per op, baseline DRAM time without long-lived traffic
    sram_s: np.ndarray  # per op
    dram_bytes: np.ndarray  # per op, baseline DRAM bytes without long-lived traffic
    working_bytes: (
        np.ndarray
    )  # per op, operands that must be on chip (long-lived ones in their gap excluded)
    constrained: np.ndarray  # per op: bool, SRAM capacity binds here (not a tiled op)
    tensors: tuple[LongLived, ...]
    dram_bandwidth: float
    weights_resident: bool  # then a recomputation re-reads its weights from SRAM, not DRAM
    fixed_energy_j: float  # MAC, vector and SRAM energy of the model itself (no decision moves it)
    energy_pj_per_dram_byte: float
    energy_pj_per_mac: float
    static_power_w: float
    sram_bandwidth: float = 1.0
    energy_pj_per_sram_byte: float = 0.0
    layers: tuple[WeightLayer, ...] = ()  # precision decisions (empty unless allowed)
    bits_ratio: dict[str, float] | None = None  # option -> its bytes / base bytes
    accuracy_budget: float | None = None  # sum of chosen options' errors may not exceed it
    attention: tuple[AttentionOp, ...] = ()  # tiling decisions (empty unless allowed)


def _segment(
    graph: Graph, storage_id: int, stop: set[int], limit: int
) -> tuple[set[int], set[int]]:
    """Ops that (re)compute a storage as it is at op `limit`, walking back until
    long-lived or input storages: every op that wrote into a storage it needs (in-place
    ops included). Returns (ops, source storages). Weights are re-read, not recomputed."""
    producers: dict[int, list[int]] = {}
    for t in graph.tensors.values():
        if t.producer is not None and t.producer <= limit:
            producers.setdefault(t.storage_id, []).append(t.producer)
    ops: set[int] = set()
    sources: set[int] = set()
    frontier = [storage_id]
    seen: set[int] = set()
    while frontier:
        sid = frontier.pop()
        if sid in seen:
            continue
        seen.add(sid)
        if sid not in producers:
            sources.add(sid)
            continue
        for op_index in producers[sid]:
            ops.add(op_index)
            for tid in graph.ops[op_index].inputs:
                t = graph.tensors[tid]
                if t.kind in (TensorKind.PARAMETER, TensorKind.BUFFER) or t.storage_id == sid:
                    continue
                if t.storage_id in stop and t.storage_id != storage_id:
                    sources.add(t.storage_id)
                else:
                    frontier.append(t.storage_id)
    return ops, sources


def plan_problem(
    graph: Graph,
    work: OpWorkload,
    baseline: Simulation,
    spec: HardwareSpec,
    long_lived_ops: int = 100,
) -> PlanProblem:
    """Build the problem from a graph, its workload and a baseline simulation."""
    dtype = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16"}.get(work.activation_precision, "int8")
    tl = memory_timeline(graph, dtype=dtype, long_lived_ops=long_lived_ops)
    capacity = baseline.schedule.capacity_bytes
    uses = {s.id: s.uses for s in work.storages}
    size = {s.id: s.nbytes for s in work.storages}
    first = {s.id: s.first_op for s in work.storages}
    ids = [r.storage_id for r in tl.long_lived_table if r.storage_id in size]
    stop = set(ids) | {s.id for s in work.storages if s.is_input}
    compute = baseline.mac_s + baseline.vector_s
    slack = np.maximum(np.maximum(baseline.dram_s, baseline.sram_s) - compute, 0.0)
    sram_bytes = work.act_read_bytes + work.act_write_bytes + work.weight_bytes + work.scores_bytes
    tensors = []
    for sid in ids:
        times = (first[sid], *uses[sid])
        gaps = np.diff(times)
        if not len(gaps) or gaps.max() <= 1:  # nothing to decide: no stretch without a use
            continue
        k = int(np.argmax(gaps))
        gap_start, gap_end = times[k], times[k + 1]
        seg, sources = _segment(graph, sid, stop, gap_start)
        seg_ix = np.array(sorted(seg), dtype=np.int64)
        long_sources = tuple(sorted(s for s in sources if s in ids))
        input_sources = tuple(sorted(s for s in sources if s not in ids and s in size))
        input_bytes = sum(size.get(s, 0) for s in sources if s not in ids)
        window = np.arange(gap_start + 1, gap_end)
        # the most idle ops inside the gap, after every source exists
        ready = max([first.get(s, 0) for s in long_sources] + [gap_start])
        window = window[window > ready]
        best = window[np.argsort(-slack[window])][: MAX_PLACES - 1] if len(window) else window
        places = tuple(sorted({int(j) for j in best if slack[j] > 0} | {int(gap_end)}))
        tensors.append(
            LongLived(
                storage_id=sid,
                name=graph.ops[first[sid]].scope,
                nbytes=size[sid],
                gap_start=int(gap_start),
                gap_end=int(gap_end),
                segment=tuple(int(i) for i in seg_ix),
                sources=long_sources,
                input_sources=input_sources,
                held_inputs=tuple(
                    (int(uses[s][-1]) if uses.get(s) else int(first.get(s, 0)), int(size[s]))
                    for s in input_sources
                ),
                source_bytes=int(input_bytes),
                recompute_s=float(compute[seg_ix].sum()) if len(seg_ix) else 0.0,
                recompute_macs=int(work.macs[seg_ix].sum()) if len(seg_ix) else 0,
                recompute_weight_bytes=int(work.weight_bytes[seg_ix].sum()) if len(seg_ix) else 0,
                recompute_sram_bytes=int(sram_bytes[seg_ix].sum()) if len(seg_ix) else 0,
                recompute_vector_energy_j=float(work.vector_ops[seg_ix].sum())
                * spec.vector_energy_pj_per_op
                * 1e-12,
                places=places,
                ready_op=int(ready),
            )
        )
    # an op's own operands must be on chip; everything else live may be evicted (the
    # simulator's schedule does, at a cost the plan's simulation shows)
    working = np.zeros(work.n_ops)
    ends = {(t.storage_id, t.gap_start) for t in tensors} | {
        (t.storage_id, t.gap_end) for t in tensors
    }
    for i in range(work.n_ops):
        operands = set(work.reads[i]) | set(work.writes[i])
        working[i] = sum(size[s] for s in operands if (s, i) not in ends) + work.scores_bytes[i]
    # baseline DRAM bytes without the long-lived tensors' own spills and refills
    long_ids = {t.storage_id for t in tensors}
    own = _long_lived_traffic(work, baseline, long_ids)
    dram_bytes = baseline.dram_bytes - own
    dram_s = (
        dram_bytes / spec.dram_bandwidth_bytes_per_s if spec.dram_bytes else np.zeros(work.n_ops)
    )
    t_ = baseline.totals
    return PlanProblem(
        model=graph.model,
        spec=spec,
        precision=baseline.precision,
        capacity_bytes=capacity,
        compute_s=compute,
        dram_s=dram_s,
        sram_s=baseline.sram_s,
        dram_bytes=dram_bytes.astype(np.float64),
        working_bytes=working,
        constrained=~baseline.schedule.tiled,
        tensors=tuple(tensors),
        dram_bandwidth=spec.dram_bandwidth_bytes_per_s,
        weights_resident=baseline.weights_resident,
        fixed_energy_j=t_.mac_energy_j + t_.vector_energy_j + t_.sram_energy_j,
        energy_pj_per_dram_byte=spec.dram_energy_pj_per_byte,
        energy_pj_per_mac=spec.energy_pj_per_mac[baseline.precision],  # type: ignore[index]
        static_power_w=spec.static_power_w,
        sram_bandwidth=spec.sram_bandwidth_bytes_per_s,
        energy_pj_per_sram_byte=spec.sram_energy_pj_per_byte,
    )


def _long_lived_traffic(work: OpWorkload, sim: Simulation, ids: set[int]) -> np.ndarray:
    """Per op, the spill and refill bytes the baseline schedule spent on `ids`."""
    out = np.zeros(work.n_ops)
    for op, sid, nbytes in sim.schedule.moves:
        if sid in ids:
            out[op] += nbytes
    return out
