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


def evaluate(problem: PlanProblem, choices: tuple[Choice, ...]) -> Evaluation:
    n = len(problem.compute_s)
    compute = problem.compute_s.copy()
    dram = problem.dram_bytes.copy()
    need = problem.working_bytes.copy()
    spilled = {
        t.storage_id for t, (a, _) in zip(problem.tensors, choices, strict=True) if a == "spill"
    }
    recomputed_macs = 0
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
            compute[at] += t.recompute_s
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
    feasible = bool((checked <= problem.capacity_bytes).all()) and not chained
    dram_s = dram / problem.dram_bandwidth if problem.dram_bandwidth else np.zeros(n)
    latency = float(np.maximum(np.maximum(compute, dram_s), problem.sram_s).sum())
    dram_total = float(dram.sum())
    energy = (
        problem.fixed_energy_j
        + dram_total * problem.energy_pj_per_dram_byte * 1e-12
        + recomputed_macs * problem.energy_pj_per_mac * 1e-12
        + latency * problem.static_power_w
    )
    return Evaluation(feasible, latency, dram_total, energy, float(checked.max(initial=0)))
