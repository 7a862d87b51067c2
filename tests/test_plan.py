"""The planner: MILP optimum equals brute force, plans are feasible in the simulator,
and the choices behave as the physics says they should."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from edgewise import EdgewiseError, capture
from edgewise.cli.main import app
from edgewise.hardware.spec import load_spec
from edgewise.ir.vocab import Action, Objective
from edgewise.plan.greedy import figure, pins_for, solve_greedy
from edgewise.plan.milp import PlanFigure, solve_milp
from edgewise.plan.planner import make_plan
from edgewise.plan.problem import plan_problem
from edgewise.simulate.simulator import simulate
from edgewise.simulate.workload import op_workload
from tests.models import tiny_unet
from tests.test_memory import GenUNet
from tests.test_simulate import TINY


def spec(*extra: str):  # type: ignore[no-untyped-def]
    return load_spec("generic-npu", [*TINY, *extra])


def _problem(depth: int, *extra: str, long_lived: int = 2):  # type: ignore[no-untyped-def]
    graph = capture(GenUNet(depth, ch=4), torch.randn(1, 4, 32, 32))
    work = op_workload(graph, "int8", "int8")
    hw = spec(*extra)
    baseline = simulate(work, hw, "int8")
    return graph, work, hw, plan_problem(graph, work, baseline, hw, long_lived_ops=long_lived)


def _value(sim, objective: str) -> float:  # type: ignore[no-untyped-def]
    return figure(sim, Objective(objective))


CASES = [
    (3, ("sram_bytes=64KiB",)),
    (4, ("sram_bytes=24KiB",)),
    (4, ("sram_bytes=40KiB", "dram_bandwidth_bytes_per_s=2e8")),
    (5, ("sram_bytes=48KiB", "dram_bandwidth_bytes_per_s=1e8", "clock_hz=4e9")),
    (4, ("sram_bytes=24KiB", "overlap_compute_dma=false")),
]


@pytest.mark.parametrize(("depth", "extra"), CASES)
@pytest.mark.parametrize("objective", ["latency", "energy", "dram"])
def test_milp_figure_is_the_simulators_and_beats_every_enumerated_plan(
    depth: int, extra: tuple[str, ...], objective: str
) -> None:
    """Combinations of long-lived choices (every candidate position; the first 400), the
    rest of the schedule by the default policy, simulated: none beats the MILP; and the
    MILP's figure is the simulator's for its own plan."""
    _graph, work, hw, problem = _problem(depth, *extra)
    assert 1 <= len(problem.tensors) <= 10
    result = solve_milp(problem, Objective(objective))
    assert result.status == "optimal" and result.schedule is not None
    own = simulate(work, hw, "int8", schedule=result.schedule)
    assert own.totals.feasible
    assert result.objective == pytest.approx(_value(own, objective), rel=1e-6)
    options = [
        [("keep", -1), ("spill", -1), *(("recompute", j) for j in t.places)]
        for t in problem.tensors
    ]
    combos = list(itertools.islice(itertools.product(*options), 400))
    checked = 0
    for choices in combos:
        sim = simulate(work, hw, "int8", pins_for(problem, choices))
        if sim.totals.feasible:
            assert _value(sim, objective) >= result.objective * (1 - 1e-7)
            checked += 1
    assert checked >= min(len(combos), 10)


@pytest.mark.parametrize(
    "model", ["tiny-unet", "sd15-256", "tiny-unet-compiled", "tiny-unet-cached"]
)
@pytest.mark.parametrize("overlap", [True, False])
def test_planner_figure_equals_simulator_on_random_plans(model: str, overlap: bool) -> None:
    """100 random plans: the MILP's model of each (decisions fixed, the rest an LP) equals
    the simulator's figure within 0.1% (in practice to rounding); also with a vendor
    compiler's physics on (fusion, per-op overhead, efficiencies, preloaded weights)."""
    import random

    if model.startswith("tiny-unet"):
        m, args = tiny_unet()
        graph = capture(m, *args)
        sets = ["sram_bytes=96KiB"]
        if model.endswith("cached"):
            sets = ["sram_bytes=160KiB", "weights_resident=true", "weights_cached=true",
                    "weights_preloaded=true"]  # fmt: skip
        if model.endswith("compiled"):
            sets += ["fuse_epilogues=true", "op_overhead_s=2e-6", "mac_efficiency=0.7",
                     "depthwise_efficiency=0.1", "weight_compression=0.75"]  # fmt: skip
    else:
        from edgewise.capture.zoo import Workload, capture_zoo

        graph = capture_zoo("sd15-unet", Workload(resolution=256))
        sets = []
    hw = load_spec("generic-npu", [*sets, f"overlap_compute_dma={str(overlap).lower()}"])
    work = op_workload(graph, "int8", "int8")
    problem = plan_problem(graph, work, simulate(work, hw, "int8"), hw, long_lived_ops=30)
    assert problem.tensors
    figures = {o: PlanFigure(problem, o) for o in Objective}
    rng = random.Random(0)
    checked = 0
    for _ in range(400):
        if checked == 100:
            break
        choices = tuple(
            rng.choice([("keep", -1), ("spill", -1), ("recompute", rng.choice(t.places))])
            for t in problem.tensors
        )
        rebuilt = {t.storage_id for t, (a, _) in zip(problem.tensors, choices, strict=True)
                   if a == "recompute"}  # fmt: skip
        choices = tuple(  # no chains (the MILP's rule): a rebuilt source's reader spills
            (Action.SPILL, -1) if a == "recompute" and rebuilt & set(t.sources) else (Action(a), j)
            for t, (a, j) in zip(problem.tensors, choices, strict=True)
        )
        sim = simulate(work, hw, "int8", pins_for(problem, choices))
        if not sim.totals.feasible:
            continue
        value = figures[Objective.LATENCY](sim.schedule, choices)
        assert value == pytest.approx(sim.totals.latency_s, rel=1e-3)
        energy = figures[Objective.ENERGY](sim.schedule, choices)
        assert energy == pytest.approx(sim.totals.energy_j, rel=1e-3)
        dram = figures[Objective.DRAM](sim.schedule, choices)
        assert dram == pytest.approx(sim.totals.dram_bytes, rel=1e-3)
        checked += 1
    assert checked == 100


