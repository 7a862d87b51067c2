"""Executing plans on the real model: the interpreter replays the eager forward bit for
bit, recomputation and spilling save the memory edgewise predicts and change no output
bit, fake quantization stays close, and mistakes are one-line errors."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from edgewise import EdgewiseError, capture
from edgewise.analysis.memory import memory_timeline
from edgewise.execute.interpreter import bind, interpret, program, schedule
from edgewise.execute.measure import materialize
from edgewise.execute.run import PlanRun, run_plan
from edgewise.hardware.spec import load_spec
from edgewise.ir.categories import OpCategory
from edgewise.ir.graph import Graph, TensorKind
from edgewise.plan.plan import Plan, PlannedAttention, PlanPrecision, save_plan
from edgewise.plan.planner import plan_from_choices
from edgewise.plan.problem import plan_problem
from edgewise.simulate.simulator import simulate
from edgewise.simulate.workload import op_workload
from tests.models import tiny_cnn
from tests.test_memory import GenUNet, _tiny_unet, _tiny_vit

ROOT = Path(__file__).resolve().parents[1]
Real = tuple[Graph, nn.Module, tuple[Any, ...], dict[str, Any]]


def _real(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Real:
    graph = capture(model, *args, **kwargs)
    return (graph, *materialize(model, args, kwargs, "fp32", "cpu"))


@pytest.fixture(scope="module")
def unet() -> Real:
    return _real(*_tiny_unet())


def _plan(graph: Graph, actions: dict[str, str], default: str = "keep", **extra: Any) -> Plan:
    """A plan from the planner's own problem, each long-lived tensor chosen by its
    producer scope (recomputed just before it is needed)."""
    work = op_workload(graph, "fp16", "fp16")
    spec = load_spec("generic-npu", [])
    problem = plan_problem(graph, work, simulate(work, spec, "fp16"), spec, long_lived_ops=100)
    choices = []
    for t in problem.tensors:
        action = actions.get(t.name, default)
        choices.append((action, t.gap_end if action == "recompute" else -1))
    return plan_from_choices(
        problem, graph, tuple(choices), PlanPrecision("fp32", "fp32", "fp32"), **extra
    )


# --------------------------------------------------------------------------- replay


@pytest.mark.parametrize(
    "factory",
    [lambda: (*tiny_cnn(), {}), _tiny_vit, lambda: (GenUNet(3), (torch.randn(1, 4, 32, 32),), {})],
    ids=["cnn", "vit", "genunet"],
)
def test_interpreter_replays_eager_bit_for_bit(factory) -> None:  # type: ignore[no-untyped-def]
    """(The tiny UNet2DConditionModel: `test_unplanned_run_allocates_the_last_use_timeline`.)"""
    graph, model, args, kwargs = _real(*factory())
    with torch.no_grad():
        eager = [t for t in tree_flatten(model(*args, **kwargs))[0] if isinstance(t, torch.Tensor)]
    replayed = interpret(program(graph), bind(graph, model, args, kwargs), schedule(graph))
    assert len(replayed.outputs) == len(eager) > 0
    for a, b in zip(eager, replayed.outputs, strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)


def test_unplanned_run_allocates_the_last_use_timeline(unet: Real) -> None:
    graph = unet[0]
    run = run_plan(*unet)
    assert run.replay.bit_exact and run.fidelity.bit_exact
    assert run.baseline.peak_bytes == memory_timeline(graph).peak_bytes
    # a compiler's lifetimes never need more than eager PyTorch
    assert run.baseline.peak_bytes < run.eager.peak_bytes
    assert abs(run.eager.peak_bytes - run.eager.predicted_peak_bytes) <= 0.05 * run.eager.peak_bytes


# --------------------------------------------------------------------------- plans


def _saves_as_predicted(run: PlanRun) -> None:
    assert run.saved_bytes > 0
    assert abs(run.saved_bytes - run.predicted_saved_bytes) <= 0.1 * run.predicted_saved_bytes


def test_recomputing_the_conv_in_skip_saves_its_bytes_bit_exactly(unet: Real) -> None:
    graph = unet[0]
    run = run_plan(*unet, plan=_plan(graph, {"conv_in": "recompute"}))
    assert run.fidelity.bit_exact
    assert run.actions == {"keep": 6, "spill": 0, "recompute": 1}
    assert run.recomputed_ops == 1  # the conv that made it, from the model input
    # the tiny U-Net peaks in down_blocks.0, where only the conv_in skip (32 channels,
    # 32 x 32, fp32) waits for the up path: dropping it saves exactly its bytes
    assert run.predicted_saved_bytes == 32 * 32 * 32 * 4
    _saves_as_predicted(run)
    assert run.pool_peak_bytes == 0


def test_spilling_the_skip_saves_the_same_and_pools_it(unet: Real) -> None:
    graph = unet[0]
    run = run_plan(*unet, plan=_plan(graph, {"conv_in": "spill"}))
    assert run.fidelity.bit_exact
    assert run.predicted_saved_bytes == 32 * 32 * 32 * 4
    _saves_as_predicted(run)
    assert run.pool_peak_bytes == 32 * 32 * 32 * 4  # held outside the torch allocator


def test_recompute_all_chains_back_to_the_inputs_and_stays_exact(unet: Real) -> None:
    graph = unet[0]
    plan = _plan(graph, {}, default="recompute")
    run = run_plan(*unet, plan=plan)
    assert run.fidelity.bit_exact
    # rebuilding deep skips late costs more than it frees here, and edgewise says so
    for figures in (run.baseline, run.planned):
        assert abs(figures.peak_bytes - figures.predicted_peak_bytes) <= 0.05 * figures.peak_bytes
    # the ops re-run are the plan's segments plus the views they leave implicit
    moves = schedule(graph, plan).moves
    for t, move in zip((t for t in plan.tensors if t.action == "recompute"), moves, strict=True):
        assert move.replay is not None
        extra = set(move.replay.ops) - set(t.segment)
        assert set(t.segment) <= set(move.replay.ops)
        for i in extra:
            op = graph.ops[i]
            ins = {graph.tensors[x].storage_id for x in op.inputs}
            assert all(graph.tensors[o].storage_id in ins for o in op.outputs), op.target


def test_attention_tiled_is_exact_and_materialized_holds_its_scores(unet: Real) -> None:
    graph = unet[0]
    ops = [op.index for op in graph.ops if op.category is OpCategory.ATTENTION]
    assert ops

    def modes(mode: str) -> Plan:
        return _plan(graph, {}, attention=tuple(PlannedAttention(i, "", mode, 0, 0) for i in ops))

    tiled = run_plan(*unet, plan=modes("fused"))
    assert tiled.fidelity.bit_exact and tiled.attention == {"fused": len(ops)}  # query tiles
    materialized = run_plan(*unet, plan=modes("materialized"))
    assert not materialized.fidelity.bit_exact  # another summation order
    assert materialized.fidelity.sqnr_db > 100
    # the first self-attention at 32 x 32: 1024 x 1024 scores and their softmax per head
    q = graph.tensors[graph.ops[ops[0]].inputs[0]]
    heads = q.shape[1]
    assert materialized.planned.peak_bytes >= 2 * heads * 1024 * 1024 * 4
    planned = materialized.planned
    assert abs(planned.peak_bytes - planned.predicted_peak_bytes) <= 0.05 * planned.peak_bytes


def test_int8_weights_stay_close_and_fewer_bits_drift_further() -> None:
    vit = _real(*_tiny_vit())
    graph = vit[0]
    parameter_storages = {t.storage_id for t in graph.tensors_of_kind(TensorKind.PARAMETER)}
    layers = {
        op.scope
        for op in graph.ops
        if any(graph.tensors[t].storage_id in parameter_storages for t in op.inputs)
    }
    sqnr = {}
    for bits in ("int8", "int4"):
        run = run_plan(*vit, plan=_plan(graph, {}, weights=dict.fromkeys(layers, bits)))
        assert run.quantized_layers == len(layers) and run.activation_bits is None
        sqnr[bits] = run.fidelity.sqnr_db
    assert sqnr["int8"] > 30
    assert sqnr["int4"] < sqnr["int8"] - 12  # about 6 dB per bit
    plan = dataclasses.replace(
        _plan(graph, {}, weights=dict.fromkeys(layers, "int8")),
        precision=PlanPrecision("int8", "int8", "int8"),
    )
    both = run_plan(*vit, plan=plan)
    assert both.activation_bits == 8
    assert 30 < both.fidelity.sqnr_db < sqnr["int8"]


# --------------------------------------------------------------------------- the timeline


def test_gaps_remove_a_storage_between_its_uses() -> None:
    graph = capture(GenUNet(2), torch.randn(1, 4, 32, 32))
    tl = memory_timeline(graph, long_lived_ops=4)
    (row,) = tl.long_lived_table  # the first down's output, read on the way up
    start, resume = row.first_op, row.last_op
    gapped = memory_timeline(graph, long_lived_ops=4, gaps=[(row.storage_id, start, resume)])
    diff = (tl.live - gapped.live).tolist()
    assert row.bytes == 8 * 16 * 16 * 4
    assert diff == [row.bytes if start < i < resume else 0 for i in range(len(graph.ops))]
    with pytest.raises(EdgewiseError, match="outside its life"):
        memory_timeline(graph, gaps=[(row.storage_id, start, resume + 1)])


# --------------------------------------------------------------------------- errors


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgewise.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def _one_line_error(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr


def test_a_plan_for_another_model_is_refused(tmp_path: Path, unet: Real) -> None:
    cnn = _real(*tiny_cnn(), {})
    with pytest.raises(EdgewiseError, match="plan for another model"):
        run_plan(*cnn, plan=_plan(unet[0], {"conv_in": "recompute"}))
    plan_file = tmp_path / "plan.json"
    save_plan(_plan(unet[0], {"conv_in": "recompute"}), plan_file)
    done = _cli("run", "--module", "tests.models:tiny_cnn", "--plan", str(plan_file))
    _one_line_error(done, "is for UNet2DConditionModel")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_one_line_error() -> None:
    _one_line_error(
        _cli("run", "--module", "tests.models:tiny_cnn", "--device", "cuda"), "no CUDA GPU"
    )
    with pytest.raises(EdgewiseError, match="no CUDA GPU"):
        run_plan(*_real(*tiny_cnn(), {}), device="cuda")


def test_cli_writes_the_figures_with_real_weights(tmp_path: Path) -> None:
    from safetensors.torch import save_file
    from typer.testing import CliRunner

    from edgewise.cli.main import app
    from tests.models import TinyCNN

    weights, out = tmp_path / "cnn.safetensors", tmp_path / "run.json"
    save_file(TinyCNN().state_dict(), str(weights))
    args = [
        "run",
        "--module",
        "tests.models:tiny_cnn",
        "--weights",
        str(weights),
        "--repeat",
        "2",
        "--json",
        str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    keys = {
        "bit_exact",
        "max_abs_error",
        "sqnr_db",
        "cosine",
        "measured_peak_bytes",
        "baseline_peak_bytes",
        "eager_peak_bytes",
        "predicted_peak_bytes",
        "latency_s",
        "pool_peak_bytes",
        "repeat",
    }
    assert keys <= set(data)
    assert data["bit_exact"] is True and data["sqnr_db"] is None and data["repeat"] == 2
    assert data["measured_peak_bytes"] == data["predicted_peak_bytes"] > 0
    assert "bit-exact" in result.output


def test_a_plan_never_spills_across_a_view_of_the_tensor(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The pooled tensor is flattened (a view) before the head reads it: the view is a use,
    so the spill's gap ends there and the run can take the view."""
    from typer.testing import CliRunner

    from edgewise.cli.main import app

    runner = CliRunner()
    plan_file = tmp_path / "p.json"
    made = runner.invoke(
        app,
        [
            "plan",
            "--module",
            "tests.models:tiny_cnn",
            "--set",
            "sram_bytes=8KiB",
            "--long-lived",
            "2",
            "--objective",
            "dram",
            "--allow",
            "spill",
            "-o",
            str(plan_file),
        ],
    )
    assert made.exit_code == 0, made.output
    ran = runner.invoke(
        app,
        [
            "run",
            "--module",
            "tests.models:tiny_cnn",
            "--plan",
            str(plan_file),
            "--repeat",
            "1",
            "--json",
            "-",
        ],
    )
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout)["bit_exact"] is True


