"""The memory timeline: invariants on generated graphs, attention modes, and the peak
of a real run measured by PyTorch's own allocation events."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgewise import EdgewiseError, capture
from edgewise.analysis.memory import MemoryTimeline, flash_tile, memory_timeline
from edgewise.execute import measure
from edgewise.execute.measure import check_fits, materialize, measure_peak
from edgewise.ir.graph import Graph, TensorKind

# --------------------------------------------------------------------------- families


class Chain(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(8 * (i + 1), 8 * (i + 2)) for i in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


class Diamond(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(16, 32), nn.Linear(16, 64), nn.Linear(16, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = self.a(x), self.b(x)[:, :32]
        return self.c(x) + left * right


class GenUNet(nn.Module):
    """A U-Net of `depth` levels: each down output is a skip read on the way up."""

    def __init__(self, depth: int, ch: int = 4) -> None:
        super().__init__()
        widths = [ch * 2**i for i in range(depth + 1)]
        self.downs = nn.ModuleList(
            nn.Conv2d(widths[i], widths[i + 1], 3, 2, 1) for i in range(depth)
        )
        self.mid = nn.Conv2d(widths[-1], widths[-1], 3, padding=1)
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, 2) for i in reversed(range(depth))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.downs:
            skips.append(x)
            x = F.relu(down(x))
        x = self.mid(x)
        for up in self.ups:
            x = up(x) + skips.pop()
        return x


def _families() -> list[tuple[str, nn.Module, torch.Tensor]]:
    out: list[tuple[str, nn.Module, torch.Tensor]] = [
        (f"chain{n}", Chain(n), torch.randn(4, 8)) for n in (1, 3, 6)
    ]
    out.append(("diamond", Diamond(), torch.randn(4, 16)))
    out += [(f"unet{d}", GenUNet(d), torch.randn(1, 4, 32, 32)) for d in (1, 2, 3, 4)]
    return out


def _brute_force_live(graph: Graph) -> list[int]:
    """Reference liveness, written independently: a storage is live from the op that
    first writes it through the last op that reads any tensor in it (or the end, for
    outputs); parameters, buffers, inputs and constants are not activations."""
    n = len(graph.ops)
    live = [0] * n
    storages: dict[int, list[int]] = {}
    kinds: dict[int, TensorKind] = {}
    for t in sorted(graph.tensors.values(), key=lambda t: t.id):
        storages.setdefault(t.storage_id, []).append(t.id)
        kinds.setdefault(t.storage_id, t.kind)
    for sid, tids in storages.items():
        if kinds[sid] is not TensorKind.ACTIVATION:
            continue
        start = min(graph.tensors[t].producer for t in tids)  # type: ignore[type-var]
        end = start
        for t in tids:
            for op in graph.ops:
                if t in op.inputs:
                    end = max(end, op.index)
            if t in graph.outputs:
                end = n - 1
        for i in range(start, end + 1):
            live[i] += graph.tensors[tids[0]].storage_bytes
    return live


@pytest.mark.parametrize(("name", "model", "x"), _families(), ids=[f[0] for f in _families()])
def test_liveness_invariants(name: str, model: nn.Module, x: torch.Tensor) -> None:
    graph = capture(model, x)
    tl = memory_timeline(graph, long_lived_ops=1000)
    live = tl.live.tolist()
    assert min(live) >= 0
    assert live == _brute_force_live(graph)  # every tensor freed after its last use
    assert tl.peak_bytes == max(live)
    eager = memory_timeline(graph, lifetimes="eager", long_lived_ops=1000)
    assert all(e >= lu for e, lu in zip(eager.live.tolist(), live, strict=True))
    # the output is live at the end; nothing else that has no later reader
    out_bytes = sum(graph.tensors[t].storage_bytes for t in graph.outputs)
    assert live[-1] >= out_bytes


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_unet_skips_are_the_long_lived_tensors(depth: int) -> None:
    graph = capture(GenUNet(depth), torch.randn(1, 4, 32, 32))
    tl = memory_timeline(graph, long_lived_ops=4)
    producers = sorted(r.producer_scope for r in tl.long_lived_table)
    # skips: the relu outputs of downs 0..depth-2 (the first skip is the model input)
    assert producers == sorted(["" for _ in range(depth - 1)])
    sizes = sorted(r.bytes for r in tl.long_lived_table)
    expected = sorted(4 * 2 ** (i + 1) * (32 // 2 ** (i + 1)) ** 2 * 4 for i in range(depth - 1))
    assert sizes == expected  # channels x H x W x 4 bytes at each level


def test_dtype_rescales_activation_bytes() -> None:
    graph = capture(GenUNet(2), torch.randn(1, 4, 32, 32))
    fp32 = memory_timeline(graph)
    fp16 = memory_timeline(graph, dtype="fp16")
    int8 = memory_timeline(graph, dtype="int8")
    assert fp16.peak_bytes * 2 == fp32.peak_bytes
    assert int8.peak_bytes * 4 == fp32.peak_bytes


# --------------------------------------------------------------------------- attention


class SelfAttention(nn.Module):
    def __init__(self, explicit: bool, heads: int = 2, dim: int = 16) -> None:
        super().__init__()
        self.explicit, self.heads = explicit, heads
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        if self.explicit:
            scores = (q @ k.transpose(-1, -2)) * (c // self.heads) ** -0.5
            out = scores.softmax(-1) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        return out.transpose(1, 2).reshape(b, n, c)


def test_attention_materialized_adds_scores_and_softmax() -> None:
    b, n, heads = 1, 64, 2
    graph = capture(SelfAttention(explicit=False, heads=heads), torch.randn(b, n, 16))
    captured = memory_timeline(graph)
    materialized = memory_timeline(graph, attention="materialized")
    at = next(op.index for op in graph.ops if op.category == "attention")
    scores = 2 * b * heads * n * n * 4  # scores and softmax, fp32
    assert materialized.attention_scores[at] == scores
    assert materialized.live[at] == captured.live[at] + scores
    assert captured.attention_scores.max() == 0


def test_explicit_attention_scores_are_found_and_tiled_away() -> None:
    b, n, heads, d = 1, 64, 2, 8
    graph = capture(SelfAttention(explicit=True, heads=heads), torch.randn(b, n, 16))
    captured = memory_timeline(graph)
    # q@k^T (b*heads x n x n), its scaled copy and the softmax: 3 score tensors, the
    # scaled copy freed after the softmax reads it, so at most 2 live at once
    assert captured.attention_scores.max() == 2 * b * heads * n * n * 4
    fused = memory_timeline(graph, attention="fused", tile_sram_bytes=4096)
    br, bc = flash_tile(4096, d, 4)
    assert (br, bc) == (8, 32)  # M = 1024 elements: Bc = ceil(1024 / 32), Br = min(Bc, d)
    assert fused.attention_scores.max() == (br * bc + 2 * br) * 4
    assert fused.peak_bytes < captured.peak_bytes


def _shuffled(graph: Graph, seed: int = 0) -> Graph:
    """The same ops (indices kept) listed in a random, non-topological order."""
    import random

    ops = list(graph.ops)
    random.Random(seed).shuffle(ops)
    assert [op.index for op in ops] != sorted(op.index for op in ops)
    return dataclasses.replace(graph, ops=tuple(ops))


def _within(seconds: float, fn: Callable[[], object]) -> object:
    """fn(), failing the test (instead of hanging it) if it does not return in time."""
    out: list[object] = []
    worker = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"did not return within {seconds} s (a loop on op order?)"
    return out[0]


def test_ops_out_of_order_do_not_loop() -> None:
    """Op indices, not list positions, name ops: a graph whose ops are listed out of
    execution order (a hand-edited or shuffled file) is walked by index and terminates."""
    from edgewise.analysis.memory import _score_chains

    graph = capture(SelfAttention(explicit=True), torch.randn(1, 64, 16))
    chains = _score_chains(graph)
    assert len(chains) == 1
    for seed in range(5):
        shuffled = _shuffled(graph, seed)
        assert _within(10, lambda s=shuffled: _score_chains(s)) == chains
        for attention in ("captured", "materialized", "fused"):
            tl = _within(10, lambda s=shuffled, a=attention: memory_timeline(s, attention=a))
            assert isinstance(tl, MemoryTimeline)


def test_whole_graph_passes_leave_the_collector_as_they_found_it() -> None:
    import gc

    graph = capture(Chain(2), torch.randn(2, 8))
    was = gc.isenabled()
    try:
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            memory_timeline(graph)
            assert gc.isenabled() is enabled
            with pytest.raises(EdgewiseError):
                memory_timeline(graph, long_lived_ops=0)
            assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


# --------------------------------------------------------------------------- reality


def _tiny_unet() -> tuple[nn.Module, tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        model = UNet2DConditionModel(
            sample_size=32, layers_per_block=1, block_out_channels=(32, 64, 64),
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8,
        )  # fmt: skip
    args = (torch.empty(1, 4, 32, 32, device="meta"), torch.tensor(1.0, device="meta"))
    return model, args, {"encoder_hidden_states": torch.empty(1, 77, 32, device="meta")}


def _tiny_vit() -> tuple[nn.Module, tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                       intermediate_size=128, image_size=64, patch_size=8)  # fmt: skip
    with torch.device("meta"):
        model = ViTModel(config)
    return model, (torch.empty(2, 3, 64, 64, device="meta"),), {}


class BasicBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch)
        self.conv2, self.bn2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + x)


def _resnet_blocks() -> tuple[nn.Module, tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
    return nn.Sequential(*(BasicBlock(16) for _ in range(4))), (torch.randn(2, 16, 32, 32),), {}


@pytest.mark.parametrize("factory", [_tiny_unet, _tiny_vit, _resnet_blocks])
def test_predicted_peak_matches_a_real_cpu_run(factory) -> None:  # type: ignore[no-untyped-def]
    model, args, kwargs = factory()
    graph = capture(model, *args, **kwargs)
    predicted = memory_timeline(graph, lifetimes="eager").peak_bytes
    measured = measure_peak(*materialize(model, args, kwargs, "fp32", "cpu")).peak_bytes
    assert measured > 0
    assert abs(predicted - measured) / measured <= 0.05
    # a compiler that frees at last use never needs more than eager PyTorch
    assert memory_timeline(graph).peak_bytes <= predicted


# --------------------------------------------------------------------------- bad input


def test_bad_options_are_errors() -> None:
    graph = capture(Chain(2), torch.randn(2, 8))
    with pytest.raises(EdgewiseError, match="long_lived_ops must be a positive count"):
        memory_timeline(graph, long_lived_ops=0)
    with pytest.raises(EdgewiseError, match="unknown dtype 'fp8'"):
        memory_timeline(graph, dtype="fp8")
    with pytest.raises(EdgewiseError, match="attention must be"):
        memory_timeline(graph, attention="flash")  # type: ignore[arg-type]


def test_measure_refuses_what_would_not_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(measure, "available_memory_bytes", lambda device: 10 * 2**30)
    check_fits(2 * 2**30, "cpu")
    with pytest.raises(EdgewiseError, match=r"would need about 9\.0 GiB.*10\.0 GiB is available"):
        check_fits(9 * 2**30, "cpu")