ALLOW_SETS = [
    frozenset(c)
    for r in (1, 2, 3)
    for c in itertools.combinations(("keep", "spill", "recompute"), r)
]


@pytest.fixture(scope="module")
def tiny() -> tuple:  # type: ignore[type-arg]
    m, args = tiny_unet()
    graph = capture(m, *args)
    return graph, op_workload(graph, "int8", "int8")


def _solve_at(tiny, kib: int, objective: str, allow: frozenset[str]):  # type: ignore[no-untyped-def]
    graph, work = tiny
    hw = load_spec("generic-npu", [f"sram_bytes={kib}KiB"])
    problem = plan_problem(graph, work, simulate(work, hw, "int8"), hw)
    result = solve_milp(problem, Objective(objective), frozenset(Action(a) for a in allow))
    if result.schedule is None:
        return None, result
    sim = simulate(work, hw, "int8", schedule=result.schedule)
    assert sim.totals.feasible
    assert _value(sim, objective) == pytest.approx(result.objective, rel=1e-6)
    return _value(sim, objective), result


@pytest.mark.parametrize("objective", ["latency", "energy", "dram"])
@pytest.mark.parametrize("allow", ALLOW_SETS, ids=lambda a: "+".join(sorted(a)))
def test_sram_sweep_is_monotone(tiny, objective: str, allow: frozenset[str]) -> None:  # type: ignore[no-untyped-def]
    """40-300 KiB on the tiny U-Net (13 KiB steps here; `benchmarks/plan.py --sweep` runs
    1 KiB steps): once feasible always feasible, never worse with more SRAM."""
    feasible, previous = False, None
    for kib in range(40, 301, 13):
        value, result = _solve_at(tiny, kib, objective, allow)
        if value is None:
            assert not feasible, f"infeasible at {kib} KiB after a feasible size"
            need = result.min_sram_bytes
            assert need is None or need < 0 or need > kib * 1024
            continue
        feasible = True
        if previous is not None:
            assert value <= previous * (1 + 1e-6), f"worse at {kib} KiB"
        previous = value


