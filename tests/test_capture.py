"""Capture basics: no weight bytes, storage sharing, names, scopes, errors."""

from __future__ import annotations

import json
import resource
import sys

import pytest
import torch
from torch import nn

import edgewise
from edgewise.analysis.profile import profile
from edgewise.errors import EdgewiseError
from edgewise.ir.graph import Graph, Op, TensorKind

MIB = 2**20


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _op_producing(graph: Graph, name: str, scope: str) -> Op:
    matches = [op for op in graph.ops if op.name == name and op.scope == scope]
    assert len(matches) == 1, f"expected one {name} in '{scope}', got {len(matches)}"
    return matches[0]


# --------------------------------------------------------------------------- no weights


def _peak_memory_mib() -> tuple[int, int]:
    """(peak resident, peak virtual) size of this process in MiB, from /proc."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = int(value.split()[0]) // 1024 if value.strip().endswith("kB") else 0
    return fields["VmHWM"], fields["VmPeak"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_eight_gigabyte_model_captures_without_allocating_weights() -> None:
    width = 16384
    with torch.device("meta"):  # 4 x 16384 x 32768 fp32 = 8 GiB of weights, never allocated
        model = nn.Sequential(
            nn.Linear(width, 2 * width, bias=False),
            nn.Linear(2 * width, width, bias=False),
            nn.Linear(width, 2 * width, bias=False),
            nn.Linear(2 * width, width, bias=False),
        )
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    assert weight_bytes == 8 * 2**30

    rss_before, virtual_before = _peak_memory_mib()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    graph = edgewise.capture(model, torch.randn(2, width))
    rss_after, virtual_after = _peak_memory_mib()

    # neither touched (resident) nor reserved (virtual) memory grew by anything like 8 GiB
    assert rss_after - rss_before < 256, f"peak RSS grew {rss_after - rss_before} MiB"
    grown = virtual_after - virtual_before
    assert grown < 1024, f"peak VM grew {grown} MiB"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss_before < 256 * 1024
    # and the graph still knows the full model
    assert graph.parameter_count == 4 * width * 2 * width
    assert profile(graph).totals.macs == 2 * 4 * width * 2 * width


# --------------------------------------------------------------------------- storage


def test_views_and_inplace_ops_share_storage() -> None:
    class Relabel(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = x.view(4, 6)  # view: same storage
            y.mul_(2)  # in place: same storage
            z = y.t()  # view of the in-place result: same storage
            return z + 1  # new storage

    x = torch.randn(2, 12)
    graph = edgewise.capture(Relabel(), x)
    assert [op.name for op in graph.ops] == ["view", "mul_", "t", "add"]
    view, mul_, t, add = graph.ops
    source = graph.tensors[view.inputs[0]]
    assert source.kind is TensorKind.INPUT and source.name == "arg0"
    for op in (view, mul_, t):
        out = graph.tensors[op.outputs[0]]
        assert out.storage_id == source.storage_id, op.target
        assert out.storage_bytes == x.numel() * 4
    fresh = graph.tensors[add.outputs[0]]
    assert fresh.storage_id != source.storage_id
    # only the add allocates activation memory
    assert [r.activation_bytes for r in profile(graph, by="op").rows] == [0, 0, 0, 24 * 4]


# --------------------------------------------------------------------------- names, scopes


class Attention(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return self.proj((q @ k.transpose(-2, -1)).softmax(-1) @ v)


class Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = Attention(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm(x))
        return x + self.mlp(x)


class Net(nn.Module):
    def __init__(self, dim: int = 8, depth: int = 2) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim) for _ in range(depth))
        self.bn = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.bn(x.transpose(1, 2))


def test_parameters_and_buffers_keep_their_names() -> None:
    model = Net()
    graph = edgewise.capture(model, torch.randn(2, 5, 8))
    params = {t.name: t for t in graph.tensors_of_kind(TensorKind.PARAMETER)}
    buffers = {t.name: t for t in graph.tensors_of_kind(TensorKind.BUFFER)}
    assert params.keys() == dict(model.named_parameters()).keys()
    assert buffers.keys() == dict(model.named_buffers()).keys()
    for name, p in model.named_parameters():
        assert params[name].shape == tuple(p.shape)
        assert params[name].dtype == "float32"
    assert "blocks.1.attn.proj.weight" in params
    assert "bn.running_mean" in buffers
    assert graph.parameter_count == sum(p.numel() for p in model.parameters())


def test_ops_carry_module_scopes() -> None:
    graph = edgewise.capture(Net(), torch.randn(2, 5, 8))
    proj = _op_producing(graph, "addmm", "blocks.0.attn.proj")
    weight_names = {graph.tensors[t].name for t in graph.ops[proj.index - 1].inputs}
    assert weight_names == {"blocks.0.attn.proj.weight"}  # the t() just before the addmm
    assert {op.scope for op in graph.ops if op.name == "bmm"} == {"blocks.0.attn", "blocks.1.attn"}
    assert _op_producing(graph, "native_layer_norm", "blocks.1.norm").category == "norm"
    assert _op_producing(graph, "gelu", "blocks.1.mlp.1").category == "elementwise"

    assert graph.scopes["blocks.0.attn.proj"] == "torch.nn.modules.linear.Linear"
    assert graph.scopes["blocks.0.attn"] == _class_path(Attention)
    assert graph.scopes["blocks.1"] == _class_path(Block)
    assert graph.scopes[""] == _class_path(Net)
    assert graph.scopes["bn"] == "torch.nn.modules.batchnorm.BatchNorm1d"
    # scopes are listed in call order, each module once
    order = list(graph.scopes)
    assert order.index("blocks.0.attn.qkv") < order.index("blocks.0.attn.proj")
    assert order.index("blocks.0.attn.proj") < order.index("blocks.1")
    assert {op.scope for op in graph.ops} <= set(graph.scopes)


def test_tied_weights_count_once() -> None:
    class TinyLM(nn.Module):
        def __init__(self, vocab: int = 50, dim: int = 8) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab, dim)
            self.mix = nn.Linear(dim, dim)
            self.head = nn.Linear(dim, vocab, bias=False)
            self.head.weight = self.embed.weight  # tied

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.head(self.mix(self.embed(ids)))

    vocab, dim = 50, 8
    model = TinyLM(vocab, dim)
    graph = edgewise.capture(model, torch.randint(0, vocab, (2, 6)))
    distinct = vocab * dim + dim * dim + dim
    assert graph.parameter_count == distinct == sum(p.numel() for p in model.parameters())
    assert profile(graph).totals.params == distinct
    tied = [t for t in graph.tensors_of_kind(TensorKind.PARAMETER) if t.shape == (vocab, dim)]
    assert len(tied) == 1  # one record, read by both the embedding and the head
    readers = {graph.ops[i].scope for i in graph.consumers[tied[0].id]}
    assert readers == {"embed", "head"}


# --------------------------------------------------------------------------- errors


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(4, 4), nn.Linear(5, 4))  # 4 -> 5 mismatch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def test_failing_op_names_module_and_op() -> None:
    with pytest.raises(EdgewiseError) as info:
        edgewise.capture(Broken(), torch.randn(2, 4))
    message = str(info.value)
    assert "'inner.1'" in message
    assert "aten.addmm" in message
    assert isinstance(info.value.__cause__, RuntimeError)  # the original error is chained


def test_failing_python_code_names_module() -> None:
    class Raises(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("unsupported input")

    class Outer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pre = nn.Linear(3, 3)
            self.stage = nn.Sequential(nn.Identity(), Raises())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.stage(self.pre(x))

    with pytest.raises(EdgewiseError, match=r"'stage\.1'.*Raises.*ValueError: unsupported input"):
        edgewise.capture(Outer(), torch.randn(1, 3))


# --------------------------------------------------------------------------- what is recorded


def test_ops_returning_no_tensors_are_not_recorded() -> None:
    class Checks(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # both reach the dispatcher and return a bool / None
            assert torch.ops.aten.is_same_size(x, x)
            torch.ops.aten._assert_tensor_metadata(x, dtype=torch.float32)
            return x.relu()

    graph = edgewise.capture(Checks(), torch.randn(3))
    assert [op.target for op in graph.ops] == ["aten.relu.default"]


def test_inputs_metadata_and_kwargs() -> None:
    class TwoInputs(nn.Module):
        def forward(self, x: torch.Tensor, *, scale: torch.Tensor) -> torch.Tensor:
            return x * scale

    graph = edgewise.capture(
        TwoInputs(), torch.randn(2, 3), scale=torch.randn(3), name="pair", meta={"batch": 2}
    )
    assert graph.model == "pair"
    assert graph.meta == {"batch": 2}
    assert graph.inputs == {"arg0": (2, 3), "scale": (3,)}
    inputs = {t.name for t in graph.tensors_of_kind(TensorKind.INPUT)}
    assert inputs == {"arg0", "scale"}
    (mul,) = graph.ops
    assert [graph.tensors[t].name for t in mul.inputs] == ["arg0", "scale"]


def test_index_tables_built_in_the_forward_capture() -> None:
    """BEiT with relative position bias builds its index table from `arange` in the forward
    (transformers caches it across calls), and Swin its window masks: both capture, built
    for real or on the meta device, and count what FlopCounterMode counts on a real run."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import BeitConfig, BeitModel, SwinConfig, SwinModel

    from edgewise.analysis.profile import profile

    beit = BeitConfig(use_relative_position_bias=True, num_hidden_layers=2, hidden_size=64,
                      num_attention_heads=2, intermediate_size=128, image_size=64,
                      patch_size=16)  # fmt: skip
    swin = SwinConfig(image_size=64, patch_size=4, embed_dim=32, depths=[2, 2], num_heads=[2, 4],
                      window_size=4)  # fmt: skip
    for cls, config in ((BeitModel, beit), (SwinModel, swin)):
        torch.manual_seed(0)
        model, x = cls(config).eval(), torch.randn(1, 3, 64, 64)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        for graph in (
            edgewise.capture(model, x),
            edgewise.capture(_on_meta(cls, config), torch.empty(1, 3, 64, 64, device="meta")),
        ):
            assert profile(graph, convention_name="torch").totals.flops == counter.get_total_flops()


