"""Quantization on real weights: the digits CNN's accuracy, per-layer sensitivity, plans."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from edgewise.capture.torch_capture import capture
from edgewise.cli.main import app
from edgewise.errors import EdgewiseError
from edgewise.execute import digits
from edgewise.execute.quantize import fake_quantize_weight, relative_mse
from edgewise.execute.sensitivity import (
    calibration_inputs,
    measure_sensitivity,
    parse_bits,
    weight_layers,
)
from edgewise.ir.graph import TensorKind
from edgewise.plan.knobs import load_sensitivity

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[digits.DigitsCNN]:
    """The digits CNN, trained once for these tests into a private cache dir."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEWISE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        model, training = digits.load_or_train()
        assert training is not None and training.seconds < 60
        yield model


# --------------------------------------------------------------------------- digits


def test_int8_keeps_accuracy_int2_degrades(trained: digits.DigitsCNN) -> None:
    fp = digits.evaluate(trained)
    assert fp.accuracy >= 0.97
    int8 = digits.evaluate(trained, digits.uniform(trained, "int8"))
    assert abs(int8.accuracy - fp.accuracy) <= 0.01
    assert int8.sqnr_db > 30 and int8.cosine > 0.999
    int4 = digits.evaluate(trained, digits.uniform(trained, "int4"))
    int2 = digits.evaluate(trained, digits.uniform(trained, "int2"))
    assert int2.accuracy < fp.accuracy - 0.05
    assert int2.sqnr_db < int4.sqnr_db < int8.sqnr_db
    assert int8.weight_bytes == fp.weight_bytes / 4 == 2 * int4.weight_bytes


def test_cached_weights_reload_through_the_safe_loader(trained: digits.DigitsCNN) -> None:
    model, example = digits.factory()  # the fixture's cache dir is still set
    x = digits.load_data().test_x
    with torch.no_grad():
        assert torch.equal(model(x), trained(x))
    assert example[0].shape == (1, 1, 8, 8)


def test_training_is_deterministic(trained: digits.DigitsCNN) -> None:
    again, _ = digits.train()
    for name, p in trained.state_dict().items():
        assert torch.equal(p, again.state_dict()[name]), name


def test_per_layer_assignment_and_plan_precision(trained: digits.DigitsCNN) -> None:
    only_head = digits.evaluate(trained, {"head": "int2"}, activation_bits=None)
    everything = digits.evaluate(trained, digits.uniform(trained, "int2"), activation_bits=None)
    assert only_head.sqnr_db > everything.sqnr_db
    assert only_head.weight_bytes == digits.evaluate(trained).weight_bytes - 640 * (4 - 0.25)
    weights, activation_bits = digits.plan_assignment(trained, "int8", "int8", {"fc": "int4"})
    assert weights == {"conv1": "int8", "conv2": "int8", "conv3": "int8", "fc": "int4",
                       "head": "int8"}  # fmt: skip
    assert activation_bits == 8
    with pytest.raises(EdgewiseError, match="no weight layer named nope"):
        digits.evaluate(trained, {"nope": "int8"})


# --------------------------------------------------------------------------- sensitivity


class TwoLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(6, 5)
        self.norm = nn.LayerNorm(5)
        self.b = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.norm(self.a(x))
        return self.b(h), h


def test_sensitivity_matches_a_hand_computation_and_restores_weights() -> None:
    torch.manual_seed(0)
    model = TwoLinear().eval()
    inputs, how = calibration_inputs(model, (torch.empty(2, 6),), {}, 3)
    assert len(inputs) == 3 and inputs[0][0][0].shape == (2, 6) and "seed 0" in how
    again, _ = calibration_inputs(model, (torch.empty(2, 6),), {}, 3)
    assert torch.equal(again[2][0][0], inputs[2][0][0])
    layers = weight_layers(model)
    assert list(layers) == ["a", "b"]  # LayerNorm's 1-D weight is no weight layer
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = measure_sensitivity(model, inputs, layers, ("int8", "int2"), "two")
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    with torch.no_grad():
        quantized = TwoLinear().eval()
        quantized.load_state_dict(before)
        quantized.b.weight.copy_(fake_quantize_weight(before["b.weight"], 2))
        expected = []
        for args, _ in inputs:
            ref = torch.cat([t.flatten() for t in model(*args)])
            out = torch.cat([t.flatten() for t in quantized(*args)])
            expected.append(relative_mse(ref, out))
    b = next(layer for layer in result.layers if layer.scope == "b")
    assert b.errors["int2"] == pytest.approx(sum(expected) / 3, rel=1e-9)
    assert b.kind == "Linear" and b.weight_params == 15
    assert result.forwards == 3 + 2 * 2 * 3
    assert set(result.planner_dict()) == {"metric", "model", "layers"}


