"""The exact planner: a mixed-integer program solved by HiGHS.

Variables, named as in the formulation:
- K[t], P[t] in {0, 1}: keep / spill long-lived tensor t across its gap;
- R[t, j] in {0, 1}: recompute t at candidate op j (one of t.places);
- Z[t, j, u] >= 0: t is recomputed at j while its source u is spilled (u is read back);
- L[i] >= 0: latency of op i, for the ops a decision can touch.
Constraints, by meaning:
- one choice:  K[t] + P[t] + sum_j R[t, j] = 1;
- no chains:   sum_j R[t, j] + sum_j R[u, j] <= 1 for every source u of t;
- read-back:   Z[t, j, u] >= R[t, j] + P[u] - 1;
- SRAM:        at every op i whose working set fits, ordinary live bytes + resident
               long-lived bytes <= capacity (rows with equal left sides are merged);
- latency:     L[i] >= compute_i + recompute landing on i;
               L[i] >= (DRAM bytes_i + spill/refill/recompute bytes on i) / BW;  L[i] >= SRAM_i.
Objective: latency (sum L), DRAM bytes, or energy (DRAM bytes x e_dram + recomputed MACs x
e_mac + static power x sum L), each plus the constant of untouched ops.
Infeasible is a result: it carries the smallest SRAM that would work.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edgewise.plan.cost import Choice, Knobs, evaluate, recompute_read_bytes, weight_delta_op
from edgewise.plan.problem import PlanProblem

US = 1e6  # latency rows in microseconds
MIB = 2.0**20  # SRAM rows in MiB
OBJECTIVE_UNIT = {"latency": 1e6, "energy": 1e6, "dram": 2.0**-20}  # us, uJ, MiB


@dataclass(frozen=True)
class SolverResult:
    status: str  # optimal | time-limit | infeasible
    choices: tuple[Choice, ...] | None
    objective: float | None  # the planner's objective value of the best plan
    bound: float | None  # best proven lower bound
    gap: float | None  # (objective - bound) / objective
    seconds: float
    min_sram_bytes: int | None = None  # for an infeasible budget: what would work
    knobs: Knobs = field(default_factory=Knobs)  # precision and tiling (empty if not planned)


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """HiGHS prints a banner from C++ when created; keep the CLI's stdout clean."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


class _Model:
    """A thin builder over highspy: named columns, sparse rows."""

    def __init__(self) -> None:
        import highspy

        with _quiet_stdout():
            self.h = highspy.Highs()
            self.h.setOptionValue("output_flag", False)
        self.hs = highspy
        self.cost: list[float] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.integer: list[int] = []

    def var(
        self, cost: float = 0.0, lo: float = 0.0, hi: float = 1.0, integer: bool = False
    ) -> int:
        self.cost.append(cost)
        self.lower.append(lo)
        self.upper.append(hi)
        if integer:
            self.integer.append(len(self.cost) - 1)
        return len(self.cost) - 1

    def commit_vars(self) -> None:
        n = len(self.cost)
        self.h.addVars(n, np.array(self.lower), np.array(self.upper))
        self.h.changeColsCost(n, np.arange(n, dtype=np.int32), np.array(self.cost))
        if self.integer:
            idx = np.array(self.integer, dtype=np.int32)
            kinds = np.array([self.hs.HighsVarType.kInteger] * len(idx))
            self.h.changeColsIntegrality(len(idx), idx, kinds)

    def row(self, coefs: dict[int, float], lo: float, hi: float) -> None:
        inf = self.hs.kHighsInf
        cols = np.array(list(coefs), dtype=np.int32)
        self.h.addRow(
            -inf if lo == -np.inf else lo,
            inf if hi == np.inf else hi,
            len(cols),
            cols,
            np.array(list(coefs.values()), dtype=np.float64),
        )


def _touched_ops(problem: PlanProblem) -> list[int]:
    ops = set()
    for t in problem.tensors:
        ops |= {t.gap_start, t.gap_end, *t.places}
    for layer in problem.layers:
        ops |= {*layer.ops, *(weight_delta_op(problem, i) for i in layer.ops)}
    ops |= {a.op for a in problem.attention}
    return sorted(ops)


