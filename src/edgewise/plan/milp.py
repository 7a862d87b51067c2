"""The exact planner: the simulator's own rules written as a mixed-integer program (HiGHS).

The rules are those of `simulate.schedule` (read its docstring first); every coefficient
is a byte count from the workload or a time from `simulate.cost`, so the MILP's value
for a plan is the simulator's figure for it. Variables, named as in the formulation:
- K[g] in {0,1}: storage kept in SRAM across gap g (every gap of every activation);
- for a long-lived tensor's planned gap: Kt[t] keep, P[t] spill, R[t,j] recompute before
  op j (Rc[t,m]: recomputed at one of its first m positions, for occupancy);
- T[i] in {0,1}: op i tiled (fixed to 1 when its operands alone exceed SRAM, to 0 when
  everything that could be resident fits beside them);
- Wr[g] >= 0: the storage is written to DRAM when gap g opens (the first off gap without a
  clean copy); Wo[s]: an output written at its last event; Wt[u]: a dead source written
  out for a recomputation; F[g]: read back at a view because the next gap keeps it;
- V[s,i]: a tiled op's resident read; Z[t,j,u]: source u read back for the rebuild;
- Q[l,o], A[a]: layer l's weights at option o; attention a fused (1) or materialized (0),
  with X[i] (scores held) and Y[i] (scores streamed by a tiled op);
- H[l,o] <= Q[l,o]: layer l's weights (at option o) held in SRAM across the phase's calls,
  with Hc (MiB held) in every SRAM row: loaded once by the first call, never streamed;
- L[i] >= 0: latency of op i in microseconds (a later call); L0f: op 0 of the first call,
  which also loads what is held across calls.
Rows, by meaning: one choice per planned gap; no recompute chains; tiled ops keep
nothing they stream or write; write-once; SRAM capacity at every op; latency per op
(max of compute, DRAM and SRAM time with overlap, else compute + DRAM); accuracy budget.
Objective: latency, DRAM bytes, or energy of the phase's calls = the first call + (calls
- 1) later calls (they differ only at op 0), in us / MiB / uJ (HiGHS works to
absolute tolerances near 1e-7, so every quantity is written near 1). Latency ties are
broken toward fewer DRAM bytes by a term worth at most TIE_BREAK of the latency, taken
off the bound, so the bound stays a bound on the latency itself.
Infeasible is a result: it carries the smallest SRAM that would work.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgewise.ir.vocab import Action, Objective
from edgewise.plan.knobs import default_knobs, resident_ops
from edgewise.plan.problem import PlanProblem
from edgewise.plan.result import Choice, Knobs, SolverResult
from edgewise.simulate.cost import compute_seconds, latency_seconds, overhead_seconds
from edgewise.simulate.schedule import Recompute, Schedule, gap_at, segment_stream_bytes
from edgewise.simulate.simulator import loaded_weight_bytes, weight_dram_bytes

US = 1e6  # latency in microseconds
MIB = 2.0**20  # bytes in MiB
UNIT = {Objective.LATENCY: 1e6, Objective.ENERGY: 1e6, Objective.DRAM: 1 / MIB}
TIE_BREAK = 1e-9  # the most the latency tie-break adds, as a share of the compute time
TENSOR_ACTIONS = frozenset({Action.KEEP, Action.SPILL, Action.RECOMPUTE})

Expr = tuple[float, dict[int, float]]  # constant + sparse linear terms


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


def _add(a: dict[int, float], col: int, coef: float) -> None:
    if coef:
        a[col] = a.get(col, 0.0) + coef


@dataclass
class _Model:
    """Columns and rows collected in Python, handed to HiGHS at once."""

    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    integer: list[int] = field(default_factory=list)
    names: dict[Any, int] = field(default_factory=dict)
    row_lo: list[float] = field(default_factory=list)
    row_hi: list[float] = field(default_factory=list)
    row_cols: list[list[int]] = field(default_factory=list)
    row_vals: list[list[float]] = field(default_factory=list)

    def var(self, name: Any, lo: float = 0.0, hi: float = 1.0, integer: bool = False) -> int:
        col = len(self.lower)
        self.lower.append(lo)
        self.upper.append(hi)
        if integer:
            self.integer.append(col)
        self.names[name] = col
        return col

    def row(self, expr: Expr, lo: float, hi: float) -> None:
        """lo <= const + terms <= hi."""
        const, terms = expr
        terms = {c: v for c, v in terms.items() if v}
        if not terms:
            if const < lo - 1e-9 or const > hi + 1e-9:  # a constant row that cannot hold
                self.row_lo.append(1.0)
                self.row_hi.append(1.0)
                self.row_cols.append([])
                self.row_vals.append([])
            return
        self.row_lo.append(lo - const)
        self.row_hi.append(hi - const)
        self.row_cols.append(list(terms))
        self.row_vals.append(list(terms.values()))


@dataclass
class _Built:
    model: _Model
    objective: dict[int, float]  # in the objective's unit
    constant: float
    latency_cols: dict[int, float]  # column -> how many times the phase counts it
    latency_constant_us: float
    objective_name: Objective
    problem: PlanProblem
    tie_break: float  # the most the tie-break term adds to the objective (its unit)
    tiled_fixed: np.ndarray  # per op: tiled because its operands alone exceed SRAM


class _Builder:
    """Writes `schedule.traffic`'s rules, op by op and gap by gap, as linear rows."""

    def __init__(self, problem: PlanProblem, allow: frozenset[str], capacity: float | None):
        self.p = problem
        self.w = problem.work
        self.allow = allow
        self.m = _Model()
        self.capacity = capacity  # None: minimize the SRAM instead
        n = self.w.n_ops
        self.dram: list[dict[int, float]] = [{} for _ in range(n)]  # bytes
        self.sram: list[dict[int, float]] = [{} for _ in range(n)]  # bytes
        self.compute: list[dict[int, float]] = [{} for _ in range(n)]  # seconds
        self.occ: list[dict[int, float]] = [{} for _ in range(n)]  # bytes
        self.energy: dict[int, float] = {}  # joules (MAC and vector energy of rebuilds)
        self.load: dict[int, float] = {}  # bytes the first call loads at op 0 (-1: constant)
        self.planned = {t.gap: k for k, t in enumerate(problem.tensors)}
        self.held_col: int | None = None
        cap = capacity if capacity is not None else float(problem.capacity_bytes)
        self.inputs = {sid: float(self.w.storage[sid].nbytes) for sid in problem.held_inputs
                       if 0 < self.w.storage[sid].nbytes <= cap}  # fmt: skip
        self.held_most = self._held_most()

    # --- expressions for a storage's state ------------------------------------------
    def kept(self, g: int) -> Expr:
        """On chip right after the gap opens (a recomputed gap is dropped)."""
        if g in self.planned:
            return 0.0, {self.m.names["Kt", self.planned[g]]: 1.0}
        return 0.0, {self.m.names["K", g]: 1.0}

    def off(self, g: int) -> Expr:
        """Off chip across the gap (needs a DRAM copy)."""
        if g in self.planned:
            return 0.0, {self.m.names["P", self.planned[g]]: 1.0}
        return 1.0, {self.m.names["K", g]: -1.0}

    def on_chip(self, g: int, op: int) -> Expr:
        """On chip just before `op` runs, `op` inside the gap or closing it."""
        if g not in self.planned:
            return 0.0, {self.m.names["K", g]: 1.0}
        k = self.planned[g]
        t = self.p.tensors[k]
        terms = {self.m.names["Kt", k]: 1.0}
        upto = [m for m, j in enumerate(t.places) if j <= op]
        if upto and "recompute" in self.allow:
            terms[self.m.names["Rc", k, upto[-1]]] = 1.0
        return 0.0, terms

    def tiled(self, op: int) -> Expr:
        key = ("T", op)
        if key in self.m.names:
            return 0.0, {self.m.names[key]: 1.0}
        return float(self.t_fixed[op]), {}

    # --- the program ---------------------------------------------------------------------
    def build(self) -> None:
        p, w, m = self.p, self.w, self.m
        allow = self.allow
        self._tiling()
        # planned gaps: one choice each (keep fixed where it dominates, as for any gap)
        for k, t in enumerate(p.tensors):
            keep = Action.KEEP in allow
            m.var(("Kt", k), lo=float(keep and self._keep_dominates(t.gap)), hi=float(keep),
                  integer=True)  # fmt: skip
            m.var(("P", k), hi=1.0 if Action.SPILL in allow else 0.0, integer=True)
            if Action.RECOMPUTE in allow:
                for j in t.places:
                    m.var(("R", k, j), integer=True)
                for idx in range(len(t.places)):
                    m.var(("Rc", k, idx))
        for sid in self.inputs:  # held across calls: on chip throughout, never kept by gap
            m.var(("HI", sid), integer=True)
        for g in range(w.n_gaps):
            if g not in self.planned:
                holdable = int(w.gap_storage[g]) in self.inputs
                lo = 1.0 if self._keep_dominates(g) and not holdable else 0.0
                col = m.var(("K", g), lo=lo, integer=True)
                if holdable:
                    m.row(
                        (0.0, {col: 1.0, m.names["HI", int(w.gap_storage[g])]: 1.0}), -np.inf, 1.0
                    )
        self._choices()
        self._storages()
        if Action.RECOMPUTE in allow:
            self._recomputations()
        self._knobs()
        self._residency()
        self._capacity()

    def _tiling(self) -> None:
        """Which ops may be tiled: those whose operands could fail to fit."""
        w, p, m = self.w, self.p, self.m
        n = w.n_ops
        span = np.zeros(n + 1)
        for g in range(w.n_gaps):
            a, b = int(w.gap_start[g]), int(w.gap_end[g])
            span[a + 1] += w.gap_bytes[g]
            span[b] -= w.gap_bytes[g]
            span[a] += w.gap_bytes[g]  # a view event may hold it too: bound generously
            span[a + 1] -= w.gap_bytes[g]
        most = np.cumsum(span)[:n] + self.held_most
        for t in p.tensors:
            extra = sum(w.storage[u].nbytes for u in t.all_sources)
            for j in t.places:
                most[j] += extra
        scores = w.scores_bytes.astype(np.float64).copy()
        for att in p.attention:
            scores[att.op] = max(scores[att.op], att.scores_bytes)
        own = w.operand_bytes + scores
        self.own = own
        self.loose = own + most <= (self.capacity if self.capacity is not None else -1)
        self.scores = scores
        self.t_fixed = np.zeros(n, dtype=bool)
        for i in range(n):
            if own[i] == 0:
                continue
            if self.capacity is None:
                m.var(("T", i), integer=True)
            elif own[i] > self.capacity:
                self.t_fixed[i] = True
            elif own[i] + most[i] > self.capacity:
                m.var(("T", i), integer=True)

    def _keep_dominates(self, g: int) -> bool:
        """Keeping costs nothing where SRAM can never bind: every op from the gap's start to
        its end fits everything that could be resident, and neither end may be tiled. Then
        keep is optimal and is fixed (presolve by dominance; the optimum is unchanged)."""
        if self.capacity is None:
            return False
        a, b = int(self.w.gap_start[g]), int(self.w.gap_end[g])
        if not self.w.reads[a] and not self.w.writes[a]:  # opens at a view: a refill may move
            return False
        return bool(self.loose[a : b + 1].all())

    def _choices(self) -> None:
        m = self.m
        for k, t in enumerate(self.p.tensors):
            terms = {m.names["Kt", k]: 1.0, m.names["P", k]: 1.0}
            if Action.RECOMPUTE in self.allow:
                for idx, j in enumerate(t.places):
                    terms[m.names["R", k, j]] = 1.0
                    prev = {m.names["Rc", k, idx - 1]: -1.0} if idx else {}
                    m.row(
                        (0.0, {m.names["Rc", k, idx]: 1.0, m.names["R", k, j]: -1.0, **prev}),
                        0.0,
                        0.0,
                    )
            m.row((0.0, terms), 1.0, 1.0)

    def _storages(self) -> None:
        """Refills, writes, tiled streams and occupancy of every storage at its events."""
        w, m = self.w, self.m
        reads = [set(r) for r in w.reads]
        views = {i for i, r in enumerate(w.reads) if not r and not w.writes[i]}
        self.clean_total: dict[int, Expr] = {}
        for s in w.storages:
            events, b = s.events, float(s.nbytes)
            clean: Expr = (1.0, {}) if s.is_input else (0.0, {})
            for k, e in enumerate(events):
                before: Expr = (0.0, {}) if k == 0 else self.on_chip(s.gaps[k - 1], e)
                after = s.gaps[k] if k < len(s.gaps) else None
                keep_after: Expr = self.kept(after) if after is not None else (0.0, {})
                reads_here = s.id in reads[e]
                t_const, t_terms = self.tiled(e)
                if k == 0 and not s.is_input:  # written here: a tiled writer streams it
                    self._put(self.dram[e], (b * t_const, {c: b * v for c, v in t_terms.items()}))
                    clean = _sum(clean, (t_const, t_terms))
                    if after is not None:  # kept + tiled <= 1
                        m.row(_sum(keep_after, (t_const, t_terms)), -np.inf, 1.0)
                elif reads_here:
                    self._put(self.dram[e], _scale(_sum((1.0, {}), _neg(before)), b))
                    if s.id in self.inputs:  # held: read from SRAM
                        self._put(self.dram[e], (0.0, {m.names["HI", s.id]: -b}))
                    if after is not None and (t_terms or t_const):  # streamed stays off
                        m.row(
                            _sum(_sum(keep_after, _neg(before)), (t_const, t_terms)), -np.inf, 1.0
                        )
                elif keep_after[1] or before[1]:  # a view: read back if the next gap keeps it
                    col = m.var(("F", s.id, e), hi=1.0)
                    m.row(_sum((0.0, {col: 1.0}), _sum(_neg(keep_after), before)), 0.0, np.inf)
                    self._put(self.dram[e], (0.0, {col: b}))
                if e in views:
                    self._put(self.occ[e], _scale(keep_after, b))
                elif reads_here and (t_terms or t_const) and (before[1] or before[0]):
                    if t_terms:
                        col = m.var(("V", s.id, e), hi=1.0)
                        m.row(
                            _sum((0.0, {col: 1.0}), _neg(_sum(before, (t_const - 1.0, t_terms)))),
                            0.0,
                            np.inf,
                        )
                        self._put(self.occ[e], (0.0, {col: b}))
                    else:
                        self._put(self.occ[e], _scale(before, b))
                if after is None:
                    continue
                a_, z = int(w.gap_start[after]), int(w.gap_end[after])
                for i in range(a_ + 1, z):  # occupancy rows only where SRAM can bind
                    if not self.loose[i]:
                        self._put(self.occ[i], _scale(self.on_chip(after, i), b))
                if not s.is_input:  # written when it first goes off without a clean copy
                    col = m.var(("Wr", after), hi=1.0)
                    wr: Expr = (0.0, {col: 1.0})
                    off = self.off(after)
                    m.row(_sum(_sum(wr, _neg(off)), clean), 0.0, np.inf)
                    m.row(_sum(wr, _neg(off)), -np.inf, 0.0)
                    m.row(_sum(wr, clean), -np.inf, 1.0)
                    self._put(self.dram[e], (0.0, {col: b}))
                    clean = _sum(clean, wr)
            if s.is_output and events and not s.is_input:
                col = m.var(("Wo", s.id), hi=1.0)
                m.row(_sum((0.0, {col: 1.0}), clean), 1.0, 1.0)
                self._put(self.dram[events[-1]], (0.0, {col: b}))
            self.clean_total[s.id] = clean

    def _recomputations(self) -> None:
        p, w, m = self.p, self.w, self.m
        rates = p.rates
        mac_s, vector_s, _ = _compute(p)
        sram_per_op = w.sram_bytes
        index = {t.storage_id: k for k, t in enumerate(p.tensors)}
        dead_terms: dict[int, list[dict[int, float]]] = defaultdict(list)
        cap = self.capacity if self.capacity is not None else p.capacity_bytes
        for k, t in enumerate(p.tensors):
            seg = np.array(t.segment, dtype=np.int64)
            seg_compute = float(mac_s[seg].sum() + vector_s[seg].sum()) if len(seg) else 0.0
            seg_weights = p.streamed_share * float(w.weight_bytes[seg].sum())
            seg_stream = float(segment_stream_bytes(w, t.segment, int(cap)))
            seg_sram = float(sram_per_op[seg].sum()) if len(seg) else 0.0
            seg_energy = (
                float(w.macs[seg].sum()) * rates.mac_j
                + float(w.vector_ops[seg].sum()) * rates.vector_j
            )
            for u in t.sources:  # no chains: t and its long-lived source are not both rebuilt
                if u in index:
                    ku = index[u]
                    terms = {m.names["R", k, j]: 1.0 for j in t.places}
                    terms |= {m.names["R", ku, j]: 1.0 for j in p.tensors[ku].places}
                    m.row((0.0, terms), -np.inf, 1.0)
            dead_here: dict[int, dict[int, float]] = defaultdict(dict)
            for j in t.places:
                r = m.names["R", k, j]
                _add(self.compute[j], r, seg_compute)
                _add(self.dram[j], r, seg_weights + seg_stream)
                _add(self.sram[j], r, seg_sram)
                _add(self.energy, r, seg_energy)
                for u in t.all_sources:
                    bu = float(w.storage[u].nbytes)
                    g = gap_at(w, u, j)
                    if g is None:  # dead (or never on chip again): read back, maybe written
                        _add(self.dram[j], r, bu)
                        _add(self.occ[j], r, bu)
                        if not w.storage[u].is_input:
                            dead_here[u][r] = 1.0
                        continue
                    z = m.var(("Z", k, j, u), hi=1.0)
                    here = self.on_chip(g, j)
                    m.row(_sum((0.0, {z: 1.0, r: -1.0}), here), 0.0, np.inf)  # z >= r - here
                    m.row((0.0, {z: 1.0, r: -1.0}), -np.inf, 0.0)
                    m.row(_sum((0.0, {z: 1.0}), here), -np.inf, 1.0)
                    _add(self.dram[j], z, bu)
                    _add(self.occ[j], z, bu)
            for u, terms in dead_here.items():
                dead_terms[u].append(terms)
        for u, groups in dead_terms.items():  # a dead dirty source is written once
            col = m.var(("Wt", u), hi=1.0)
            clean = self.clean_total[u]
            for terms in groups:
                m.row(
                    _sum(_sum((0.0, {col: 1.0}), clean), (0.0, {c: -v for c, v in terms.items()})),
                    0.0,
                    np.inf,
                )
            m.row(_sum((0.0, {col: 1.0}), clean), -np.inf, 1.0)
            everything = {c: -1.0 for terms in groups for c in terms}
            m.row((0.0, {col: 1.0, **everything}), -np.inf, 0.0)
            last = w.storage[u].events[-1]
            _add(self.dram[last], col, float(w.storage[u].nbytes))

    def _knobs(self) -> None:
        p, m = self.p, self.m
        for l_, layer in enumerate(p.layers):
            cols = {o: m.var(("Q", l_, o), integer=True) for o in layer.options}
            m.row((0.0, dict.fromkeys(cols.values(), 1.0)), 1.0, 1.0)
            for o, col in cols.items():
                ratio = p.bits_ratio[o]  # type: ignore[index]
                for op, wb in zip(layer.ops, layer.weight_bytes, strict=True):
                    delta = float(np.round(wb * ratio)) - wb  # whole bytes, as the workload
                    _add(self.sram[op], col, delta)
                    # as `weight_dram_bytes`: the streamed share at the op, the rest at op 0
                    if p.streamed_share:
                        _add(self.dram[op], col, delta * p.streamed_share)
                    if not p.weights_preloaded and p.streamed_share < 1:
                        _add(self.load, col, delta * (1 - p.streamed_share))
        if p.accuracy_budget is not None and p.layers:
            terms = {
                m.names["Q", l_, o]: e
                for l_, layer in enumerate(p.layers)
                for o, e in zip(layer.options, layer.errors, strict=True)
                if e
            }
            if terms:  # as a fraction of the budget, so the solver's tolerance is relative
                budget = p.accuracy_budget  # > 0 here: a zero budget leaves no lossy option
                m.row((0.0, {k: e / budget for k, e in terms.items()}), -np.inf, 1.0)
        for a_, att in enumerate(p.attention):
            col = m.var(("A", a_), integer=True)  # 1: fused, 0: materialized
            s, i = float(att.scores_bytes), att.op
            self._put(self.sram[i], (s, {col: float(att.reread_bytes) - s}))
            t_const, t_terms = self.tiled(i)
            if t_terms:
                x = m.var(("X", i), hi=1.0)  # held: materialized and not tiled
                y = m.var(("Y", i), hi=1.0)  # streamed: materialized and tiled
                tcol = next(iter(t_terms))
                m.row((0.0, {x: 1.0, col: 1.0, tcol: 1.0}), 1.0, np.inf)
                m.row((0.0, {y: 1.0, col: 1.0, tcol: -1.0}), 0.0, np.inf)
                _add(self.occ[i], x, s)
                _add(self.dram[i], y, 2 * s)
            elif t_const:
                self._put(self.dram[i], (2 * s, {col: -2 * s}))
            else:
                self._put(self.occ[i], (s, {col: -s}))

    def _held_options(self) -> Iterator[tuple[int, str, list[float]]]:
        """(layer, option, bytes per op) of every layer that could be held in SRAM."""
        p = self.p
        if not p.residency:
            return
        cap = self.capacity if self.capacity is not None else float(p.capacity_bytes)
        for l_, layer in enumerate(p.layers):
            for o in layer.options:
                ratio = p.bits_ratio[o] if p.bits_ratio else 1.0
                per_op = [float(np.round(wb * ratio)) for wb in layer.weight_bytes]
                if 0 < sum(per_op) <= cap:
                    yield l_, o, per_op

    def _held_most(self) -> float:
        """The most weight bytes the plan could hold (bounds which SRAM rows can bind)."""
        most: dict[int, float] = {}
        for l_, _o, per_op in self._held_options():
            most[l_] = max(most.get(l_, 0.0), sum(per_op))
        total = sum(most.values()) + sum(self.inputs.values())
        return min(total, self.capacity) if self.capacity is not None else total

    def _residency(self) -> None:
        p, m = self.p, self.m
        held: dict[int, float] = {}
        for l_, o, per_op in self._held_options():
            col = m.var(("H", l_, o), integer=True)
            m.row((0.0, {col: 1.0, m.names["Q", l_, o]: -1.0}), -np.inf, 0.0)
            for op, b in zip(p.layers[l_].ops, per_op, strict=True):
                _add(self.dram[op], col, -b * p.streamed_share)  # streamed no more
            if not p.weights_preloaded:
                _add(self.load, col, sum(per_op))
            held[col] = sum(per_op)
        for sid, b in self.inputs.items():
            col = m.names["HI", sid]
            if not p.weights_preloaded:
                _add(self.load, col, b)
            held[col] = b
        if held:
            self.held_col = m.var(("Hc",), hi=np.inf)
            m.row((0.0, {self.held_col: 1.0, **{c: -v / MIB for c, v in held.items()}}), 0.0, 0.0)

    def _capacity(self) -> None:
        w, m = self.w, self.m
        own_scores = w.operand_bytes + w.scores_bytes
        if self.capacity is None:
            cap_col = m.var(("C",), hi=np.inf)
        for i in range(w.n_ops):
            if self.loose[i]:  # everything that could be resident fits: no row can bind
                continue
            terms = dict(self.occ[i])
            const = terms.pop(-1, 0.0)
            t_const, t_terms = self.tiled(i)
            const += float(own_scores[i]) * (1.0 - t_const)
            for c, v in t_terms.items():
                terms[c] = terms.get(c, 0.0) - float(own_scores[i]) * v
            if self.held_col is not None:
                terms[self.held_col] = MIB  # scaled to 1 below: the held MiB
            if not terms and (self.capacity is None or const <= self.capacity):
                continue
            scaled = (const / MIB, {c: v / MIB for c, v in terms.items()})
            if self.capacity is None:
                scaled[1][cap_col] = -1.0
                m.row(scaled, -np.inf, 0.0)
            else:
                m.row(scaled, -np.inf, self.capacity / MIB)

    def _put(self, target: dict[int, float], expr: Expr) -> None:
        const, terms = expr
        if const:
            target[-1] = target.get(-1, 0.0) + const
        for c, v in terms.items():
            _add(target, c, v)


