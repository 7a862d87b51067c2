"""Run the real model on this CPU, time every module scope, and set it beside a simulation.

How a layer's time is measured: global forward hooks wrap every module's forward in a
`torch.profiler.record_function` labelled with its qualified name (the names capture
gives scopes, so a measured layer and a simulated one share a key). In the profiler's
event tree each label's *exclusive* time (its span minus the spans of the module labels
nested in it) is the time that scope's own ops took, with their framework overhead;
the exclusive times of all scopes add up to the whole profiled forward. The total is
timed on plain forwards (no labels, no profiler: their overhead, 5 to 20%, is not the
model's). One warm-up run, then `repeat` plain and `repeat` profiled runs, alternating;
every figure is the median over its runs.

    measured = measure_scopes(model, args, kwargs, repeat=3)
    check = compare(graph, simulation, measured, spec.peak_macs_per_s("fp32"), by="layer")
    check.totals.error, check.median_abs_layer_error
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from edgewise.execute.measure import _native_stderr_silenced, forward
from edgewise.ir.graph import Graph
from edgewise.simulate.simulator import Simulation, group_costs

LABEL = "edgewise.scope:"  # prefix of the profiler labels that mark a module's forward
SIGNIFICANT_SHARE = 0.001  # layers taking at least this share of the measured total count


@dataclass(frozen=True, slots=True)
class ScopeTime:
    """One module scope's own time in a forward (not its child modules')."""

    name: str  # qualified module name, "" for the root module
    measured_s: float  # median over runs of the scope's exclusive wall time
    kernel_s: float  # median over runs of its top-level ATen ops' time (the rest: Python)
    op_count: int  # top-level ATen ops it ran in one forward


@dataclass(frozen=True)
class ScopeTimes:
    """A profiled forward, by module scope, in order of each scope's first run."""

    runs: int  # profiled forwards, and as many plain ones (after one warm-up)
    threads: int  # torch intra-op threads it ran with
    total_s: float  # median wall time of a plain forward (no labels, no profiler)
    profiled_s: float  # median wall time of a profiled forward: the scopes' times add to it
    run_s: tuple[float, ...]  # every plain forward's wall time, to show the spread
    scopes: tuple[ScopeTime, ...]


@dataclass(frozen=True, slots=True)
class LayerCheck:
    """One layer's (or block's) predicted and measured time."""

    name: str
    predicted_s: float  # the simulation's latency of its ops
    measured_s: float  # median exclusive wall time (see the module docstring)
    bound: str  # what bounds it in the simulation: compute, dram, sram, none
    op_count: int  # ops the graph has in it

    @property
    def error(self) -> float:
        """(predicted - measured) / measured; infinite when nothing was measured."""
        if self.measured_s <= 0:
            return float("inf") if self.predicted_s > 0 else 0.0
        return (self.predicted_s - self.measured_s) / self.measured_s


@dataclass(frozen=True, slots=True)
class CheckTotals:
    predicted_s: float  # the simulation's latency
    measured_s: float  # median wall time of a plain forward
    error: float  # (predicted - measured) / measured
    profiled_s: float  # median wall time of a profiled forward (what the rows add up to)
    run_s: tuple[float, ...]  # every plain forward, to show the spread


@dataclass(frozen=True)
class Validation:
    """A simulation set against a measured run, layer by layer."""

    model: str
    spec_name: str
    by: str  # "layer" or "block"
    runs: int
    threads: int
    totals: CheckTotals
    rows: tuple[LayerCheck, ...]  # every layer, in execution order
    significant_share: float  # a layer counts in the median when it takes this share of
    # the profiled total
    significant_layers: int  # how many layers do
    significant_time_share: float  # the share of the profiled total those layers hold
    median_abs_layer_error: float  # median |error| over those layers


# --- measuring ------------------------------------------------------------------------------


@contextlib.contextmanager
def _scope_labels(model: nn.Module) -> Iterator[None]:
    """Label each module's forward with its qualified name while the context is open.

    Modules built during the forward (not in `named_modules`) are named as capture names
    them: the caller's scope, a dot, the class name."""
    names = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}
    stack: list[tuple[str, torch.profiler.record_function]] = []

    def enter(module: nn.Module, _args: Any) -> None:
        name = names.get(id(module))
        if name is None:
            outer = stack[-1][0] if stack else ""
            name = (outer + "." if outer else "") + type(module).__name__
        label = torch.profiler.record_function(LABEL + name)
        label.__enter__()
        stack.append((name, label))

    def leave(_module: nn.Module, _args: Any, _out: Any) -> None:
        if stack:
            stack.pop()[1].__exit__(None, None, None)

    pre = nn.modules.module.register_module_forward_pre_hook(enter)
    post = nn.modules.module.register_module_forward_hook(leave, always_call=True)
    try:
        yield
    finally:
        pre.remove()
        post.remove()