def solve_milp(
    problem: PlanProblem,
    objective: str = "latency",
    allow: frozenset[str] = frozenset({"keep", "spill", "recompute"}),
    time_limit_s: float = 60.0,
    capacity_bytes: int | None = None,
) -> SolverResult:
    """Optimal keep/spill/recompute choices for `objective` within `time_limit_s`."""
    import time

    start = time.perf_counter()
    capacity = problem.capacity_bytes if capacity_bytes is None else capacity_bytes
    built = _build(problem, objective, allow, capacity, minimize_sram=False)
    m, var_of = built
    m.h.setOptionValue("time_limit", float(time_limit_s))
    m.h.setOptionValue("mip_rel_gap", 1e-6)
    m.h.run()
    status = m.h.getModelStatus()
    seconds = time.perf_counter() - start
    hs = m.hs
    if status == hs.HighsModelStatus.kInfeasible:
        return SolverResult(
            "infeasible", None, None, None, None, seconds, min_sram_bytes=_min_sram(problem, allow)
        )
    info = m.h.getInfo()
    bound = (float(info.mip_dual_bound) + var_of["constant"]) / OBJECTIVE_UNIT[objective]
    if info.primal_solution_status != 2:  # no incumbent in time: the greedy plan stands in
        from edgewise.plan.greedy import solve_greedy

        fallback = solve_greedy(problem, objective, allow)
        if fallback.choices is None:
            return SolverResult("time-limit", None, None, None, None, seconds)
        value = float(fallback.objective or 0.0)
        finite = np.isfinite(bound) and bound > -1e300
        gap = max(0.0, (value - bound) / value) if finite and value else None
        return SolverResult(
            "time-limit",
            fallback.choices,
            value,
            bound if finite else None,
            gap,
            time.perf_counter() - start,
            knobs=fallback.knobs,
        )
    x = np.array(m.h.getSolution().col_value)
    choices = _choices(problem, var_of, x)
    weights = []
    for l_, layer in enumerate(problem.layers):
        chosen = [o for o in layer.options if x[var_of["Q", l_, o]] > 0.5]
        weights.append(chosen[0] if chosen else layer.options[0])
    tiled = tuple(bool(x[var_of["A", a]] > 0.5) for a in range(len(problem.attention)))
    knobs = Knobs(tuple(weights), tiled)
    value = evaluate(problem, choices, knobs).objective(objective)
    gap = max(0.0, (value - bound) / value) if value else 0.0
    name = "optimal" if status == hs.HighsModelStatus.kOptimal else "time-limit"
    return SolverResult(name, choices, value, bound, gap, seconds, knobs=knobs)


