"""The planner's cost of one assignment: the model every solver optimizes.

It is the simulator's model restricted to what the decisions change. Per op i:
    latency_i = max(compute_i + recompute landing on i,
                    (DRAM bytes_i + spills/refills + recompute reads on i) / BW,
                    SRAM time_i)
and SRAM at every op whose working set fits (its own operands + every long-lived tensor
resident there) must stay within capacity; a recomputation may not read a tensor that is
itself recomputed (no chains). Energy adds DRAM bytes x e_dram,
recomputed MACs x e_mac and static power x latency to the parts no decision changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgewise.plan.problem import LongLived, PlanProblem

Choice = tuple[str, int]  # (action, recompute op; -1 unless recompute)
OBJECTIVES = ("latency", "energy", "dram")


@dataclass(frozen=True, slots=True)
class Evaluation:
    feasible: bool
    latency_s: float
    dram_bytes: float
    energy_j: float
    peak_sram_bytes: float  # the highest SRAM need over ops whose working set fits

    def objective(self, name: str) -> float:
        return {"latency": self.latency_s, "energy": self.energy_j, "dram": self.dram_bytes}[name]


def recompute_read_bytes(problem: PlanProblem, t: LongLived) -> float:
    """DRAM bytes a recomputation reads besides spilled sources: weights and inputs."""
    streamed = 0.0 if problem.weights_resident else float(t.recompute_weight_bytes)
    return streamed + t.source_bytes


@dataclass(frozen=True, slots=True)
class Knobs:
    """Per-layer weight precision (one option name per `problem.layers`) and per attention
    op whether it is tiled (one bool per `problem.attention`)."""

    weights: tuple[str, ...] = ()
    tiled: tuple[bool, ...] = ()


def weight_delta_op(problem: PlanProblem, op: int) -> int:
    """Where a change in weight bytes lands: the reading op, or the preload when resident."""
    return 0 if problem.weights_resident else op


@dataclass(frozen=True)
class KnobDeltas:
    """What a knob setting adds per op: DRAM bytes, SRAM bytes; and its total error."""

    dram: np.ndarray
    sram: np.ndarray
    error: float


def knob_deltas(problem: PlanProblem, knobs: Knobs) -> KnobDeltas:
    n = len(problem.compute_s)
    dram, sram, error = np.zeros(n), np.zeros(n), 0.0
    for layer, option in zip(problem.layers, knobs.weights, strict=True):
        delta = problem.bits_ratio[option] - 1.0  # type: ignore[index]
        error += layer.errors[layer.options.index(option)]
        for op, w in zip(layer.ops, layer.weight_bytes, strict=True):
            dram[weight_delta_op(problem, op)] += w * delta
            sram[op] += w * delta
    for att, tiled in zip(problem.attention, knobs.tiled, strict=True):
        if tiled:
            sram[att.op] += att.tiled_sram_bytes
        else:
            sram[att.op] += att.materialized_sram_bytes
            dram[att.op] += att.materialized_dram_bytes
    return KnobDeltas(dram, sram, error)


def evaluate(
    problem: PlanProblem,
    choices: tuple[Choice, ...],
    knobs: Knobs | None = None,
    deltas: KnobDeltas | None = None,
) -> Evaluation:
    """The cost of tensor `choices` with `knobs` (or their precomputed `deltas`)."""
    n = len(problem.compute_s)
    if deltas is None and knobs is not None:
        deltas = knob_deltas(problem, knobs)
    compute = problem.compute_s.copy()
    dram = problem.dram_bytes.copy()
    sram_extra = np.zeros(n)
    need = problem.working_bytes.copy()
    error = 0.0
    if deltas is not None:
        dram += deltas.dram
        sram_extra += deltas.sram
        error = deltas.error
    spilled = {
        t.storage_id for t, (a, _) in zip(problem.tensors, choices, strict=True) if a == "spill"
    }
    recomputed_macs = 0
    recomputed_energy = 0.0
    for t, (action, at) in zip(problem.tensors, choices, strict=True):
        need[t.gap_start] += t.nbytes
        need[t.gap_end] += t.nbytes
        if action == "keep":
            need[t.gap_start + 1 : t.gap_end] += t.nbytes
        elif action == "spill":
            dram[t.gap_start] += t.nbytes
            dram[t.gap_end] += t.nbytes
        else:
            need[at : t.gap_end] += t.nbytes
            for last, held in t.held_inputs:  # its inputs stay on chip until it runs
                if last + 1 < at:
                    need[last + 1 : at] += held
            compute[at] += t.recompute_s
            sram_extra[at] += t.recompute_sram_bytes
            recomputed_energy += t.recompute_vector_energy_j
            dram[at] += recompute_read_bytes(problem, t)
            dram[at] += sum(
                u.nbytes
                for u in problem.tensors
                if u.storage_id in spilled and u.storage_id in t.sources
            )
            recomputed_macs += t.recompute_macs
    recomputed = {
        t.storage_id for t, (a, _) in zip(problem.tensors, choices, strict=True) if a == "recompute"
    }
    chained = any(
        recomputed & set(t.sources) for t in problem.tensors if t.storage_id in recomputed
    )
    checked = need[problem.constrained[:n]]
    within_budget = problem.accuracy_budget is None or error <= problem.accuracy_budget + 1e-12
    feasible = bool((checked <= problem.capacity_bytes).all()) and not chained and within_budget
    dram_s = dram / problem.dram_bandwidth if problem.dram_bandwidth else np.zeros(n)
    sram_s = problem.sram_s + sram_extra / problem.sram_bandwidth
    latency = float(np.maximum(np.maximum(compute, dram_s), sram_s).sum())
    dram_total = float(dram.sum())
    energy = (
        problem.fixed_energy_j
        + float(sram_extra.sum()) * problem.energy_pj_per_sram_byte * 1e-12
        + dram_total * problem.energy_pj_per_dram_byte * 1e-12
        + recomputed_macs * problem.energy_pj_per_mac * 1e-12
        + recomputed_energy
        + latency * problem.static_power_w
    )
    return Evaluation(feasible, latency, dram_total, energy, float(checked.max(initial=0)))