class _IndexesConstants(torch.nn.Module):
    """Boolean indexing, nonzero and .item() on tensors built from arange: constants."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = torch.arange(16) % 3 == 0
        picked = torch.arange(16)[mask]  # 0, 3, ..., 15: six columns
        count = int(torch.nonzero(mask).shape[0])
        return x[:, picked] * count + x[:, : int(picked.max().item()) - 9]  # 15 - 9 = 6


class _IndexesInput(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[x > 0]


def test_data_dependent_ops_on_constants_capture_and_on_the_input_are_refused() -> None:
    """Tensors computed from constants alone are computed for real, so their values are
    there for nonzero, boolean indexing and .item(); on the input, a one-line refusal."""
    from edgewise.analysis.profile import profile
    from edgewise.errors import EdgewiseError

    graph = edgewise.capture(_IndexesConstants(), torch.empty(2, 16, device="meta"))
    (mul,) = [op for op in graph.ops if op.name == "mul"]
    assert graph.tensors[mul.outputs[0]].shape == (2, 6)
    (add,) = [op for op in graph.ops if op.name == "add"]
    assert graph.tensors[add.outputs[0]].shape == (2, 6)
    assert profile(graph).totals.vector_ops > 0
    with pytest.raises(EdgewiseError, match="depends on the input's values"):
        edgewise.capture(_IndexesInput(), torch.empty(2, 16, device="meta"))


def _on_meta(cls, config):  # type: ignore[no-untyped-def]
    with torch.device("meta"):
        return cls(config).eval()


def test_a_hugging_face_config_is_a_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A config.json (or its folder) builds the architecture on the meta device: the same
    parameters and MACs as the model built from the same config; an unknown class is a
    one-line error naming it."""
    from diffusers import UNet2DConditionModel
    from transformers import ViTConfig, ViTModel

    from edgewise.analysis.profile import profile
    from edgewise.capture.source import graph_from_source
    from tests.test_hostile import refused

    vit = ViTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=128, image_size=32, patch_size=8)  # fmt: skip
    vit.architectures = ["ViTModel"]
    vit.save_pretrained(tmp_path / "vit")
    graph = graph_from_source(str(tmp_path / "vit"))
    reference = edgewise.capture(ViTModel(vit).eval(), torch.randn(1, 3, 32, 32))
    assert graph.parameter_count == reference.parameter_count
    assert profile(graph).totals.macs == profile(reference).totals.macs
    unet = dict(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), block_out_channels=(32, 64),
                cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8)  # fmt: skip
    UNet2DConditionModel(**unet).save_config(tmp_path / "unet")
    graph = graph_from_source(str(tmp_path / "unet" / "config.json"))
    with torch.device("meta"):
        model = UNet2DConditionModel(**unet)
    assert graph.parameter_count == sum(p.numel() for p in model.parameters())
    assert graph.inputs["sample"] == (1, 4, 16, 16)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text('{"architectures": ["NoSuchModel"], "model_type": "vit"}')
    refused("profile", str(bad), needle="transformers has no model class 'NoSuchModel'")
    (bad / "config.json").write_text('{"_class_name": "NoSuchUNet"}')
    refused("profile", str(bad / "config.json"), needle="diffusers has no model class")
    empty = tmp_path / "empty"
    empty.mkdir()
    refused("profile", str(empty), needle="without a config.json")
    # --hf-config says the same explicitly: the same graph, and refusals that name it
    from tests.test_hostile import cli

    code, out, _ = cli("profile", "--hf-config", str(tmp_path / "vit"), "--json", "-")
    assert code == 0 and json.loads(out)["totals"]["params"] == reference.parameter_count
    refused("profile", "--hf-config", str(tmp_path / "nowhere"), needle="--hf-config")
    refused("profile", "sd15-unet", "--hf-config", str(tmp_path / "vit"), needle="not two")


