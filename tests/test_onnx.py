"""ONNX input: a model exported from PyTorch, or built by hand with `onnx.helper`, counts
as its torch capture does; weights are never read; malformed files are one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from edgewise.analysis.conventions import CONVENTIONS
from edgewise.analysis.profile import op_costs, profile, uncounted_ops
from edgewise.capture.onnx_capture import capture_onnx
from edgewise.capture.torch_capture import capture
from edgewise.errors import EdgewiseError
from edgewise.ir.graph import Graph
from tests.test_hostile import cli, refused

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def totals(graph: Graph) -> tuple[int, int, int]:
    """(parameters, MACs, vector ops) under the default convention."""
    t = profile(graph, by="layer").totals
    return t.params, t.macs, t.vector_ops


def real(model: nn.Module) -> nn.Module:
    """A meta-device model made real (uninitialized: an export needs storage, not values)."""
    return model.to_empty(device="cpu").eval()


def export(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], path: Path) -> Path:
    real_args = tuple(torch.zeros(a.shape, dtype=a.dtype) for a in args)
    real_kwargs = {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in kwargs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(real(model), real_args, kwargs=real_kwargs, f=str(path), dynamo=True,
                          optimize=False, verbose=False)  # fmt: skip
    return path


def vit_block() -> tuple[nn.Module, tuple[torch.Tensor], dict[str, Any]]:
    """A one-layer ViT (patch embedding, one encoder block, layer norm, pooler)."""
    from transformers import ViTConfig, ViTModel

    with torch.device("meta"):
        config = ViTConfig(num_hidden_layers=1, hidden_size=192, num_attention_heads=3,
                           intermediate_size=768, image_size=64, patch_size=16)  # fmt: skip
        model = ViTModel(config)
    return model, (torch.empty(1, 3, 64, 64, device="meta"),), {}


def resnet50() -> tuple[nn.Module, tuple[()], dict[str, Any]]:
    from edgewise.capture.zoo import Workload, zoo_entry

    model, args, kwargs = zoo_entry("resnet50").build(Workload())
    return model, tuple(args), dict(kwargs)


def tiny_unet() -> tuple[nn.Module, tuple[torch.Tensor, ...], dict[str, Any]]:
    from tests.models import tiny_unet as build

    model, args = build()
    return model, args, {}


@pytest.mark.parametrize("build", [resnet50, vit_block, tiny_unet], ids=lambda f: f.__name__)
def test_exported_model_counts_as_its_torch_capture(build: Any, tmp_path: Path) -> None:
    """torch.onnx.export (dynamo, unoptimized: batch norm stays a node) of ResNet-50, a
    ViT block and the tiny U-Net: parameters and MACs equal to the unit."""
    model, args, kwargs = build()
    torch_graph = capture(model, *args, **kwargs)
    onnx_graph = capture_onnx(export(model, args, kwargs, tmp_path / "m.onnx"))
    params, macs, _ = totals(onnx_graph)
    assert (params, macs) == totals(torch_graph)[:2]
    assert params > 0 and macs > 0
    assert not uncounted_ops(onnx_graph), uncounted_ops(onnx_graph)
    # scopes come from the exporter's module record: the same layers as the torch capture
    torch_layers = {op.scope for op in torch_graph.ops if op.category.value in ("conv", "matmul")}
    onnx_layers = {op.scope for op in onnx_graph.ops if op.category.value in ("conv", "matmul")}
    assert onnx_layers <= set(torch_graph.scopes) and len(onnx_layers) >= len(torch_layers) // 2


def test_resnet50_vector_ops_match_too(tmp_path: Path) -> None:
    """Beyond the issue's two figures: batch norm, ReLU, adds, pools count the same (the
    exporter's zero conv bias is recognised as nothing to add)."""
    model, args, kwargs = resnet50()
    onnx_graph = capture_onnx(export(model, args, kwargs, tmp_path / "r50.onnx"))
    assert totals(onnx_graph) == totals(capture(model, *args, **kwargs))
    assert totals(onnx_graph)[:2] == (25_557_032, 4_089_184_256)  # torchvision's 4.09 GMACs


# --------------------------------------------------------------------------- by hand


def init(name: str, *shape: int, dtype: int = TensorProto.FLOAT) -> Any:
    """An initializer with a declared shape; its data lives in a file nobody reads."""
    t = TensorProto(name=name, data_type=dtype, dims=list(shape))
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="weights.bin")
    return t