def _build(
    problem: PlanProblem,
    objective: str,
    allow: frozenset[str],
    capacity: float,
    minimize_sram: bool,
):  # type: ignore[no-untyped-def]
    m = _Model()
    e_dram = problem.energy_pj_per_dram_byte * 1e-12
    # HiGHS works to absolute tolerances near 1e-7, so the model is written in units that
    # put every quantity near 1: microseconds, MiB, microjoules (OBJECTIVE_UNIT converts).
    unit = OBJECTIVE_UNIT[objective]
    # latency ties (DRAM traffic hidden under compute) go to the plan that moves fewer
    # bytes: 0.001 us per MiB, far below any latency difference that matters
    per_byte = {"latency": 1e-3 / MIB / unit, "dram": 1.0, "energy": e_dram}[objective] * unit
    per_mac = problem.energy_pj_per_mac * 1e-12 * unit if objective == "energy" else 0.0
    per_second = {"latency": 1.0, "dram": 0.0, "energy": problem.static_power_w}[objective] * unit
    per_sram_byte = problem.energy_pj_per_sram_byte * 1e-12 * unit if objective == "energy" else 0.0
    if minimize_sram:
        per_byte = per_mac = per_second = per_sram_byte = 0.0
    per_us = per_second / US
    var_of: dict = {}
    index = {t.storage_id: k for k, t in enumerate(problem.tensors)}
    for k, t in enumerate(problem.tensors):
        var_of["K", k] = m.var(integer=True, hi=1.0 if "keep" in allow else 0.0)
        var_of["P", k] = m.var(
            2 * t.nbytes * per_byte, integer=True, hi=1.0 if "spill" in allow else 0.0
        )
        for j in t.places:
            macs_cost = t.recompute_macs * per_mac + t.recompute_sram_bytes * per_sram_byte
            if objective == "energy" and not minimize_sram:
                macs_cost += t.recompute_vector_energy_j * unit
            var_of["R", k, j] = m.var(
                recompute_read_bytes(problem, t) * per_byte + macs_cost,
                integer=True,
                hi=1.0 if "recompute" in allow else 0.0,
            )
            for u in t.sources:
                if u in index:
                    var_of["Z", k, j, index[u]] = m.var(
                        problem.tensors[index[u]].nbytes * per_byte, hi=1.0
                    )
    knob_constant = 0.0
    for l_, layer in enumerate(problem.layers):
        for option in layer.options:
            delta = sum(layer.weight_bytes) * (problem.bits_ratio[option] - 1.0)  # type: ignore[index]
            var_of["Q", l_, option] = m.var(delta * (per_byte + per_sram_byte), integer=True)
    for a, att in enumerate(problem.attention):  # A = 1: tiled, 0: materialized
        mat = att.materialized_dram_bytes * per_byte + att.materialized_sram_bytes * per_sram_byte
        tiled = att.tiled_sram_bytes * per_sram_byte
        var_of["A", a] = m.var(tiled - mat, integer=True)
        knob_constant += mat
    touched = _touched_ops(problem)
    base = np.maximum(
        np.maximum(problem.compute_s, _dram_s(problem, problem.dram_bytes)), problem.sram_s
    )
    constant_latency = float(base.sum() - base[touched].sum())
    for i in touched:
        var_of["L", i] = m.var(per_us, hi=np.inf)  # microseconds
    if minimize_sram:
        var_of["C"] = m.var(1.0, hi=np.inf)
    m.commit_vars()
    constant = constant_latency * per_second + float(problem.dram_bytes.sum()) * per_byte
    if objective == "energy":
        constant += problem.fixed_energy_j * unit
    var_of["constant"] = 0.0 if minimize_sram else constant + knob_constant  # objective's unit
    for l_, layer in enumerate(problem.layers):
        m.row({var_of["Q", l_, o]: 1.0 for o in layer.options}, 1.0, 1.0)
    if problem.accuracy_budget is not None and problem.layers:
        budget_row = {
            var_of["Q", l_, o]: e
            for l_, layer in enumerate(problem.layers)
            for o, e in zip(layer.options, layer.errors, strict=True)
            if e
        }
        if budget_row:
            m.row(budget_row, -np.inf, problem.accuracy_budget)

    for k, t in enumerate(problem.tensors):
        choice = {var_of["K", k]: 1.0, var_of["P", k]: 1.0} | {
            var_of["R", k, j]: 1.0 for j in t.places
        }
        m.row(choice, 1.0, 1.0)
        for u in t.sources:
            if u not in index:
                continue
            mine = {var_of["R", k, j]: 1.0 for j in t.places}
            theirs = {var_of["R", index[u], j]: 1.0 for j in problem.tensors[index[u]].places}
            m.row(mine | theirs, -np.inf, 1.0)
            for j in t.places:  # Z >= R + P_u - 1
                m.row(
                    {
                        var_of["Z", k, j, index[u]]: 1.0,
                        var_of["R", k, j]: -1.0,
                        var_of["P", index[u]]: -1.0,
                    },
                    -1.0,
                    np.inf,
                )
    _capacity_rows(m, problem, var_of, capacity, minimize_sram)
    bw = problem.dram_bandwidth
    sbw = problem.sram_bandwidth
    weight_terms: dict[int, list[tuple[int, float, bool]]] = {}  # op -> (layer, bytes, dram?)
    for l_, layer in enumerate(problem.layers):
        for op, w in zip(layer.ops, layer.weight_bytes, strict=True):
            weight_terms.setdefault(op, []).append((l_, w, False))
            weight_terms.setdefault(weight_delta_op(problem, op), []).append((l_, w, True))
    attention_at = {att.op: (a, att) for a, att in enumerate(problem.attention)}
    for i in touched:
        lat = var_of["L", i]
        comp = {lat: 1.0}
        mem = {lat: 1.0}
        sram = {lat: 1.0}
        mem_rhs = float(_dram_s(problem, problem.dram_bytes)[i])
        sram_rhs = float(problem.sram_s[i])
        for k, t in enumerate(problem.tensors):
            if i in t.places:
                comp[var_of["R", k, i]] = -t.recompute_s * US
                sram[var_of["R", k, i]] = -t.recompute_sram_bytes / sbw * US
                if bw:
                    mem[var_of["R", k, i]] = -recompute_read_bytes(problem, t) / bw * US
                    for u in t.sources:
                        if u in index:
                            mem[var_of["Z", k, i, index[u]]] = (
                                -problem.tensors[index[u]].nbytes / bw * US
                            )
            if bw and i in (t.gap_start, t.gap_end):
                mem[var_of["P", k]] = mem.get(var_of["P", k], 0.0) - t.nbytes / bw * US
        for l_, w, on_dram in weight_terms.get(i, ()):
            target, rate = (mem, bw) if on_dram else (sram, sbw)
            if not rate:
                continue
            for option in problem.layers[l_].options:
                col = var_of["Q", l_, option]
                delta = w * (problem.bits_ratio[option] - 1.0)  # type: ignore[index]
                target[col] = target.get(col, 0.0) - delta / rate * US
        if i in attention_at:
            a, att = attention_at[i]
            if bw:
                mem[var_of["A", a]] = att.materialized_dram_bytes / bw * US
                mem_rhs += att.materialized_dram_bytes / bw
            sram[var_of["A", a]] = -(att.tiled_sram_bytes - att.materialized_sram_bytes) / sbw * US
            sram_rhs += att.materialized_sram_bytes / sbw
        m.row(comp, float(problem.compute_s[i]) * US, np.inf)
        m.row(mem, mem_rhs * US, np.inf)
        m.row(sram, sram_rhs * US, np.inf)
    return m, var_of


