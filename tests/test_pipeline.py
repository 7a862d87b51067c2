"""Pipelines (phases x calls) and weights held on chip across a phase's calls."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import edgewise
from edgewise import capture
from edgewise.cli.main import app
from edgewise.errors import EdgewiseError
from edgewise.hardware.spec import load_spec
from edgewise.ir.pipeline import Phase, Pipeline
from edgewise.plan.planner import make_plan
from edgewise.simulate.pipeline import simulate_phase, simulate_pipeline, summed
from edgewise.simulate.schedule import Schedule, belady
from edgewise.simulate.simulator import activation_capacity, simulate
from edgewise.simulate.workload import op_workload
from tests.models import tiny_cnn, tiny_unet


def _tiny_unet(batch: int):  # type: ignore[no-untyped-def]
    model, (sample, t, text) = tiny_unet()
    return capture(model, sample.expand(batch, -1, -1, -1), t, text.expand(batch, -1, -1))


def _cnn():  # type: ignore[no-untyped-def]
    model, args = tiny_cnn()
    return capture(model, *args)


def _mlp(widths: tuple[int, ...] = (64, 512, 256, 384, 128, 256, 16)):  # type: ignore[no-untyped-def]
    """Six linear layers of different sizes: a knapsack for a small SRAM."""
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return capture(nn.Sequential(*layers[:-1]), torch.randn(4, widths[0]))


def test_pipeline_totals_are_the_phases_times_their_calls() -> None:
    spec = load_spec("generic-npu", ["sram_bytes=256KiB"])
    unet, cnn = _tiny_unet(1), _cnn()
    pipe = Pipeline("toy", (Phase("cnn", cnn, 1), Phase("unet", unet, 7, steps_per_call=1.0)))
    run = simulate_pipeline(pipe, spec, "int8", "int8", "int8")
    one = simulate(op_workload(unet, "int8", "int8"), spec, "int8").totals
    cnn_t = simulate(op_workload(cnn, "int8", "int8"), spec, "int8").totals
    # a streaming spec holds nothing across calls: every call costs the same
    assert run.phases[1].later.totals.latency_s == pytest.approx(one.latency_s)
    assert run.totals.latency_s == pytest.approx(cnn_t.latency_s + 7 * one.latency_s)
    assert run.totals.energy_j == pytest.approx(cnn_t.energy_j + 7 * one.energy_j)
    assert run.totals.dram_bytes == cnn_t.dram_bytes + 7 * one.dram_bytes
    assert run.totals.macs == cnn_t.macs + 7 * one.macs
    assert run.totals.peak_sram_bytes == max(cnn_t.peak_sram_bytes, one.peak_sram_bytes)
    assert run.steps == 7 and run.steps_per_s == pytest.approx(7 / (7 * one.latency_s))


def test_weights_that_fit_are_read_from_dram_by_the_first_call_only() -> None:
    graph = _tiny_unet(1)
    work = op_workload(graph, "int8", "int8")
    spec = load_spec("generic-npu", ["weights_resident=true", "sram_bytes=16MiB"])
    assert work.total_weight_bytes < 16 * 2**20
    phase = simulate_phase("unet", work, spec, "int8", calls=5)
    assert phase.first.totals.dram_weight_bytes == work.total_weight_bytes
    assert phase.later.totals.dram_weight_bytes == 0
    assert phase.totals.dram_weight_bytes == work.total_weight_bytes


def test_more_sram_never_more_weight_traffic() -> None:
    """Planned residency over 25 calls: weight DRAM bytes per phase fall as SRAM grows."""
    graph = _mlp()
    traffic = []
    for kib in (8, 64, 160, 320, 640, 1024):
        spec = load_spec("generic-npu", [f"sram_bytes={kib}KiB"])
        outcome = make_plan(graph, spec, "int8", "int8", "int8", calls=25)
        traffic.append(outcome.simulations["plan"].totals.dram_weight_bytes)
    assert all(b <= a for a, b in itertools.pairwise(traffic)), traffic
    work = op_workload(graph, "int8", "int8")
    assert traffic[0] > 20 * work.total_weight_bytes  # hardly anything fits: streamed
    assert traffic[-1] == work.total_weight_bytes  # everything fits: loaded once


def test_cfg_batch_two_reads_the_weights_once_per_step() -> None:
    """Hand-computed: on a streaming spec every call reads every weight once (int8: one
    byte per parameter), so CFG as one batch-2 call per step reads the weights `steps`
    times and CFG as two batch-1 calls reads them 2 x `steps` times."""
    steps = 4
    spec = load_spec("generic-npu", ["sram_bytes=8MiB"])
    batched = Pipeline("b", (Phase("unet", _tiny_unet(2), steps, 1.0),))
    sequential = Pipeline("s", (Phase("unet", _tiny_unet(1), 2 * steps, 0.5),))
    params = batched.phases[0].graph.parameter_count
    b = simulate_pipeline(batched, spec, "int8", "int8", "int8")
    s = simulate_pipeline(sequential, spec, "int8", "int8", "int8")
    assert b.totals.dram_weight_bytes == steps * params
    assert s.totals.dram_weight_bytes == 2 * steps * params
    assert b.steps == s.steps == steps


@pytest.mark.parametrize("objective", ["latency", "energy", "dram"])
def test_residency_decisions_equal_brute_force(objective: str) -> None:
    """Every subset of layers held on chip, each costed by the simulator over 10 calls
    (the activations always fit beside them, so the default schedule is optimal for each):
    the MILP's plan is the best subset, and its own figure is the simulator's."""
    graph = _mlp()
    spec = load_spec("generic-npu", ["sram_bytes=320KiB"])
    work = op_workload(graph, "int8", "int8")
    outcome = make_plan(graph, spec, "int8", "int8", "int8", objective=objective, calls=10,
                        allow=frozenset({"keep", "spill", "residency"}))  # fmt: skip
    layers = outcome.problem.layers
    assert len(layers) == 6 and outcome.problem.residency
    capacity = activation_capacity(work, spec)[0]
    best = float("inf")
    field = {"latency": "latency_s", "energy": "energy_j", "dram": "dram_bytes"}[objective]
    for kept in itertools.product((False, True), repeat=len(layers)):
        mask = np.zeros(work.n_ops, dtype=bool)
        for layer, k in zip(layers, kept, strict=True):
            mask[list(layer.ops)] = k
        held = int(work.weight_bytes[mask].sum())
        if held + int(work.operand_bytes.max()) > capacity:
            continue
        free = belady(work, capacity - held)
        schedule = Schedule(capacity, free.kept, free.tiled, free.recompute, mask)
        run = simulate_phase("mlp", work, spec, "int8", 10, schedule)
        assert run.totals.feasible
        best = min(best, float(getattr(run.totals, field)))
    plan = outcome.plan
    assert plan is not None and outcome.result.status == "optimal"
    assert plan.objective_value == pytest.approx(best, rel=1e-9)
    assert plan.planner_value == pytest.approx(plan.objective_value, rel=1e-9)
    assert 0 < len(plan.resident) < len(layers)  # a real trade: some fit, not all


def test_one_call_holds_nothing_and_a_plan_file_keeps_the_held_layers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    graph = _mlp()
    spec = load_spec("generic-npu", ["sram_bytes=320KiB"])
    once = make_plan(graph, spec, "int8", "int8", "int8", calls=1)
    assert not once.problem.residency and once.plan is not None and not once.plan.resident
    many = make_plan(graph, spec, "int8", "int8", "int8", calls=10)
    assert many.plan is not None and many.plan.resident and many.plan.calls == 10
    from edgewise.plan.plan import load_plan, save_plan

    path = tmp_path / "plan.json"
    save_plan(many.plan, path)
    loaded = load_plan(path, graph)
    work = op_workload(graph, "int8", "int8")
    schedule = loaded.sram_schedule(work)
    again = simulate_phase("mlp", work, spec, "int8", loaded.calls, schedule)
    assert again.totals.latency_s == pytest.approx(many.plan.objective_value, rel=1e-12)


def test_summed_adds_and_takes_the_peak() -> None:
    spec = load_spec("generic-npu", [])
    t = simulate(op_workload(_cnn(), "int8", "int8"), spec, "int8").totals
    s = summed([(t, 3)], spec.peak_macs_per_s("int8"))
    assert s.latency_s == pytest.approx(3 * t.latency_s) and s.macs == 3 * t.macs
    assert s.peak_sram_bytes == t.peak_sram_bytes
    assert s.mac_utilization == pytest.approx(t.mac_utilization)


def test_pipeline_options_are_checked() -> None:
    with pytest.raises(EdgewiseError, match="called 1 to"):
        Phase("x", _cnn(), 0)
    runner = CliRunner()
    for args, says in (
        (["simulate", "resnet18", "--steps", "5"], "are for pipelines"),
        (["profile", "sd15", "--cfg-mode", "sequential"], "give --cfg with it"),
        (["memory", "sd15", "--cfg", "--cfg-mode", "both"], "batch or sequential"),
        (["simulate", "sd15", "--plot", "x.png"], "take one graph"),
    ):
        bad = runner.invoke(app, args)
        assert isinstance(bad.exception, EdgewiseError) and says in str(bad.exception), args


def test_sd15_pipeline_cli_per_phase_and_per_image() -> None:
    """`simulate sd15 --cfg`: three phases, the U-Net called once per step at batch 2."""
    result = CliRunner().invoke(
        app, ["simulate", "sd15", "--cfg", "--steps", "3", "--hw", "snapdragon-8gen3",
              "--json", "-"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    names = [p["name"] for p in data["phases"]]
    assert names == ["text-encoder", "unet", "vae-decoder"]
    assert [p["calls"] for p in data["phases"]] == [1, 3, 1]
    total = sum(p["totals"]["latency_s"] for p in data["phases"])
    assert data["totals"]["latency_s"] == pytest.approx(total)
    unet = data["phases"][1]
    assert unet["totals"]["latency_s"] == pytest.approx(3 * unet["first_call"]["latency_s"])
    assert data["steps"] == 3
    # the API: the same figures (its phases come from the graph cache the CLI filled)
    api = edgewise.simulate("sd15", cfg=True, steps=3, hw="snapdragon-8gen3")
    assert json.loads(json.dumps(api.to_dict())) == data
    assert [r["phase"] for r in api.rows] == names
    assert repr(api).endswith("per image on snapdragon-8gen3>")


def test_the_api_reports_a_pipeline(tmp_path: Path) -> None:
    """One section per phase (the phases come from the cache the CLI test filled)."""
    written = edgewise.report("sd15", cfg=True, steps=3, hw="snapdragon-8gen3",
                              output=tmp_path / "sd15.html")  # fmt: skip
    html = (tmp_path / "sd15.html").read_text()
    assert repr(written) == f"<edgewise report of sd15: written to {tmp_path / 'sd15.html'}>"
    assert all(name in html for name in ("text-encoder", "unet", "vae-decoder"))


def test_profile_and_memory_of_sd15_per_phase_and_per_image() -> None:
    runner = CliRunner()
    args = ["sd15", "--cfg", "--steps", "3", "--json", "-"]
    counts = json.loads(runner.invoke(app, ["profile", *args]).stdout)
    phases = counts["phases"]
    assert [p["calls"] for p in phases] == [1, 3, 1]
    assert counts["totals"]["macs"] == sum(p["per_call"]["macs"] * p["calls"] for p in phases)
    assert counts["totals"]["params"] == sum(p["per_call"]["params"] for p in phases)
    mem = json.loads(runner.invoke(app, ["memory", *args]).stdout)
    weights = sum(p["weight_bytes"] for p in mem["phases"])
    peaks = [p["peak_activation_bytes"] for p in mem["phases"]]
    assert mem["all_loaded_peak_bytes"] == weights + max(peaks)
    assert mem["one_loaded_peak_bytes"] == max(
        p["weight_bytes"] + p["peak_activation_bytes"] for p in mem["phases"]
    )