def test_int8_kernels_match_fake_quantization(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With --int8-kernels the int8 layers' matmuls run on aten._weight_int8pack_mm: the
    same per-row symmetric int8 weights, so the output equals fake quantization's up to
    summation order."""
    from typer.testing import CliRunner

    from edgewise.cli.main import app

    runner = CliRunner()
    plan_file = tmp_path / "p.json"
    made = runner.invoke(
        app,
        [
            "plan",
            "--module",
            "tests.models:mlp",
            "--hw",
            "jetson-orin-nano",
            "--precision",
            "fp32",
            "--allow",
            "spill,precision",
            "--floor",
            "*=int8",
            "--objective",
            "dram",
            "-o",
            str(plan_file),
        ],
    )
    assert made.exit_code == 0, made.output
    assert set(json.loads(plan_file.read_text())["weights"].values()) == {"int8"}
    runs = {}
    for flag in ([], ["--int8-kernels"]):
        ran = runner.invoke(
            app,
            ["run", "--module", "tests.models:mlp", "--plan", str(plan_file), "--json", "-", *flag],
        )
        assert ran.exit_code == 0, ran.output
        runs[bool(flag)] = json.loads(ran.stdout)
    assert runs[False]["int8_kernel_ops"] == 0 and runs[True]["int8_kernel_ops"] == 3
    assert runs[True]["sqnr_db"] > 30
    assert abs(runs[True]["sqnr_db"] - runs[False]["sqnr_db"]) < 0.1


# --------------------------------------------------------------------------- planner's plans


@pytest.mark.parametrize(
    ("net", "sets", "objective", "allow"),
    [
        ("unet", ("sram_bytes=4KiB",), "dram", "keep,spill,recompute"),  # a v1 plan failed
        ("unet", ("sram_bytes=6KiB", "overlap_compute_dma=false"), "energy", "keep,spill"),
        ("skip", ("sram_bytes=12KiB", "dram_bandwidth_bytes_per_s=1e8"), "dram", "spill,recompute"),
        ("skip", ("sram_bytes=24KiB", "dram_bandwidth_bytes_per_s=1e8"), "latency",
         "spill,recompute"),
    ],
)  # fmt: skip
def test_every_plan_the_planner_writes_runs_bit_exact(
    tmp_path: Path, net: str, sets: tuple[str, ...], objective: str, allow: str
) -> None:
    """A plan `edgewise plan` writes, loaded back and applied to the real model: outputs
    bit-exact, and the measured peak equal to the predicted one."""
    from edgewise.plan.plan import load_plan
    from edgewise.plan.planner import make_plan
    from tests.test_plan import CheapSkip

    torch.manual_seed(0)
    model, x = (GenUNet(3, ch=4), torch.randn(1, 4, 32, 32)) if net == "unet" else (
        CheapSkip(), torch.randn(1, 4, 16, 16))  # fmt: skip
    graph, model, args, kwargs = _real(model, (x,), {})
    hw = load_spec("generic-npu", ["mac_array.rows=8", "mac_array.cols=8", *sets])
    outcome = make_plan(
        graph, hw, "fp16", "fp16", "fp16", objective,
        allow=frozenset(allow.split(",")), long_lived_ops=3,
    )  # fmt: skip
    assert outcome.plan is not None
    moved = {t.action for t in outcome.plan.tensors} - {"keep"} or outcome.plan.schedule.off_gaps
    assert moved  # the plan spills or recomputes something
    path = tmp_path / "plan.json"
    save_plan(outcome.plan, path)
    plan = load_plan(path, graph)
    run = run_plan(graph, model, args, kwargs, plan=plan)
    assert run.fidelity.bit_exact
    assert run.planned.peak_bytes == run.planned.predicted_peak_bytes
