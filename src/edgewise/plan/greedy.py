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

from edgewise.plan.cost import Choice, Knobs, evaluate, knob_deltas
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
    knobs = Knobs(
        tuple(layer.options[0] for layer in problem.layers), (True,) * len(problem.attention)
    )
    deltas = knob_deltas(problem, knobs)
    options = _options(problem, allow)
    first = "spill" if "spill" in allow else ("recompute" if "recompute" in allow else "keep")
    current = tuple(
        next((o for o in opts if o[0] == first), opts[0]) if opts else ("spill", -1)
        for opts in options
    )
    best = evaluate(problem, current, deltas=deltas)
    if not best.feasible:  # try the other starting points before giving up
        for action in ("recompute", "keep", "spill"):
            trial = tuple(next((o for o in opts if o[0] == action), opts[0]) for opts in options)
            if evaluate(problem, trial, deltas=deltas).feasible:
                current, best = trial, evaluate(problem, trial, deltas=deltas)
                break
    current, best = _improve_tensors(problem, objective, options, current, best, deltas)
    knobs = _set_knobs(problem, objective, current, knobs)
    deltas = knob_deltas(problem, knobs)
    current, best = _improve_tensors(
        problem, objective, options, current, evaluate(problem, current, deltas=deltas), deltas
    )
    seconds = time.perf_counter() - start
    if not best.feasible:
        return SolverResult("infeasible", None, None, None, None, seconds)
    return SolverResult(
        "heuristic", current, best.objective(objective), None, None, seconds, knobs=knobs
    )


def _improve_tensors(problem, objective, options, current, best, deltas):  # type: ignore[no-untyped-def]
    """Take the best single tensor change until none helps."""
    while True:
        step = None
        for k, opts in enumerate(options):
            for option in opts:
                if option == current[k]:
                    continue
                trial = (*current[:k], option, *current[k + 1 :])
                result = evaluate(problem, trial, deltas=deltas)
                if (
                    result.feasible
                    and result.objective(objective) < (step or best).objective(objective) - 1e-15
                ):
                    step, step_choices = result, trial
        if step is None:
            return current, best
        best, current = step, step_choices


def _set_knobs(
    problem: PlanProblem, objective: str, choices: tuple[Choice, ...], knobs: Knobs
) -> Knobs:
    """Attention: each op takes its cheaper mode. Precision: every option's gain over the
    base is measured alone; without a budget each layer takes its best option, with one the
    options are bought by gain per unit of error until the budget is spent."""

    def value(k: Knobs) -> float:
        result = evaluate(problem, choices, k)
        return result.objective(objective) if result.feasible else float("inf")

    tiled = list(knobs.tiled)
    for a in range(len(tiled)):
        flipped = [*tiled[:a], not tiled[a], *tiled[a + 1 :]]
        if value(Knobs(knobs.weights, tuple(flipped))) < value(Knobs(knobs.weights, tuple(tiled))):
            tiled = flipped
    base = Knobs(knobs.weights, tuple(tiled))
    base_value = value(base)
    offers = []  # (gain per error, gain, layer, option, error)
    for l_, layer in enumerate(problem.layers):
        for option, error in zip(layer.options[1:], layer.errors[1:], strict=True):
            trial = (*base.weights[:l_], option, *base.weights[l_ + 1 :])
            gain = base_value - value(Knobs(trial, base.tiled))
            if gain > 0:
                offers.append((gain / max(error, 1e-30), gain, l_, option, error))
    weights = list(base.weights)
    spent, gained = 0.0, [0.0] * len(weights)
    budget = problem.accuracy_budget
    for _ratio, gain, l_, option, error in sorted(offers, reverse=True):
        previous = problem.layers[l_].errors[problem.layers[l_].options.index(weights[l_])]
        if gain <= gained[l_]:
            continue
        if budget is not None and spent - previous + error > budget:
            continue
        spent += error - previous
        weights[l_], gained[l_] = option, gain
    return Knobs(tuple(weights), base.tiled)