def test_graph_cache_skips_capture_and_misses_on_a_changed_option(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The second command on a zoo model or a factory reads the cache (capture never runs);
    another option is another graph; --no-cache and `cache clear` bypass and empty it."""
    from edgewise.capture import cache, zoo
    from edgewise.capture import source as source_module
    from tests.test_hostile import cli

    monkeypatch.setenv("EDGEWISE_CACHE_DIR", str(tmp_path))
    first = cli("profile", "resnet18", "--json", "-")
    assert first[0] == 0 and cache.usage()[0] == 1
    calls: list[str] = []

    def counted(name, workload=zoo.DEFAULT_WORKLOAD):  # type: ignore[no-untyped-def]
        calls.append(name)
        return real_capture(name, workload)

    real_capture = zoo.capture_zoo
    monkeypatch.setattr(zoo, "capture_zoo", counted)
    again = cli("profile", "resnet18", "--json", "-")
    assert again == first and calls == []  # the same figures, and no capture
    assert cli("profile", "resnet18", "--resolution", "160", "--json", "-")[0] == 0
    assert calls == ["resnet18"] and cache.usage()[0] == 2  # a new workload: captured
    assert cli("profile", "resnet18", "--no-cache", "--json", "-")[1] == first[1]
    assert calls == ["resnet18", "resnet18"]  # --no-cache: captured again
    real_module = source_module._capture_module
    module_calls: list[str] = []
    monkeypatch.setattr(source_module, "_capture_module",
                        lambda spec: module_calls.append(spec) or real_module(spec))  # fmt: skip
    for _ in range(2):
        assert cli("profile", "--module", "tests.models:tiny_cnn", "--json", "-")[0] == 0
    assert module_calls == ["tests.models:tiny_cnn"]
    code, out, _ = cli("cache", "clear")
    assert code == 0 and "removed 3 graphs" in out and cache.usage() == (0, 0)