def test_sram_sweep_in_1kib_steps(tiny) -> None:  # type: ignore[no-untyped-def]
    previous = None
    for kib in range(40, 301):
        value, _ = _solve_at(tiny, kib, "latency", frozenset({"keep", "spill", "recompute"}))
        assert value is not None
        if previous is not None:
            assert value <= previous * (1 + 1e-6), f"worse at {kib} KiB"
        previous = value


def test_sd15_sram_sweep_is_monotone() -> None:
    from edgewise.capture.zoo import Workload, capture_zoo

    graph = capture_zoo("sd15-unet", Workload(resolution=256))
    previous = None
    for mib in np.geomspace(0.25, 32, 20):
        hw = load_spec("generic-npu", [f"sram_bytes={int(mib * 2**20)}"])
        outcome = make_plan(graph, hw, "int8", "int8", "int8", "dram")
        assert outcome.plan is not None
        value = outcome.simulations["plan"].totals.dram_bytes
        for name in ("spill-all", "keep-fit"):
            assert value <= outcome.simulations[name].totals.dram_bytes
        if previous is not None:
            assert value <= previous
        previous = value


def test_no_spill_when_everything_fits() -> None:
    graph = capture(GenUNet(4, ch=4), torch.randn(1, 4, 32, 32))
    outcome = make_plan(graph, spec("sram_bytes=16MiB"), "int8", "int8", "int8", long_lived_ops=2)
    assert outcome.plan is not None and outcome.result.status == "optimal"
    assert {t.action for t in outcome.plan.tensors} == {"keep"}
    assert outcome.simulations["plan"].totals.spilled_bytes == 0