def test_bits_and_globs_are_validated() -> None:
    assert parse_bits("int4, int8,int4") == ("int4", "int8")
    with pytest.raises(EdgewiseError, match="--bits takes a comma list"):
        parse_bits("int3")
    with pytest.raises(EdgewiseError, match="matches none of the 2 weight layers"):
        weight_layers(TwoLinear(), ["c*"])
    assert list(weight_layers(TwoLinear(), ["b", "x*"])) == ["b"]


def test_digits_sensitivity_feeds_the_planner(trained: digits.DigitsCNN, tmp_path: Path) -> None:
    sens, report, plan = tmp_path / "sens.json", tmp_path / "report.json", tmp_path / "plan.json"
    spec = digits.FACTORY
    result = runner.invoke(app, ["sensitivity", "--module", spec, "--calib", "16",
                                 "--bits", "int8,int4,int2", "-o", str(sens),
                                 "--json", str(report)])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(sens.read_text())
    assert set(data) == {"metric", "model", "layers"} and "relative_mse" in data["metric"]
    graph = capture(trained, digits.load_data().test_x[:1], name=spec)
    weighted = {op.scope for op in graph.ops if any(
        graph.tensors[t].kind is TensorKind.PARAMETER and len(graph.tensors[t].shape) >= 2
        for t in op.inputs)}  # fmt: skip
    assert set(data["layers"]) == weighted == {"conv1", "conv2", "conv3", "fc", "head"}
    table = load_sensitivity(sens)
    assert all(set(errors) == {"int8", "int4", "int2"} for errors in table.values())
    growing = [e["int8"] < e["int4"] < e["int2"] for e in table.values()]
    assert sum(growing) >= len(growing) - 1
    assert json.loads(report.read_text())["forwards"] == 16 * (1 + 5 * 3)

    budget = 0.01
    result = runner.invoke(app, ["plan", "--module", spec, "--allow", "spill,precision",
                                 "--sensitivity", str(sens), "--accuracy-budget", str(budget),
                                 "-o", str(plan)])  # fmt: skip
    assert result.exit_code == 0, result.output
    chosen = json.loads(plan.read_text())["weights"]
    assert chosen and set(chosen) <= set(table)
    assert sum(table[layer][p] for layer, p in chosen.items()) <= budget

    result = runner.invoke(app, ["digits", "--plan", str(plan), "--json", "-"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)["runs"]
    assert [r["name"].split(" ")[0] for r in runs] == ["float", "int8", "int4", "int2", "plan:"]
    assert runs[-1]["accuracy"] >= runs[0]["accuracy"] - 0.05


def test_sensitivity_with_weights_file_and_refused_pickle(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from tests.models import TinyCNN

    torch.manual_seed(1)
    saved = TinyCNN()
    save_file(saved.state_dict(), str(tmp_path / "w.safetensors"))
    result = runner.invoke(app, ["sensitivity", "--module", "tests.models:tiny_cnn", "--weights",
                                 str(tmp_path / "w.safetensors"), "--calib", "2",
                                 "--bits", "int4", "--json", "-"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data["layers"]) == {"stem", "body", "head"}
    assert data["calibration"].startswith("random normal inputs")
    torch.save(saved.state_dict(), tmp_path / "w.pt")
    result = runner.invoke(app, ["sensitivity", "--module", "tests.models:tiny_cnn", "--weights",
                                 str(tmp_path / "w.pt")])  # fmt: skip
    assert isinstance(result.exception, EdgewiseError)
    assert "pickle checkpoints run code" in str(result.exception)


def test_zoo_model_with_random_weights_uses_graph_scopes() -> None:
    from edgewise.capture.zoo import Workload, capture_zoo

    result = runner.invoke(app, ["sensitivity", "mobilenetv2", "--resolution", "32", "--calib",
                                 "1", "--layers", "classifier*,features.0.*", "--bits", "int8",
                                 "--json", "-"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["weights"].startswith("random")
    graph = capture_zoo("mobilenetv2", Workload(resolution=32))
    assert set(data["layers"]) == {"classifier.1", "features.0.0"}
    assert set(data["layers"]) <= {op.scope for op in graph.ops}
    result = runner.invoke(app, ["sensitivity", "--module", digits.FACTORY, "--batch", "2"])
    assert isinstance(result.exception, EdgewiseError)