def _dram_s(problem: PlanProblem, dram_bytes: np.ndarray) -> np.ndarray:
    return (
        dram_bytes / problem.dram_bandwidth if problem.dram_bandwidth else np.zeros_like(dram_bytes)
    )


def _capacity_rows(
    m: _Model, problem: PlanProblem, var_of: dict, capacity: float, minimize_sram: bool
) -> None:
    """One row per distinct left side, with the tightest right side among its ops."""
    n = len(problem.compute_s)
    constant = problem.working_bytes.astype(np.float64).copy()
    for t in problem.tensors:
        constant[t.gap_start] += t.nbytes
        constant[t.gap_end] += t.nbytes
    tightest: dict[tuple, float] = {}
    for i in np.flatnonzero(problem.constrained[:n]):
        terms: list[tuple[Any, ...]] = []
        for k, t in enumerate(problem.tensors):
            if t.gap_start < i < t.gap_end:
                terms.append(("K", k))
                terms.extend(("R", k, j) for j in t.places if j <= i)
            for j in t.places:  # a later recomputation holds its inputs until it runs
                held = sum(b for last, b in t.held_inputs if last < i < j)
                if held:
                    terms.append(("H", k, j, held))
        key = tuple(terms)
        tightest[key] = max(tightest.get(key, -np.inf), float(constant[i]))
    for key, need in tightest.items():
        coefs: dict[int, float] = {}
        for term in key:
            if term[0] == "H":  # inputs held for recomputation (k, j): its R column
                col = var_of["R", term[1], term[2]]
                coefs[col] = coefs.get(col, 0.0) + float(term[3]) / MIB
            else:
                col = var_of[term]
                coefs[col] = coefs.get(col, 0.0) + float(problem.tensors[term[1]].nbytes) / MIB
        if minimize_sram:
            coefs[var_of["C"]] = -1.0
            m.row(coefs, -np.inf, -need / MIB)
        elif coefs:
            m.row(coefs, -np.inf, (capacity - need) / MIB)
        elif need > capacity:
            m.row({var_of["K", 0]: 0.0} if problem.tensors else {}, 1.0, 1.0)  # infeasible


def _choices(problem: PlanProblem, var_of: dict, x: np.ndarray) -> tuple[Choice, ...]:
    out: list[Choice] = []
    for k, t in enumerate(problem.tensors):
        if x[var_of["K", k]] > 0.5:
            out.append(("keep", -1))
        elif x[var_of["P", k]] > 0.5:
            out.append(("spill", -1))
        else:
            j = max(t.places, key=lambda j: x[var_of["R", k, j]])
            out.append(("recompute", j))
    return tuple(out)


def _min_sram(problem: PlanProblem, allow: frozenset[str]) -> int:
    """The smallest SRAM (for activations) any allowed plan needs.

    Which ops must fit depends on the size itself (an op whose operands exceed SRAM is
    tiled through DRAM instead), so the minimum is found as a fixed point: solve with the
    ops that fit at the current candidate, and grow the candidate until it is stable.
    """
    operands = problem.working_bytes.astype(np.float64).copy()
    for t in problem.tensors:
        operands[t.gap_start] += t.nbytes
        operands[t.gap_end] += t.nbytes
    candidate = float(problem.capacity_bytes)
    for _ in range(32):
        trial = replace(problem, constrained=operands <= candidate)
        m, var_of = _build(trial, "latency", allow, candidate, minimize_sram=True)
        m.h.run()
        if m.h.getModelStatus() != m.hs.HighsModelStatus.kOptimal:
            return -1
        need = float(np.ceil(m.h.getSolution().col_value[var_of["C"]] * MIB))
        if need <= candidate and (operands <= need).sum() == (operands <= candidate).sum():
            return int(need)
        candidate = max(need, candidate + 1)
    return int(candidate)