def save(path: Path, nodes: list[Any], inputs: list[Any], outputs: list[Any],
         inits: list[Any], opset: int = 18) -> Path:  # fmt: skip
    graph = helper.make_graph(nodes, "hand", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path.write_bytes(model.SerializeToString())
    return path


class HandNet(nn.Module):
    """The torch twin of the hand-built graph."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.norm = nn.LayerNorm(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(torch.relu(self.bn(self.conv(x))))
        y = y.mean((2, 3))
        return torch.softmax(self.fc(self.norm(y)), -1)


def hand_net(path: Path, batch: str | int = 1) -> Path:
    value = helper.make_tensor_value_info
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], name="/conv/Conv",
                         kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "bn.weight", "bn.bias", "bn.running_mean",
                                                "bn.running_var"], ["b"], name="/bn/Bn"),
        helper.make_node("Relu", ["b"], ["r"], name="/Relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="/pool/MaxPool", kernel_shape=[3, 3],
                         strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("ReduceMean", ["p", "axes"], ["m"], name="/ReduceMean", keepdims=0),
        helper.make_node("LayerNormalization", ["m", "norm.weight", "norm.bias"], ["n"],
                         name="/norm/LayerNormalization"),
        helper.make_node("Gemm", ["n", "fc.weight", "fc.bias"], ["g"], name="/fc/Gemm",
                         transB=1),
        helper.make_node("Softmax", ["g"], ["y"], name="/Softmax", axis=-1),
    ]  # fmt: skip
    inits = [
        init("conv.weight", 16, 3, 3, 3), init("conv.bias", 16), init("bn.weight", 16),
        init("bn.bias", 16), init("bn.running_mean", 16), init("bn.running_var", 16),
        helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3]), init("norm.weight", 16),
        init("norm.bias", 16), init("fc.weight", 10, 16), init("fc.bias", 10),
    ]  # fmt: skip
    inputs = [value("x", TensorProto.FLOAT, [batch, 3, 32, 32])]
    return save(path, nodes, inputs, [value("y", TensorProto.FLOAT, [batch, 10])], inits)


def test_hand_built_graph_counts_as_its_torch_twin(tmp_path: Path) -> None:
    """Every figure: parameters (running statistics are buffers, as in PyTorch), MACs,
    vector ops; the weights file does not even exist."""
    graph = capture_onnx(hand_net(tmp_path / "hand.onnx"))
    twin = capture(HandNet(), torch.empty(1, 3, 32, 32))
    assert totals(graph) == totals(twin)
    # closed form: conv 16x16x16 outputs x 27, the Linear 16 x 10
    assert totals(graph)[:2] == (16 * 27 + 16 + 2 * 16 + 2 * 16 + 160 + 10, 4096 * 27 + 160)
    assert {op.scope for op in graph.ops} == {"conv", "bn", "", "pool", "norm", "fc"}


def test_symbolic_batch_is_bound_by_input_shape(tmp_path: Path) -> None:
    path = hand_net(tmp_path / "dyn.onnx", batch="N")
    refused("profile", str(path), needle="--input-shape x=Nx3x32x32")
    refused("profile", str(path), "--input-shape", "y=1x3x32x32", needle="no input 'y'")
    refused("profile", str(path), "--input-shape", "x=1x3x32", needle="3 dims given")
    refused("profile", str(path), "--input-shape", "x=1x3x99x32", needle="model fixes 32")
    refused("profile", str(path), "--input-shape", "x=one", needle="NAME=DIMS")
    graph = capture_onnx(path, {"x": (4, 3, 32, 32)})
    one = capture_onnx(hand_net(tmp_path / "one.onnx"))
    assert totals(graph)[1] == 4 * totals(one)[1]
    code, out, _ = cli("profile", str(path), "--input-shape", "x=4x3x32x32", "--json", "-")
    assert code == 0 and json.loads(out)["totals"]["macs"] == totals(graph)[1]


def test_every_command_reads_onnx(tmp_path: Path) -> None:
    path = str(hand_net(tmp_path / "hand.onnx"))
    code, out, _ = cli("simulate", path, "--hw", "snapdragon-8gen3", "--json", "-")
    assert code == 0 and json.loads(out)["totals"]["latency_s"] > 0
    assert cli("memory", path)[0] == 0
    assert cli("capture", path, "-o", str(tmp_path / "g.json"))[0] == 0
    refused("profile", path, "--batch", "2", needle="--input-shape")
    refused("profile", "tests/models.py", "--input-shape", "x=1", needle="not a .onnx")


def test_unknown_ops_are_in_the_ledger_and_control_flow_is_refused(tmp_path: Path) -> None:
    value = helper.make_tensor_value_info
    x, y = value("x", TensorProto.FLOAT, [1, 8]), value("y", TensorProto.FLOAT, [1, 8])
    path = save(tmp_path / "odd.onnx", [helper.make_node("Hardmax", ["x"], ["y"], name="hm")],
                [x], [y], [])  # fmt: skip
    ledger = uncounted_ops(capture_onnx(path))
    assert [u.target for u in ledger] == ["onnx.Hardmax"]
    then = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [],
                             [value("t", TensorProto.FLOAT, [1, 8])])  # fmt: skip
    node = helper.make_node("If", ["c"], ["y"], name="branchy", then_branch=then, else_branch=then)
    cond = value("c", TensorProto.BOOL, [])
    refused("profile", str(save(tmp_path / "if.onnx", [node], [cond, x], [y], [])),
            needle="node 'branchy' is If")  # fmt: skip


def test_malformed_files_are_one_line_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01not a model")
    refused("profile", str(garbage), needle="not a readable ONNX model")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    refused("profile", str(empty), needle="no nodes")
    refused("profile", str(tmp_path / "missing.onnx"), needle="no such ONNX file")
    with pytest.raises(EdgewiseError, match="no nodes"):
        capture_onnx(empty)


def test_shape_arithmetic_is_computed_at_load(tmp_path: Path) -> None:
    """Shape -> Gather -> Concat -> Reshape, as TorchScript exports a flatten: no op for
    the arithmetic, one view for the reshape, and the MatMul after it counted."""
    value = helper.make_tensor_value_info
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["y"]),
    ]
    inits = [
        helper.make_tensor("zero", TensorProto.INT64, [], [0]),
        helper.make_tensor("zero1", TensorProto.INT64, [1], [0]),
        helper.make_tensor("minus1", TensorProto.INT64, [1], [-1]),
        init("w", 48, 5),
    ]
    path = save(tmp_path / "flat.onnx", nodes, [value("x", TensorProto.FLOAT, [2, 3, 4, 4])],
                [value("y", TensorProto.FLOAT, None)], inits)  # fmt: skip
    graph = capture_onnx(path)
    assert [op.name for op in graph.ops] == ["view", "mm"]
    assert totals(graph) == (240, 2 * 48 * 5, 0)


def test_external_weights_are_never_read(tmp_path: Path) -> None:
    """3 GiB of weights in a sparse external file: profiled in a fresh process whose peak
    RSS stays under 1 GB (reading the file would take 3 GiB)."""
    value = helper.make_tensor_value_info
    layers, width = 12, 8192  # 12 x 8192 x 8192 fp32 = 3 GiB
    nodes = [helper.make_node("MatMul", [f"h{i}", f"w{i}"], [f"h{i + 1}"], name=f"/l.{i}/MatMul")
             for i in range(layers)]  # fmt: skip
    inits = []
    for i in range(layers):
        t = init(f"w{i}", width, width)
        t.external_data.add(key="offset", value=str(i * width * width * 4))
        t.external_data.add(key="length", value=str(width * width * 4))
        inits.append(t)
    path = save(tmp_path / "big.onnx", nodes, [value("h0", TensorProto.FLOAT, [1, width])],
                [value(f"h{layers}", TensorProto.FLOAT, [1, width])], inits)  # fmt: skip
    with open(tmp_path / "weights.bin", "wb") as f:
        f.truncate(layers * width * width * 4)  # sparse: no disk used
    probe = (
        "import resource, subprocess, sys, json;"
        "r = subprocess.run([sys.executable, '-m', 'edgewise.cli.main', 'profile', sys.argv[1],"
        " '--json', '-'], capture_output=True, text=True);"
        "print(json.dumps({'rc': r.returncode, 'out': r.stdout, 'err': r.stderr,"
        " 'rss_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))"
    )
    run = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True,
                         check=True)  # fmt: skip
    result = json.loads(run.stdout)
    assert result["rc"] == 0, result["err"]
    totals_ = json.loads(result["out"])["totals"]
    assert totals_["params"] == layers * width * width and totals_["macs"] == layers * width**2
    assert result["rss_kib"] < 1_000_000, result["rss_kib"]


def test_op_costs_agree_op_by_op_on_the_hand_net(tmp_path: Path) -> None:
    graph = capture_onnx(hand_net(tmp_path / "hand.onnx"))
    conv = CONVENTIONS["default"]
    by_name: dict[str, int] = {}
    for op, cost in zip(graph.ops, op_costs(graph, conv), strict=True):
        by_name[op.name] = by_name.get(op.name, 0) + cost.count.macs
    assert by_name["convolution"] == 4096 * 27 and by_name["addmm"] == 160
