"""The fast planner: greedy improvement at op granularity.

Start from spilling every long-lived tensor (the plan that always fits), then repeatedly
take the single change with the largest gain: keep a tensor, or recompute it at any op
inside its gap (not only the MILP's candidate ops). Each candidate is costed with the
same model as the MILP (`cost.evaluate`); a change that breaks the SRAM budget is never
taken. Stops when no change helps.
"""

from __future__ import annotations

import time

import numpy as np

from edgewise.plan.cost import Choice, evaluate
from edgewise.plan.milp import SolverResult
from edgewise.plan.problem import PlanProblem

PLACES_PER_TENSOR = 48  # recompute positions tried per tensor, the most idle ops first


def _options(problem: PlanProblem, allow: frozenset[str]) -> list[list[Choice]]:
    slack = np.maximum(problem.dram_s, problem.sram_s) - problem.compute_s
    out = []
    for t in problem.tensors:
        options: list[Choice] = []
        if "keep" in allow:
            options.append(("keep", -1))
        if "spill" in allow:
            options.append(("spill", -1))
        if "recompute" in allow:
            window = np.arange(max(t.ready_op, t.gap_start) + 1, t.gap_end + 1)
            ranked = window[np.argsort(-slack[window], kind="stable")][:PLACES_PER_TENSOR]
            options += [("recompute", int(j)) for j in sorted({*ranked.tolist(), *t.places})]
        out.append(options)
    return out


def solve_greedy(
    problem: PlanProblem,
    objective: str = "latency",
    allow: frozenset[str] = frozenset({"keep", "spill", "recompute"}),
) -> SolverResult:
    start = time.perf_counter()
    options = _options(problem, allow)
    first = "spill" if "spill" in allow else ("recompute" if "recompute" in allow else "keep")
    current = tuple(
        next((o for o in opts if o[0] == first), opts[0]) if opts else ("spill", -1)
        for opts in options
    )
    best = evaluate(problem, current)
    if not best.feasible:  # try the other starting points before giving up
        for action in ("recompute", "keep", "spill"):
            trial = tuple(next((o for o in opts if o[0] == action), opts[0]) for opts in options)
            if evaluate(problem, trial).feasible:
                current, best = trial, evaluate(problem, trial)
                break
    while True:
        step = None
        for k, opts in enumerate(options):
            for option in opts:
                if option == current[k]:
                    continue
                trial = (*current[:k], option, *current[k + 1 :])
                result = evaluate(problem, trial)
                if (
                    result.feasible
                    and result.objective(objective) < (step or best).objective(objective) - 1e-15
                ):
                    step, step_choices = result, trial
        if step is None:
            break
        best, current = step, step_choices
    seconds = time.perf_counter() - start
    if not best.feasible:
        return SolverResult("infeasible", None, None, None, None, seconds)
    return SolverResult("heuristic", current, best.objective(objective), None, None, seconds)