def _exclusive_times(events: Sequence[Any]) -> dict[str, tuple[float, float, int]]:
    """Per scope label: (exclusive seconds, top-level op seconds, top-level op count).

    A label's exclusive time is its span minus the spans of the nearest labels inside it;
    its top-level ops are the ATen ops directly under it (not inside another op)."""
    out: dict[str, tuple[float, float, int]] = {}
    for event in events:
        if not event.name.startswith(LABEL):
            continue
        name = event.name[len(LABEL) :]
        span = event.time_range.end - event.time_range.start
        nested = kernel = 0.0
        ops = 0
        pending = list(event.cpu_children)
        while pending:
            child = pending.pop()
            duration = child.time_range.end - child.time_range.start
            if child.name.startswith(LABEL):
                nested += duration
            elif child.name.startswith("aten::"):
                kernel += duration
                ops += 1
            else:  # another user annotation: look through it
                pending.extend(child.cpu_children)
        before = out.get(name, (0.0, 0.0, 0))  # a module run twice adds up
        out[name] = (before[0] + (span - nested) * 1e-6, before[1] + kernel * 1e-6, before[2] + ops)
    return out


def measure_scopes(
    model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], repeat: int = 3
) -> ScopeTimes:
    """One warm-up forward, then `repeat` plain forwards (the total, free of the labels' and
    the profiler's overhead) alternating with `repeat` profiled ones (the scopes); autograd
    off."""
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1 (got {repeat})")
    runs: list[dict[str, tuple[float, float, int]]] = []
    profiled: list[float] = []
    plain: list[float] = []
    order: dict[str, None] = {}
    with torch.no_grad():
        with _scope_labels(model):
            forward(model, args, kwargs)  # warm-up: first-touch pages, oneDNN primitive caches
        for _ in range(repeat):  # alternate, so a busy spell on the machine hits both kinds
            start = time.perf_counter()
            model(*args, **kwargs)
            plain.append(time.perf_counter() - start)
            with _scope_labels(model):
                with _native_stderr_silenced():  # the profiler's C++ side prints start/stop
                    prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
                    prof.start()
                try:
                    start = time.perf_counter()
                    model(*args, **kwargs)
                    profiled.append(time.perf_counter() - start)
                finally:
                    with _native_stderr_silenced():
                        prof.stop()
            times = _exclusive_times(prof.events())
            runs.append(times)
            order.update(dict.fromkeys(times))
    none = (0.0, 0.0, 0)
    scopes = tuple(
        ScopeTime(
            name=name,
            measured_s=statistics.median(r.get(name, none)[0] for r in runs),
            kernel_s=statistics.median(r.get(name, none)[1] for r in runs),
            op_count=max(r.get(name, none)[2] for r in runs),
        )
        for name in order
    )
    return ScopeTimes(
        runs=repeat,
        threads=torch.get_num_threads(),
        total_s=statistics.median(plain),
        profiled_s=statistics.median(profiled),
        run_s=tuple(plain),
        scopes=scopes,
    )


# --- comparing ------------------------------------------------------------------------------


def compare(
    graph: Graph,
    sim: Simulation,
    measured: ScopeTimes,
    peak_macs_per_s: float,
    by: str = "layer",
    depth: int = 2,
    significant_share: float = SIGNIFICANT_SHARE,
) -> Validation:
    """Predicted against measured time per layer (innermost scope) or block (scope cut
    to `depth` components). A scope only one side has (a container module's own Python
    time, a scope whose ops are all views) is a row with zero on the other side."""
    if by not in ("layer", "block"):
        raise ValueError(f"by must be 'layer' or 'block' (got {by!r})")

    def key(scope: str) -> str:
        return ".".join(scope.split(".")[:depth]) if by == "block" and scope else scope

    predicted = {
        c.name: c
        for c in group_costs(sim, tuple(key(op.scope) for op in graph.ops), peak_macs_per_s)
    }
    real: dict[str, float] = {}
    for s in measured.scopes:
        real[key(s.name)] = real.get(key(s.name), 0.0) + s.measured_s
    rows = []
    for name in dict.fromkeys([*predicted, *real]):
        cost = predicted.get(name)
        rows.append(
            LayerCheck(
                name=name,
                predicted_s=cost.latency_s if cost else 0.0,
                measured_s=real.get(name, 0.0),
                bound=cost.bound if cost else "none",
                op_count=cost.op_count if cost else 0,
            )
        )
    measured_total = measured.total_s
    predicted_total = float(sim.totals.latency_s)
    threshold = significant_share * measured.profiled_s  # the total the layer times add to
    significant = [r for r in rows if r.measured_s >= threshold and r.measured_s > 0]
    errors = [abs(r.error) for r in significant]
    return Validation(
        model=graph.model,
        spec_name=sim.spec_name,
        by=by,
        runs=measured.runs,
        threads=measured.threads,
        totals=CheckTotals(
            predicted_s=predicted_total,
            measured_s=measured_total,
            error=(predicted_total - measured_total) / measured_total if measured_total else 0.0,
            profiled_s=measured.profiled_s,
            run_s=measured.run_s,
        ),
        rows=tuple(rows),
        significant_share=significant_share,
        significant_layers=len(significant),
        significant_time_share=(
            sum(r.measured_s for r in significant) / measured.profiled_s
            if measured.profiled_s
            else 0.0
        ),
        median_abs_layer_error=statistics.median(errors) if errors else float("nan"),
    )
