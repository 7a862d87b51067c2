"""The planner: MILP optimum equals brute force, plans are feasible in the simulator,
and the choices behave as the physics says they should."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from edgewise import EdgewiseError, capture
from edgewise.cli.main import app
from edgewise.hardware.spec import load_spec
from edgewise.plan import problem as problem_module
from edgewise.plan.cost import evaluate
from edgewise.plan.greedy import solve_greedy
from edgewise.plan.milp import solve_milp
from edgewise.plan.plan import gap_decisions, planned_tensors
from edgewise.plan.planner import make_plan
from edgewise.plan.problem import plan_problem
from edgewise.simulate.simulator import simulate
from edgewise.simulate.workload import op_workload
from tests.test_memory import GenUNet
from tests.test_simulate import TINY


def spec(*extra: str):  # type: ignore[no-untyped-def]
    return load_spec("generic-npu", [*TINY, *extra])


def _problem(depth: int, *extra: str, places: int = 2):  # type: ignore[no-untyped-def]
    graph = capture(GenUNet(depth, ch=4), torch.randn(1, 4, 32, 32))
    work = op_workload(graph, "int8", "int8")
    hw = spec(*extra)
    baseline = simulate(work, hw, "int8")
    old = problem_module.MAX_PLACES
    problem_module.MAX_PLACES = places
    try:
        return graph, work, hw, plan_problem(graph, work, baseline, hw, long_lived_ops=2)
    finally:
        problem_module.MAX_PLACES = old


def _brute_force(problem, objective):  # type: ignore[no-untyped-def]
    options = [
        [("keep", -1), ("spill", -1), *(("recompute", j) for j in t.places)]
        for t in problem.tensors
    ]
    best = None
    for choices in itertools.product(*options):
        result = evaluate(problem, choices)
        if result.feasible and (best is None or result.objective(objective) < best):
            best = result.objective(objective)
    return best


CASES = [
    (3, ("sram_bytes=64KiB",)),
    (4, ("sram_bytes=24KiB",)),
    (4, ("sram_bytes=40KiB", "dram_bandwidth_bytes_per_s=2e8")),
    (5, ("sram_bytes=48KiB", "dram_bandwidth_bytes_per_s=1e8", "clock_hz=4e9")),
]


@pytest.mark.parametrize(("depth", "extra"), CASES)
@pytest.mark.parametrize("objective", ["latency", "energy", "dram"])
def test_milp_equals_brute_force(depth: int, extra: tuple[str, ...], objective: str) -> None:
    _graph, _work, _hw, problem = _problem(depth, *extra)
    assert 1 <= len(problem.tensors) <= 10
    exact = _brute_force(problem, objective)
    result = solve_milp(problem, objective)
    if exact is None:
        assert result.status == "infeasible"
        return
    assert result.status == "optimal"
    assert result.objective == pytest.approx(exact, rel=1e-6)
    greedy = solve_greedy(problem, objective)
    assert greedy.objective is not None and greedy.objective >= exact * (1 - 1e-9)


@pytest.mark.parametrize(("depth", "extra"), CASES)
def test_every_plan_is_feasible_in_the_simulator(depth: int, extra: tuple[str, ...]) -> None:
    graph, work, hw, problem = _problem(depth, *extra)
    for solver in (solve_milp, solve_greedy):
        result = solver(problem, "latency")
        if result.choices is None:
            continue
        tensors = planned_tensors(problem, graph, result.choices)
        sim = simulate(work, hw, "int8", gap_decisions(tensors))
        assert sim.totals.feasible
        assert sim.totals.peak_sram_bytes <= hw.sram_bytes


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
        spec("sram_bytes=4KiB"),
        "int8",
        "int8",
        "int8",
        allow=frozenset({"keep"}),
        long_lived_ops=2,
    )
    assert outcome.result.status == "infeasible" and outcome.plan is None
    need = outcome.result.min_sram_bytes
    assert need is not None and need > 4 * 1024
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


def test_time_limit_returns_the_best_plan_found() -> None:
    _graph, _work, _hw, problem = _problem(5, "sram_bytes=48KiB", places=6)
    result = solve_milp(problem, "latency", time_limit_s=1e-9)
    assert result.status == "time-limit"  # no time to prove anything
    assert result.choices is not None and evaluate(problem, result.choices).feasible
    exact = solve_milp(problem, "latency")
    assert result.objective is not None and exact.objective is not None
    assert result.objective >= exact.objective * (1 - 1e-9)  # the stand-in is a real plan
    assert result.gap is None or result.gap >= 0  # a gap only where HiGHS had a bound


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

    graph, work, hw, problem = _problem(2, "sram_bytes=24KiB", places=2)
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
def test_precision_milp_equals_brute_force_within_the_budget(
    tmp_path: Path, budget: float | None
) -> None:
    from edgewise.plan.cost import Knobs

    _graph, _work, _hw, problem = _knob_problem(tmp_path, budget)
    tensor_options = [
        [("keep", -1), ("spill", -1), *(("recompute", j) for j in t.places)]
        for t in problem.tensors
    ]
    best = None
    for weights in itertools.product(*(layer.options for layer in problem.layers)):
        for choices in itertools.product(*tensor_options):
            result = evaluate(problem, choices, Knobs(weights, ()))
            if result.feasible and (best is None or result.dram_bytes < best):
                best = result.dram_bytes
    milp = solve_milp(problem, "dram")
    assert milp.status == "optimal" and milp.objective == pytest.approx(best, rel=1e-6)
    errors = sum(
        layer.errors[layer.options.index(o)]
        for layer, o in zip(problem.layers, milp.knobs.weights, strict=True)
    )
    if budget is not None:
        assert errors <= budget + 1e-9
    if budget == 0.0:
        assert set(milp.knobs.weights) == {"int8"}
    if budget is None:
        assert set(milp.knobs.weights) == {"int2"}  # nothing limits it: the fewest bytes
    greedy = solve_greedy(problem, "dram")
    assert greedy.objective is not None and greedy.objective >= best * (1 - 1e-9)


def test_precision_floors_hold(tmp_path: Path) -> None:
    _graph, _work, _hw, problem = _knob_problem(tmp_path, None, floors=["ups.*=int8", "mid=int4"])
    result = solve_milp(problem, "dram")
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
    assert [a.mode for a in outcome.plan.attention] == ["tiled"]
    # materializing 2 x 2 heads x 512 x 512 int8 scores would cross DRAM twice
    materialized = outcome.problem.attention[0].materialized_dram_bytes
    assert materialized == 2 * (2 * 2 * 512 * 512)


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
