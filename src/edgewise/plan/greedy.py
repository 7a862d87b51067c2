"""The fast planner: coordinate descent on the long-lived tensors, every candidate costed
by the simulator itself (the default schedule around the pinned choices).

Start from spilling every long-lived tensor (or the first allowed action), then sweep the
tensors: each takes the allowed choice (keep, spill, or recompute at one of its candidate
positions) whose simulated objective is lowest given the others; repeat until a sweep
changes nothing. Knobs stay at their defaults (base precision, fused attention). Its
figure is the simulator's by construction; no bound is claimed.
"""

from __future__ import annotations

import time

from edgewise.ir.vocab import Action, Objective
from edgewise.plan.knobs import default_knobs, knob_workload
from edgewise.plan.problem import PlanProblem
from edgewise.plan.result import Choice, SolverResult
from edgewise.simulate.pipeline import PhaseRun
from edgewise.simulate.schedule import Pin, Recompute
from edgewise.simulate.simulator import Simulation, simulate

MAX_SWEEPS = 3


def pins_for(problem: PlanProblem, choices: tuple[Choice, ...]) -> tuple[Pin, ...]:
    """The simulator's pins for per-tensor choices."""
    out = []
    for t, (action, at) in zip(problem.tensors, choices, strict=True):
        rebuild = (
            Recompute(t.storage_id, t.gap, at, t.segment, t.all_sources)
            if action == Action.RECOMPUTE
            else None
        )
        out.append(Pin(t.gap, Action(action), rebuild))
    return tuple(out)


def figure(sim: Simulation | PhaseRun, objective: Objective) -> float:
    """The objective's value in a simulation or a phase's calls (inf when it does not fit)."""
    if not sim.totals.feasible:
        return float("inf")
    t = sim.totals
    return {
        Objective.LATENCY: t.latency_s,
        Objective.ENERGY: t.energy_j,
        Objective.DRAM: t.dram_bytes,
    }[objective]


def solve_greedy(
    problem: PlanProblem,
    objective: Objective = Objective.LATENCY,
    allow: frozenset[str] = frozenset(Action),
) -> SolverResult:
    start = time.perf_counter()
    knobs = default_knobs(problem)
    work = knob_workload(problem, knobs)

    def run(choices: tuple[Choice, ...]) -> Simulation:
        return simulate(work, problem.spec, problem.precision, pins_for(problem, choices))

    options: list[list[Choice]] = []
    for t in problem.tensors:
        opts: list[Choice] = []
        if Action.SPILL in allow:
            opts.append((Action.SPILL, -1))
        if Action.KEEP in allow:
            opts.append((Action.KEEP, -1))
        if Action.RECOMPUTE in allow:
            opts += [(Action.RECOMPUTE, j) for j in t.places]
        options.append(opts)
    if any(not o for o in options):
        return SolverResult("infeasible", None, None, None, None, None, time.perf_counter() - start)
    current = tuple(o[0] for o in options)
    best_sim = run(current)
    best = figure(best_sim, objective)
    for _ in range(MAX_SWEEPS):
        changed = False
        for k, opts in enumerate(options):
            for option in opts:
                if option == current[k]:
                    continue
                trial = (*current[:k], option, *current[k + 1 :])
                sim = run(trial)
                value = figure(sim, objective)
                if value < best * (1 - 1e-12):
                    current, best, best_sim, changed = trial, value, sim, True
        if not changed:
            break
    seconds = time.perf_counter() - start
    if best == float("inf"):
        return SolverResult("infeasible", None, None, None, None, None, seconds)
    return SolverResult(
        "heuristic", current, best_sim.schedule, best, None, None, seconds, knobs=knobs
    )