def _sum(a: Expr, b: Expr) -> Expr:
    terms = dict(a[1])
    for c, v in b[1].items():
        terms[c] = terms.get(c, 0.0) + v
    return a[0] + b[0], terms


def _neg(a: Expr) -> Expr:
    return -a[0], {c: -v for c, v in a[1].items()}


def _scale(a: Expr, f: float) -> Expr:
    return a[0] * f, {c: v * f for c, v in a[1].items()}


def _compute(problem: PlanProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = problem.work
    return compute_seconds(w, problem.rates)


def _base(problem: PlanProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per op, what no decision changes: compute seconds, DRAM and SRAM bytes; and the
    model's own MAC + vector energy."""
    w, rates = problem.work, problem.rates
    mac_s, vector_s, _ = _compute(problem)
    dram = weight_dram_bytes(w, problem.streamed_share, preloaded=True)  # a later call
    sram = w.sram_bytes.astype(np.float64)
    energy = float(w.macs.sum()) * rates.mac_j + float(w.vector_ops.sum()) * rates.vector_j
    return mac_s + vector_s, dram, sram, energy


def build(
    problem: PlanProblem,
    objective: Objective,
    allow: frozenset[str],
    capacity: float | None,
) -> _Built:
    """The program for `objective` at `capacity` (None: minimize the SRAM itself)."""
    b = _Builder(problem, allow, capacity)
    b.build()
    m, rates = b.m, problem.rates
    compute0, dram0, sram0, energy0 = _base(problem)
    bw, sbw = float(rates.dram_bytes_per_s), float(rates.sram_bytes_per_s)
    has_dram = bw > 0
    objective_terms: dict[int, float] = {}
    constant = 0.0
    dram_terms: dict[int, float] = {}
    dram_constant = 0.0
    latency_cols: dict[int, float] = {}
    latency_constant = 0.0
    calls = float(problem.calls)
    first: tuple[float, dict[int, float], float, dict[int, float], float, dict[int, float]]
    first = (0.0, {}, 0.0, {}, 0.0, {})  # op 0's compute, DRAM and SRAM, before pruning
    unit = UNIT[objective]
    e_dram, e_sram, static = rates.dram_j_per_byte, rates.sram_j_per_byte, rates.static_w
    per_us = (1.0 if objective is Objective.LATENCY else static) * unit / US
    # the runtime's per-op overhead: a constant no decision changes (a recomputed segment
    # runs as one kernel with the op it runs before)
    overhead_us = float(overhead_seconds(problem.work.dispatched, problem.work.n_ops, rates).sum())
    overhead_us *= US
    if capacity is not None:
        latency_constant += overhead_us * calls
        constant += overhead_us * per_us * calls
    op0_col: int | None = None
    op0_fixed_us = 0.0
    for i in range(problem.work.n_ops):
        dram = dict(b.dram[i]) if has_dram else {}
        d0 = dram0[i] + dram.pop(-1, 0.0) if has_dram else 0.0
        sram = dict(b.sram[i])
        s0 = sram0[i] + sram.pop(-1, 0.0)
        comp = dict(b.compute[i])
        c0 = compute0[i] + comp.pop(-1, 0.0)
        if i == 0:
            first = (c0, dict(comp), d0, dict(dram), s0, dict(sram))
        dram_constant += d0 * calls
        for c, v in dram.items():
            _add(dram_terms, c, v * calls)
        if capacity is None:
            continue
        if objective is Objective.DRAM:
            continue
        if objective is Objective.ENERGY:
            constant += (d0 * e_dram + s0 * e_sram) * unit * calls
            for c, v in dram.items():
                _add(objective_terms, c, v * e_dram * unit * calls)
            for c, v in sram.items():
                _add(objective_terms, c, v * e_sram * unit * calls)
        if rates.overlap:  # a term that can never exceed the op's own compute never binds
            if has_dram and (d0 + sum(max(v, 0.0) for v in dram.values())) / bw <= c0:
                dram = {}
                d0 = 0.0
            if (s0 + sum(max(v, 0.0) for v in sram.values())) / sbw <= c0:
                sram = {}
                s0 = 0.0
        if not (dram or sram or comp):
            fixed_s = float(
                latency_seconds(
                    np.array(c0),
                    np.array(d0 / bw if has_dram else 0.0),
                    np.array(s0 / sbw),
                    rates.overlap,
                )
            )
            latency_constant += fixed_s * US * calls
            constant += fixed_s * US * per_us * calls
            if i == 0:
                op0_fixed_us = fixed_s * US
            continue
        col = m.var(("L", i), hi=np.inf)
        if i == 0:
            op0_col = col
        latency_cols[col] = calls
        _add(objective_terms, col, per_us * calls)
        lat: Expr = (0.0, {col: 1.0})
        comp_e: Expr = (c0 * US, {c: v * US for c, v in comp.items()})
        dram_e: Expr = (
            (d0 / bw * US, {c: v / bw * US for c, v in dram.items()}) if has_dram else (0.0, {})
        )
        sram_e: Expr = (s0 / sbw * US, {c: v / sbw * US for c, v in sram.items()})
        if rates.overlap:
            m.row(_sum(lat, _neg(comp_e)), 0.0, np.inf)
            m.row(_sum(lat, _neg(dram_e)), 0.0, np.inf)
        else:
            m.row(_sum(lat, _neg(_sum(comp_e, dram_e))), 0.0, np.inf)
        m.row(_sum(lat, _neg(sram_e)), 0.0, np.inf)
    load = dict(b.load) if has_dram else {}
    load_bytes = load.pop(-1, 0.0)
    if has_dram and not problem.weights_preloaded:  # what the spec keeps, loaded once
        load_bytes += loaded_weight_bytes(problem.work, problem.streamed_share)
    if (load or load_bytes) and capacity is not None and problem.work.n_ops:
        # the first call's op 0 also loads what is held across calls: one more latency
        # variable, counted once, in place of that call's later-call op 0
        dram_constant += load_bytes
        for c, v in load.items():
            _add(dram_terms, c, v)
        if objective is Objective.ENERGY:
            constant += load_bytes * e_dram * unit
            for c, v in load.items():
                _add(objective_terms, c, v * e_dram * unit)
        if objective is not Objective.DRAM:
            c0, comp, d0, dram, s0, sram = first
            for c, v in load.items():
                _add(dram, c, v)
            col = m.var(("L0f",), hi=np.inf)
            latency_cols[col] = 1.0
            _add(objective_terms, col, per_us)
            if op0_col is not None:
                latency_cols[op0_col] -= 1.0
                _add(objective_terms, op0_col, -per_us)
            else:
                latency_constant -= op0_fixed_us
                constant -= op0_fixed_us * per_us
            lat = (0.0, {col: 1.0})
            comp_e = (c0 * US, {c: v * US for c, v in comp.items()})
            dram_e = ((d0 + load_bytes) / bw * US, {c: v / bw * US for c, v in dram.items()})
            sram_e = (s0 / sbw * US, {c: v / sbw * US for c, v in sram.items()})
            if rates.overlap:
                m.row(_sum(lat, _neg(comp_e)), 0.0, np.inf)
                m.row(_sum(lat, _neg(dram_e)), 0.0, np.inf)
            else:
                m.row(_sum(lat, _neg(_sum(comp_e, dram_e))), 0.0, np.inf)
            m.row(_sum(lat, _neg(sram_e)), 0.0, np.inf)
    if capacity is not None and objective is Objective.DRAM:
        objective_terms = {c: v * unit for c, v in dram_terms.items()}
        constant = dram_constant * unit
    if capacity is not None and objective is Objective.ENERGY:
        constant += energy0 * unit * calls
        for c, v in b.energy.items():
            _add(objective_terms, c, v * unit * calls)
    tie = 0.0
    if capacity is not None and objective is Objective.LATENCY:  # ties: fewer DRAM bytes
        most = dram_constant + sum(max(v, 0.0) for v in dram_terms.values())
        tie = TIE_BREAK * max(float(compute0.sum()) * US * calls, 1.0)
        per_byte = tie / max(most, 1.0)
        for c, v in dram_terms.items():
            _add(objective_terms, c, v * per_byte)
        constant += dram_constant * per_byte
    if capacity is None:
        objective_terms = {m.names["C",]: 1.0}
        constant = 0.0
    return _Built(
        m,
        objective_terms,
        constant,
        latency_cols,
        latency_constant,
        objective,
        problem,
        tie,
        b.t_fixed,
    )


def _highs(built: _Built, relax: bool = False):  # type: ignore[no-untyped-def]
    import highspy

    m = built.model
    with _quiet_stdout():
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
    n = len(m.lower)
    lower = np.array(m.lower, dtype=np.float64)
    upper = np.array(m.upper, dtype=np.float64)
    upper[np.isinf(upper)] = highspy.kHighsInf
    h.addVars(n, lower, upper)
    cost = np.zeros(n)
    for c, v in built.objective.items():
        cost[c] += v
    h.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
    if m.integer and not relax:
        idx = np.array(m.integer, dtype=np.int32)
        h.changeColsIntegrality(len(idx), idx, np.array([highspy.HighsVarType.kInteger] * len(idx)))
    if m.row_lo:
        starts = np.cumsum([0] + [len(c) for c in m.row_cols[:-1]]).astype(np.int32)
        cols = np.array([c for r in m.row_cols for c in r], dtype=np.int32)
        vals = np.array([v for r in m.row_vals for v in r], dtype=np.float64)
        lo = np.array(m.row_lo)
        hi = np.array(m.row_hi)
        lo[np.isinf(lo)] = -highspy.kHighsInf
        hi[np.isinf(hi)] = highspy.kHighsInf
        h.addRows(len(lo), lo, hi, len(cols), starts, cols, vals)
    return h, highspy


class PlanFigure:
    """The MILP's own figure for given plans: the program is built once; per plan every
    decision is fixed and the rest solved as an LP (None when the plan breaks a row)."""

    def __init__(
        self, problem: PlanProblem, objective: Objective, allow: frozenset[str] = TENSOR_ACTIONS
    ) -> None:
        self.problem, self.objective = problem, objective
        self.built = build(problem, objective, allow, problem.capacity_bytes)
        self.h, self.hs = _highs(self.built, relax=True)
        m = self.built.model
        self.lower = np.array(m.lower, dtype=np.float64)
        self.upper = np.array(m.upper, dtype=np.float64)
        self.upper[np.isinf(self.upper)] = self.hs.kHighsInf

    def __call__(
        self, schedule: Schedule, choices: tuple[Choice, ...], knobs: Knobs | None = None
    ) -> float | None:
        fixed = _fix(self.built, schedule, choices, knobs or default_knobs(self.problem))
        lower, upper = self.lower.copy(), self.upper.copy()
        cols = np.fromiter(fixed, dtype=np.int64)
        lower[cols] = upper[cols] = np.fromiter(fixed.values(), dtype=np.float64)
        n = len(lower)
        self.h.changeColsBounds(n, np.arange(n, dtype=np.int32), lower, upper)
        self.h.run()
        if self.h.getModelStatus() != self.hs.HighsModelStatus.kOptimal:
            return None
        x = np.array(self.h.getSolution().col_value)
        return _value(self.built, x, float(self.h.getInfo().objective_function_value))


def _fix(
    built: _Built, schedule: Schedule, choices: tuple[Choice, ...], knobs: Knobs
) -> dict[int, float]:
    names, p = built.model.names, built.problem
    fixed: dict[int, float] = {}
    planned = {t.gap for t in p.tensors}
    for g in range(p.work.n_gaps):
        if g not in planned:
            fixed[names["K", g]] = float(schedule.kept[g])
    for k, (t, (action, at)) in enumerate(zip(p.tensors, choices, strict=True)):
        fixed[names["Kt", k]] = float(action == Action.KEEP)
        fixed[names["P", k]] = float(action == Action.SPILL)
        for j in t.places:
            if ("R", k, j) in names:
                fixed[names["R", k, j]] = float(action == Action.RECOMPUTE and j == at)
    for i in range(p.work.n_ops):
        if ("T", i) in names:
            fixed[names["T", i]] = float(schedule.tiled[i])
    for l_, (layer, option) in enumerate(zip(p.layers, knobs.weights, strict=True)):
        for o in layer.options:
            fixed[names["Q", l_, o]] = float(o == option)
    for a_, fused in enumerate(knobs.fused):
        fixed[names["A", a_]] = float(fused)
    for sid in p.held_inputs:
        if ("HI", sid) in names:
            fixed[names["HI", sid]] = float(sid in schedule.resident_inputs)
    resident = knobs.resident or (False,) * len(p.layers)
    for l_, (layer, option, kept) in enumerate(zip(p.layers, knobs.weights, resident,
                                                   strict=True)):  # fmt: skip
        for o in layer.options:
            if ("H", l_, o) in names:
                fixed[names["H", l_, o]] = float(kept and o == option)
    return fixed


def solve_milp(
    problem: PlanProblem,
    objective: Objective = Objective.LATENCY,
    allow: frozenset[str] = TENSOR_ACTIONS,
    time_limit_s: float = 60.0,
) -> SolverResult:
    """The optimal plan (every gap, tile and lever) for `objective` within `time_limit_s`."""
    start = time.perf_counter()
    built = build(problem, objective, allow, problem.capacity_bytes)
    h, hs = _highs(built)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", 1e-7)
    h.run()
    status = h.getModelStatus()
    if status == hs.HighsModelStatus.kInfeasible:
        return SolverResult(
            "infeasible",
            None,
            None,
            None,
            None,
            None,
            time.perf_counter() - start,
            min_sram_bytes=min_sram(problem, allow),
        )
    info = h.getInfo()
    unit = UNIT[objective]
    bound = (float(info.mip_dual_bound) + built.constant - built.tie_break) / unit
    if info.primal_solution_status != 2:  # no plan in time: the caller falls back
        return SolverResult(
            "time-limit", None, None, None, bound, None, time.perf_counter() - start
        )
    x = np.array(h.getSolution().col_value)
    value = _value(built, x, float(info.objective_function_value))
    optimal = status == hs.HighsModelStatus.kOptimal
    choices, schedule, knobs = decode(built, x)
    gap = max(0.0, (value - bound) / value) if value and np.isfinite(bound) else 0.0
    return SolverResult(
        "optimal" if optimal else "time-limit",
        choices,
        schedule,
        value,
        bound,
        gap,
        time.perf_counter() - start,
        knobs=knobs,
    )


def _value(built: _Built, x: np.ndarray, solver_objective: float) -> float:
    """The objective's value at `x` in its own unit (latency without the tie-break)."""
    if built.tie_break:
        latency = sum(float(x[c]) * n for c, n in built.latency_cols.items())
        return (latency + built.latency_constant_us) / US
    return (solver_objective + built.constant) / UNIT[built.objective_name]


def decode(built: _Built, x: np.ndarray) -> tuple[tuple[Choice, ...], Schedule, Knobs]:
    """The plan in a solution vector: per-tensor choices, the schedule, the knobs."""
    names, p = built.model.names, built.problem
    w = p.work
    kept = np.zeros(w.n_gaps, dtype=bool)
    planned = {t.gap: k for k, t in enumerate(p.tensors)}
    for g in range(w.n_gaps):
        if g not in planned:
            kept[g] = x[names["K", g]] > 0.5
    tiled = np.zeros(w.n_ops, dtype=bool)
    for i in range(w.n_ops):
        tiled[i] = x[names["T", i]] > 0.5 if ("T", i) in names else built.tiled_fixed[i]
    choices: list[Choice] = []
    rebuilds = []
    for k, t in enumerate(p.tensors):
        if x[names["Kt", k]] > 0.5:
            choices.append((Action.KEEP, -1))
            kept[t.gap] = True
        elif x[names["P", k]] > 0.5:
            choices.append((Action.SPILL, -1))
        else:
            j = max(t.places, key=lambda j: x[names["R", k, j]])
            choices.append((Action.RECOMPUTE, j))
            rebuilds.append(Recompute(t.storage_id, t.gap, j, t.segment, t.all_sources))
    weights = []
    for l_, layer in enumerate(p.layers):
        chosen = [o for o in layer.options if x[names["Q", l_, o]] > 0.5]
        weights.append(chosen[0] if chosen else layer.options[0])
    fused = tuple(bool(x[names["A", a]] > 0.5) for a in range(len(p.attention)))
    resident = tuple(
        any(x[names[key]] > 0.5 for o in layer.options if (key := ("H", l_, o)) in names)
        for l_, layer in enumerate(p.layers)
    ) if p.residency else ()  # fmt: skip
    knobs = Knobs(tuple(weights), fused, resident)
    held = frozenset(sid for sid in p.held_inputs if ("HI", sid) in names
                     and x[names["HI", sid]] > 0.5)  # fmt: skip
    schedule = Schedule(p.capacity_bytes, kept, tiled, tuple(rebuilds), resident_ops(p, knobs),
                        held)  # fmt: skip
    return tuple(choices), schedule, knobs


def min_sram(problem: PlanProblem, allow: frozenset[str]) -> int:
    """The smallest SRAM for activations any allowed plan fits in (bytes, rounded up), or
    -1 when no SRAM size makes the allowed actions fit."""
    built = build(problem, Objective.LATENCY, allow, None)
    h, hs = _highs(built)
    h.run()
    if h.getModelStatus() != hs.HighsModelStatus.kOptimal:
        return -1
    return int(np.ceil(h.getSolution().col_value[built.model.names["C",]] * MIB - 1e-6))