class CheapSkip(nn.Module):
    """A skip that a 1x1 conv makes cheaply, held across a long, weight-heavy middle."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(4, 16, 1)
        self.middle = nn.Sequential(*(nn.Linear(256, 256) for _ in range(6)))
        self.head = nn.Conv2d(16, 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.stem(x)
        y = self.middle(skip.flatten(2)).view_as(skip)
        return self.head(y) + skip


def test_recompute_chosen_when_dram_is_slow_and_compute_idles() -> None:
    graph = capture(CheapSkip(), torch.randn(1, 4, 16, 16))
    # DRAM-bound middle (streamed weights), tiny SRAM: spilling the skip costs DRAM time,
    # recomputing it costs one cheap 1x1 conv that hides in a memory-bound op
    slow = spec("sram_bytes=12KiB", "dram_bandwidth_bytes_per_s=1e8", "clock_hz=4e9")
    outcome = make_plan(
        graph,
        slow,
        "int8",
        "int8",
        "int8",
        allow=frozenset({"spill", "recompute"}),
        long_lived_ops=3,
    )
    assert outcome.plan is not None
    actions = {t.name: t.action for t in outcome.plan.tensors}
    assert actions.get("stem") == "recompute", actions
    sims = outcome.simulations
    assert sims["plan"].totals.dram_bytes < sims["spill-all"].totals.dram_bytes
    assert sims["plan"].totals.latency_s <= sims["spill-all"].totals.latency_s


def test_infeasible_budget_reports_the_minimum_sram() -> None:
    graph = capture(GenUNet(3, ch=4), torch.randn(1, 4, 32, 32))
    outcome = make_plan(
        graph,
        spec("sram_bytes=1KiB"),
        "int8",
        "int8",
        "int8",
        allow=frozenset({"keep"}),
        long_lived_ops=2,
    )
    assert outcome.result.status == "infeasible" and outcome.plan is None
    need = outcome.result.min_sram_bytes
    assert need is not None and need > 1024
    again = make_plan(
        graph,
        spec(f"sram_bytes={need}"),
        "int8",
        "int8",
        "int8",
        allow=frozenset({"keep"}),
        long_lived_ops=2,
    )
    assert again.result.status == "optimal"
    less = make_plan(graph, spec(f"sram_bytes={need - 1024}"), "int8", "int8", "int8",
                     allow=frozenset({"keep"}), long_lived_ops=2)  # fmt: skip
    assert less.result.status == "infeasible"  # the minimum, to the KiB


def test_time_limit_returns_a_real_plan() -> None:
    graph, _work, hw, _ = _problem(5, "sram_bytes=48KiB")
    outcome = make_plan(graph, hw, "int8", "int8", "int8", time_limit_s=1e-9)
    assert outcome.result.status in ("time-limit", "optimal")
    assert outcome.plan is not None and outcome.simulations["plan"].totals.feasible
    exact = make_plan(graph, hw, "int8", "int8", "int8")
    assert outcome.plan.objective_value >= exact.plan.objective_value * (1 - 1e-9)


def test_greedy_is_the_simulators_figure() -> None:
    _graph, work, hw, problem = _problem(4, "sram_bytes=24KiB")
    result = solve_greedy(problem, Objective.DRAM)
    assert result.schedule is not None
    sim = simulate(work, hw, "int8", schedule=result.schedule)
    assert result.objective == sim.totals.dram_bytes
    assert result.objective >= solve_milp(problem, Objective.DRAM).objective


def test_plan_cli_round_trip(tmp_path: Path) -> None:
    runner = CliRunner()
    plan_file, js = tmp_path / "plan.json", tmp_path / "out.json"
    args = [
        "plan",
        "--module",
        "tests.models:tiny_cnn",
        "--set",
        "sram_bytes=8KiB",
        "-o",
        str(plan_file),
        "--json",
        str(js),
        "--long-lived",
        "2",
        "--plot",
        str(tmp_path / "p.png"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(js.read_text())
    assert {"status", "gap", "plan", "totals"} <= set(data)
    assert set(data["totals"]) == {"spill-all", "keep-fit", "recompute-all", "plan"}
    for alt in data["totals"].values():
        assert {"latency_s", "energy_j", "dram_bytes", "peak_sram_bytes"} <= set(alt)
    sim = runner.invoke(
        app,
        [
            "simulate",
            "--module",
            "tests.models:tiny_cnn",
            "--set",
            "sram_bytes=8KiB",
            "--plan",
            str(plan_file),
            "--json",
            "-",
        ],
    )
    assert sim.exit_code == 0, sim.output
    assert json.loads(sim.stdout)["totals"]["latency_s"] == pytest.approx(
        data["totals"]["plan"]["latency_s"]
    )
    other = runner.invoke(
        app, ["simulate", "--module", "tests.models:tiny_cnn_with_kwargs", "--plan", str(plan_file)]
    )
    assert isinstance(other.exception, EdgewiseError) and "plan" in str(other.exception)


# --------------------------------------------------------------------------- knobs


def _knob_problem(tmp_path: Path, budget: float | None, floors=()):  # type: ignore[no-untyped-def]
    from edgewise.plan.knobs import load_sensitivity, parse_floors, with_precision

    graph, work, hw, problem = _problem(2, "sram_bytes=24KiB")
    layers = sorted({graph.ops[i].scope for i in range(len(graph.ops)) if work.weight_bytes[i]})
    sens = tmp_path / "sens.json"
    sens.write_text(json.dumps({"layers": {name: {"int4": 0.1, "int2": 0.5} for name in layers}}))
    table = load_sensitivity(sens) if budget is not None else None
    return (
        graph,
        work,
        hw,
        with_precision(problem, graph, work, parse_floors(list(floors)), table, budget),
    )


@pytest.mark.parametrize("budget", [None, 0.0, 0.25, 0.6])
def test_precision_plan_holds_the_budget_and_simulates_as_solved(
    tmp_path: Path, budget: float | None
) -> None:
    _graph, _work, hw, problem = _knob_problem(tmp_path, budget)
    result = solve_milp(problem, Objective.DRAM, frozenset({Action.KEEP, Action.SPILL}))
    assert result.status == "optimal"
    spent = sum(
        layer.errors[layer.options.index(o)]
        for layer, o in zip(problem.layers, result.knobs.weights, strict=True)
    )
    assert budget is None or spent <= budget + 1e-9
    from edgewise.plan.knobs import knob_workload

    sim = simulate(knob_workload(problem, result.knobs), hw, "int8", schedule=result.schedule)
    assert result.objective == pytest.approx(sim.totals.dram_bytes, rel=1e-6)


def test_precision_floors_hold(tmp_path: Path) -> None:
    _graph, _work, _hw, problem = _knob_problem(tmp_path, None, floors=["ups.*=int8", "mid=int4"])
    result = solve_milp(problem, Objective.DRAM)
    chosen = dict(zip((layer.name for layer in problem.layers), result.knobs.weights, strict=True))
    assert all(p == "int8" for name, p in chosen.items() if name.startswith("ups."))
    assert chosen["mid"] == "int4"
    assert all(p == "int2" for name, p in chosen.items() if name.startswith("downs."))


class LongAttention(nn.Module):
    def __init__(self, dim: int = 32, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        return (
            torch.nn.functional.scaled_dot_product_attention(q, k, v)
            .transpose(1, 2)
            .reshape(b, n, c)
        )


def test_long_attention_is_tiled_when_its_scores_do_not_fit() -> None:
    graph = capture(LongAttention(), torch.randn(1, 512, 32))
    outcome = make_plan(
        graph,
        spec("sram_bytes=64KiB"),
        "int8",
        "int8",
        "int8",
        "energy",
        allow=frozenset({"spill", "tiling"}),
    )
    assert outcome.plan is not None
    assert [a.mode for a in outcome.plan.attention] == ["fused"]
    # 2 heads x 512 x 512 int8 scores and their softmax do not fit 64 KiB beside the operands
    assert outcome.problem.attention[0].scores_bytes == 2 * (2 * 512 * 512)


def test_plan_with_knobs_round_trips_through_simulate(tmp_path: Path) -> None:
    runner = CliRunner()
    plan_file, js = tmp_path / "plan.json", tmp_path / "out.json"
    args = [
        "plan",
        "--module",
        "tests.models:tiny_cnn",
        "--set",
        "sram_bytes=8KiB",
        "-o",
        str(plan_file),
        "--json",
        str(js),
        "--allow",
        "spill,recompute,precision,tiling",
        "--floor",
        "head=int8",
        "--objective",
        "dram",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = json.loads(plan_file.read_text())
    assert saved["weights"] and "head" not in saved["weights"]
    sim = runner.invoke(
        app,
        [
            "simulate",
            "--module",
            "tests.models:tiny_cnn",
            "--set",
            "sram_bytes=8KiB",
            "--plan",
            str(plan_file),
            "--json",
            "-",
        ],
    )
    expected = json.loads(js.read_text())["totals"]["plan"]
    assert json.loads(sim.stdout)["totals"]["dram_bytes"] == expected["dram_bytes"]
    bad = runner.invoke(
        app, ["plan", "--module", "tests.models:tiny_cnn", "--accuracy-budget", "0.1"]
    )
    assert isinstance(bad.exception, EdgewiseError) and "precision" in str(bad.exception)


class InPlaceSkip(nn.Module):
    """The skip is finished by an in-place op: rebuilding it must re-run that op too."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(4, 8, 1)
        self.middle = nn.Sequential(*(nn.Conv2d(8, 8, 3, padding=1) for _ in range(4)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.stem(x)
        skip.relu_()
        return self.middle(skip) + skip


def test_recompute_segment_includes_in_place_writers() -> None:
    graph = capture(InPlaceSkip(), torch.randn(1, 4, 8, 8))
    work = op_workload(graph, "int8", "int8")
    problem = plan_problem(graph, work, simulate(work, spec(), "int8"), spec(), long_lived_ops=3)
    (skip,) = [t for t in problem.tensors if t.name == "stem"]
    names = [graph.ops[i].name for i in skip.segment]
    assert names == ["convolution", "relu_"]
    assert skip.input_sources  # the model input it is rebuilt from


def test_infeasible_budget_with_output_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    args = ["plan", "--module", "tests.models:tiny_unet", "--set", "sram_bytes=1KiB",
            "--allow", "keep", "--long-lived", "30", "-o", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and isinstance(result.exception, EdgewiseError)
    assert "was not written" in str(result.exception)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_nothing_to_plan_says_what_bounds_the_model() -> None:
    graph = capture(nn.Sequential(nn.Linear(64, 64), nn.ReLU()), torch.randn(4, 64))
    outcome = make_plan(
        graph, spec(), "int8", "int8", "int8", allow=frozenset({"keep", "spill", "recompute"})
    )
    assert outcome.result.status == "nothing-to-plan" and outcome.plan is not None
    assert "nothing to plan" in outcome.note and "of DRAM bytes" in outcome.note


def test_a_version_1_plan_is_refused_with_the_command_that_rewrites_it(tmp_path: Path) -> None:
    from edgewise.plan.plan import load_plan

    graph = capture(CheapSkip(), torch.randn(1, 4, 16, 16))
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema": "edgewise.plan", "version": 1, "tensors": []}))
    with pytest.raises(EdgewiseError, match=r"schema v1.*edgewise plan MODEL"):
        load_plan(old, graph)


def test_latency_bound_is_on_the_objective_itself() -> None:
    _graph, _work, _hw, problem = _problem(4, "sram_bytes=24KiB")
    result = solve_milp(problem, Objective.LATENCY)
    assert result.status == "optimal" and result.bound is not None
    assert result.bound <= result.objective * (1 + 1e-9)
    assert result.bound >= result.objective * (1 - 1e-6)  # proven: the gap is real, not clipped


class SkipChain(nn.Module):
    """Four ops and four gaps: small enough to enumerate every schedule there is."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 1)
        self.body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.stem(x)
        return self.body(a) + a


@pytest.mark.parametrize("sets", [("sram_bytes=300",), ("sram_bytes=520",),
                                  ("sram_bytes=800", "overlap_compute_dma=false")])  # fmt: skip
def test_milp_equals_brute_force_over_every_decision(sets: tuple[str, ...]) -> None:
    """Every keep/off choice of every gap, every tiling of every op, every action and
    position of the long-lived tensor, costed by the simulator: the best equals the MILP."""
    from edgewise.simulate.schedule import Recompute, Schedule

    graph = capture(SkipChain(), torch.randn(1, 2, 8, 8))
    work = op_workload(graph, "int8", "int8")
    hw = spec(*sets, "dram_bandwidth_bytes_per_s=1e7")
    problem = plan_problem(graph, work, simulate(work, hw, "int8"), hw, long_lived_ops=1)
    assert len(problem.tensors) == 1
    planned = {t.gap for t in problem.tensors}
    others = [g for g in range(work.n_gaps) if g not in planned]
    options = [[("keep", -1), ("spill", -1), *(("recompute", j) for j in t.places)]
               for t in problem.tensors]  # fmt: skip
    sims = []
    for keep in itertools.product([False, True], repeat=len(others)):
        for tiled in itertools.product([False, True], repeat=work.n_ops):
            for choices in itertools.product(*options):
                kept = np.zeros(work.n_gaps, dtype=bool)
                kept[others] = keep
                rebuilds = []
                for t, (action, at) in zip(problem.tensors, choices, strict=True):
                    kept[t.gap] = action == "keep"
                    if action == "recompute":
                        rebuilds.append(Recompute(t.storage_id, t.gap, at, t.segment,
                                                  t.all_sources))  # fmt: skip
                schedule = Schedule(problem.capacity_bytes, kept, np.array(tiled), tuple(rebuilds))
                sims.append(simulate(work, hw, "int8", schedule=schedule))
    assert sum(s.totals.feasible for s in sims) < len(sims)  # the budget binds somewhere
    for objective in Objective:
        best = min(figure(s, objective) for s in sims)
        result = solve_milp(problem, objective)
        assert result.status == "optimal"
        assert result.objective == pytest.approx(best, rel=1e-9)


def test_recompute_alone_returns_the_recompute_all_baseline(tiny) -> None:  # type: ignore[no-untyped-def]
    graph, _work = tiny
    outcome = make_plan(graph, load_spec("generic-npu", ["sram_bytes=96KiB"]), "int8", "int8",
                        "int8", allow=frozenset({"recompute"}), long_lived_ops=30)  # fmt: skip
    assert outcome.result.status == "baseline" and outcome.plan is not None
    assert {t.action for t in outcome.plan.tensors} == {"recompute"}
    assert outcome.simulations["plan"].totals.feasible
    assert "recompute-all" in outcome.note
