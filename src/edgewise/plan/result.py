"""What a solver returns: a typed result, infeasible included (never an exception)."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgewise.ir.vocab import Action
from edgewise.simulate.schedule import Schedule

Choice = tuple[Action, int]  # (action, recompute op; -1 unless recompute)


@dataclass(frozen=True, slots=True)
class Knobs:
    """Per-layer weight precision (one option per `problem.layers`), per attention op
    whether it runs fused (one bool per `problem.attention`), and per layer whether its
    weights stay in SRAM across the phase's calls (empty: none do)."""

    weights: tuple[str, ...] = ()
    fused: tuple[bool, ...] = ()
    resident: tuple[bool, ...] = ()


@dataclass(frozen=True)
class SolverResult:
    status: str  # optimal | time-limit | heuristic | infeasible | nothing-to-plan
    choices: tuple[Choice, ...] | None  # per long-lived tensor
    schedule: Schedule | None  # the whole SRAM schedule the choices come with
    objective: float | None  # the solver's own figure for its plan
    bound: float | None  # best proven lower bound on the same objective
    gap: float | None  # (objective - bound) / objective
    seconds: float
    knobs: Knobs = field(default_factory=Knobs)
    min_sram_bytes: int | None = None  # infeasible: the smallest SRAM that works (-1: none)
