"""A pipeline on a spec: each phase's first call and a later call, totals per run.

A phase's calls run back to back. The first call loads what stays on chip across calls
(the spec's resident weights unless `weights_preloaded`, and the layers a plan keeps);
every later call finds it there (`simulate(..., warm=True)`). So

    phase = first call + (calls - 1) x later call,    run = sum of its phases,

for every additive figure (latency, energy and its split, DRAM and SRAM bytes, MACs,
time by bound, floor); peak SRAM is the largest of any call; utilization and the floor
ratio are recomputed from the sums. Steps per second = denoising steps per run / the
time of the phases that take them (the U-Net's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from edgewise.hardware.spec import HardwareSpec
from edgewise.ir.pipeline import Pipeline
from edgewise.ir.vocab import AttentionMode
from edgewise.simulate.schedule import Pin, Schedule
from edgewise.simulate.simulator import Simulation, Totals, simulate
from edgewise.simulate.workload import op_workload

_MAX = frozenset({"peak_sram_bytes"})
_DERIVED = frozenset({"mac_utilization", "floor_ratio", "feasible"})


def summed(parts: Sequence[tuple[Totals, int]], peak_macs_per_s: float) -> Totals:
    """`sum(count x totals)` for the additive fields; the peak is the largest; utilization
    and the floor ratio follow from the sums."""
    values: dict[str, object] = {}
    for f in fields(Totals):
        if f.name in _DERIVED:
            continue
        if f.name in _MAX:
            values[f.name] = max(getattr(t, f.name) for t, _ in parts)
        else:
            values[f.name] = sum(getattr(t, f.name) * n for t, n in parts)
    latency, floor = float(values["latency_s"]), float(values["floor_s"])  # type: ignore[arg-type]
    macs = int(values["macs"])  # type: ignore[call-overload]
    return Totals(
        **values,  # type: ignore[arg-type]
        mac_utilization=macs / (peak_macs_per_s * latency) if latency else 0.0,
        floor_ratio=latency / floor if floor else float("inf"),
        feasible=all(t.feasible for t, _ in parts),
    )


def _peak(spec: HardwareSpec, precision: str) -> float:
    return spec.peak_macs_per_s(precision)  # type: ignore[arg-type]


@dataclass(frozen=True)
class PhaseRun:
    """One phase simulated: its first call, a later call, and the phase's totals."""

    name: str
    calls: int
    steps_per_call: float
    first: Simulation
    later: Simulation  # the first call itself when nothing is held across calls
    totals: Totals

    @property
    def steps(self) -> float:
        return self.steps_per_call * self.calls


@dataclass(frozen=True)
class PipelineRun:
    pipeline: str
    unit: str  # what one run makes ("image")
    description: str
    spec_name: str
    precision: str
    phases: tuple[PhaseRun, ...]
    totals: Totals  # per run

    @property
    def steps(self) -> float:
        return sum(p.steps for p in self.phases)

    @property
    def steps_per_s(self) -> float:
        """Denoising steps per second of the phases that take them (0: no denoiser)."""
        seconds = sum(p.totals.latency_s for p in self.phases if p.steps_per_call)
        return self.steps / seconds if seconds else 0.0


def simulate_phase(
    name: str,
    work,  # type: ignore[no-untyped-def]  # OpWorkload
    spec: HardwareSpec,
    precision: str,
    calls: int = 1,
    schedule: Schedule | None = None,
    pins: Sequence[Pin] = (),
    steps_per_call: float = 0.0,
) -> PhaseRun:
    """`calls` back-to-back calls of one workload (see the module docstring)."""
    first = simulate(work, spec, precision, pins, schedule)
    later = first
    if calls > 1:
        later = simulate(first.work, spec, precision, schedule=first.schedule, warm=True)
    peak = _peak(spec, precision)
    totals = summed([(first.totals, 1), (later.totals, calls - 1)], peak)
    return PhaseRun(name, calls, steps_per_call, first, later, totals)


def simulate_pipeline(
    pipeline: Pipeline,
    spec: HardwareSpec,
    weights: str,
    activations: str,
    precision: str,
    attention: AttentionMode = AttentionMode.CAPTURED,
) -> PipelineRun:
    """Every phase at the given precisions with the default schedule, totals per run."""
    runs = tuple(
        simulate_phase(
            p.name,
            op_workload(p.graph, weights, activations, attention),
            spec,
            precision,
            p.calls,
            steps_per_call=p.steps_per_call,
        )
        for p in pipeline.phases
    )
    return pipeline_run(pipeline, spec, precision, runs)


def pipeline_run(
    pipeline: Pipeline, spec: HardwareSpec, precision: str, runs: tuple[PhaseRun, ...]
) -> PipelineRun:
    """The run's totals from its phases' (simulated or planned)."""
    totals = summed([(r.totals, 1) for r in runs], _peak(spec, precision))
    return PipelineRun(pipeline.name, pipeline.unit, pipeline.description, spec.name,
                       precision, runs, totals)  # fmt: skip
