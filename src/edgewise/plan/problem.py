"""The planning problem: which long-lived tensors to keep on chip, spill, or recompute,
with every other gap of every activation scheduled optimally around them.

Each long-lived tensor (a U-Net skip) has a *planned gap*: its longest stretch between
two events (usually from the block that makes it to the up-block that reads it). Across
it the tensor is
- kept: resident in SRAM for the whole gap;
- spilled: off chip (written to DRAM when the gap opens unless a clean copy exists, read
  back when it closes);
- recomputed: dropped when the gap opens and rebuilt before a chosen op `j` inside the
  gap by re-running the ops that made it from its *sources* (the nearest long-lived
  tensors or model inputs it was computed from), re-reading their weights, then held
  from `j` to the gap's end. Placing `j` on a memory-bound op lets the recomputation fill
  compute that would idle there.
Every other gap (of every activation) is kept or off, and every op may be tiled: the
solvers choose those too, so the plan is a whole `Schedule` that `schedule.traffic` and
`cost.price` cost exactly as the simulator does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgewise.analysis.memory import DTYPES, memory_timeline
from edgewise.errors import EdgewiseError
from edgewise.hardware.spec import HardwareSpec
from edgewise.ir.graph import Graph, TensorKind
from edgewise.simulate.compile import compiled
from edgewise.simulate.cost import Rates
from edgewise.simulate.simulator import Simulation, activation_capacity, streamed_share
from edgewise.simulate.workload import OpWorkload

MAX_PLACES = 16  # candidate recompute positions per tensor: the gap's end and the most idle ops


@dataclass(frozen=True, slots=True)
class LongLived:
    """One decision: a long-lived storage, its planned gap and what recomputing costs."""

    storage_id: int
    name: str  # producer scope, for people
    nbytes: int
    gap: int  # index of the planned gap in the workload's gaps
    gap_start: int  # the event after which the gap opens
    gap_end: int  # the event before which it closes
    segment: tuple[int, ...]  # ops that recompute it from its sources
    sources: tuple[int, ...]  # storage ids of long-lived sources (must not be recomputed)
    input_sources: tuple[int, ...]  # model inputs and other storages it is rebuilt from
    places: tuple[int, ...]  # candidate ops to recompute before (the last is gap_end)
    ready_op: int  # recomputation may land after this op: every source exists by then
    window_ops: int  # ops a recomputation could land before (places is a subset if fewer)

    @property
    def all_sources(self) -> tuple[int, ...]:
        return tuple(sorted({*self.sources, *self.input_sources}))


@dataclass(frozen=True, slots=True)
class WeightLayer:
    """A layer whose weight precision is a decision (weight-only quantization: MACs stay at
    the activation precision, so only weight bytes change)."""

    name: str  # module scope
    ops: tuple[int, ...]  # ops that read its weights
    weight_bytes: tuple[int, ...]  # per op, at the base precision
    options: tuple[str, ...]  # precisions allowed (floors and sensitivity applied), base first
    errors: tuple[float, ...]  # output error of each option (sensitivity file; base = 0)


@dataclass(frozen=True, slots=True)
class AttentionOp:
    """An attention op that may hold its scores (materialized) or run fused tiles."""

    op: int
    scores_bytes: int  # scores and softmax held while it runs when materialized
    reread_bytes: int  # K and V re-read from SRAM once per query tile when fused


@dataclass(frozen=True)
class PlanProblem:
    model: str
    spec: HardwareSpec
    precision: str
    work: OpWorkload
    rates: Rates
    capacity_bytes: int  # SRAM for activations
    weights_resident: bool
    weights_preloaded: bool  # the resident weights were loaded with the model: no DRAM bytes
    streamed_share: float  # of the weights, the share that streams at every use (0: resident)
    tensors: tuple[LongLived, ...]
    slack_s: np.ndarray  # per op, baseline idle compute (max(DRAM, SRAM time) - compute)
    layers: tuple[WeightLayer, ...] = ()  # precision or residency decisions (else empty)
    bits_ratio: dict[str, float] | None = None  # option -> its bytes / base bytes
    accuracy_budget: float | None = None  # sum of chosen options' errors may not exceed it
    attention: tuple[AttentionOp, ...] = ()  # tiling decisions (empty unless allowed)
    calls: int = 1  # the phase's calls: the objective is the first call + (calls - 1) later
    residency: bool = False  # per layer in `layers`: keep its weights on chip across calls
    held_inputs: tuple[int, ...] = ()  # input storages (the KV cache) that may be held too

    @property
    def restricted(self) -> int:
        """How many tensors had fewer candidate positions than ops in their window."""
        return sum(len(t.places) < t.window_ops for t in self.tensors)

    @property
    def decisions(self) -> int:
        return len(self.tensors) + len(self.layers) + len(self.attention)


def _producers(graph: Graph) -> dict[int, list[int]]:
    """Storage -> every op that writes into it (in-place writers included), in order."""
    out: dict[int, list[int]] = {}
    for t in graph.tensors.values():
        if t.producer is not None:
            out.setdefault(t.storage_id, []).append(t.producer)
    return {sid: sorted(ops) for sid, ops in out.items()}


def _segment(
    graph: Graph,
    writers: dict[int, list[int]],
    storage_id: int,
    stop: set[int],
    limit: int,
) -> tuple[set[int], set[int]]:
    """Ops that (re)compute a storage as it is at op `limit`, walking back until
    long-lived or input storages: every op up to `limit` that wrote into a storage it needs
    (in-place ops included). Returns (ops, source storages). Weights are re-read."""
    ops: set[int] = set()
    sources: set[int] = set()
    frontier = [storage_id]
    seen: set[int] = set()
    while frontier:
        sid = frontier.pop()
        if sid in seen:
            continue
        seen.add(sid)
        made_by = [op for op in writers.get(sid, ()) if op <= limit]
        if not made_by:
            sources.add(sid)
            continue
        for op_index in made_by:
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
    """Build the problem from a graph, its workload (compiled for `spec` here if it is not
    yet: the program must cost what the simulator costs) and a baseline simulation."""
    if spec.pipelined:
        raise EdgewiseError(
            f"'{spec.name}' is pipelined (a frame costs its busiest resource over the whole "
            "model), which the planner's per-op model does not describe: plan for it with "
            "--set pipelined=false, or simulate it"
        )
    work = compiled(work, spec)
    dtype = work.activation_precision if work.activation_precision in DTYPES else "int8"
    tl = memory_timeline(graph, dtype=dtype, long_lived_ops=long_lived_ops)
    capacity, resident = activation_capacity(work, spec)
    storage = work.storage
    ids = [r.storage_id for r in tl.long_lived_table if r.storage_id in storage]
    stop = set(ids) | {s.id for s in work.storages if s.is_input}
    compute = baseline.mac_s + baseline.vector_s
    slack = np.maximum(np.maximum(baseline.dram_s, baseline.sram_s) - compute, 0.0)
    tensors = []
    writers = _producers(graph)
    for sid in ids:
        s = storage[sid]
        if not s.gaps:
            continue
        lengths = work.gap_end[list(s.gaps)] - work.gap_start[list(s.gaps)]
        if lengths.max() <= 1:  # nothing to decide: no stretch without a use
            continue
        g = s.gaps[int(np.argmax(lengths))]
        gap_start, gap_end = int(work.gap_start[g]), int(work.gap_end[g])
        seg, sources = _segment(graph, writers, sid, stop, gap_start)
        long_sources = tuple(sorted(u for u in sources if u in ids))
        other_sources = tuple(sorted(u for u in sources if u not in ids and u in storage))
        ready = max([storage[u].first_op for u in (*long_sources, *other_sources)] + [gap_start])
        window = np.arange(ready + 1, gap_end + 1)
        places = window
        if len(window) > MAX_PLACES:
            idle = window[np.argsort(-slack[window], kind="stable")][: MAX_PLACES - 1]
            places = np.array(sorted({*idle[slack[idle] > 0].tolist(), gap_end}))
        tensors.append(
            LongLived(
                storage_id=sid,
                name=graph.ops[s.first_op].scope,
                nbytes=s.nbytes,
                gap=g,
                gap_start=gap_start,
                gap_end=gap_end,
                segment=tuple(sorted(seg)),
                sources=long_sources,
                input_sources=other_sources,
                places=tuple(int(j) for j in places),
                ready_op=int(ready),
                window_ops=len(window),
            )
        )
    return PlanProblem(
        model=graph.model,
        spec=spec,
        precision=baseline.precision,
        work=work,
        rates=Rates.of(spec, baseline.precision),
        capacity_bytes=capacity,
        weights_resident=resident,
        weights_preloaded=spec.weights_preloaded,
        streamed_share=streamed_share(work, spec),
        tensors=tuple(tensors),
        slack_s=slack,
    )
