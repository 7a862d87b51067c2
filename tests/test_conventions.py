"""Compatibility conventions against the real tools they reproduce.

Each small model (real random weights: the tools run it for real) is captured once and
counted under a named convention; the reference is the tool itself, run on the same
model and input: `thop.profile`, `fvcore.nn.FlopCountAnalysis` and
`torch.utils.flop_counter.FlopCounterMode`. All three are deterministic functions of
shapes, so the comparison is exact equality.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import edgewise
from edgewise.analysis.profile import profile
from edgewise.errors import EdgewiseError

thop = pytest.importorskip("thop")
fvcore_nn = pytest.importorskip("fvcore.nn")


# --------------------------------------------------------------------------- models


class TinyCNN(nn.Module):
    """Conv/BN/ReLU stem, a depthwise-separable block, pooling and a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.dw = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False)
        self.bn2 = nn.BatchNorm2d(8, affine=False)
        self.pw = nn.Conv2d(8, 16, 1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act(self.bn1(self.stem(x))))
        x = self.act(self.pw(self.bn2(self.dw(x))))
        return self.fc(self.gap(x).flatten(1))


class Attention(nn.Module):
    """Multi-head self-attention written three ways: matmul, einsum or fused SDPA."""

    def __init__(self, dim: int, heads: int, kind: str) -> None:
        super().__init__()
        self.heads, self.kind = heads, kind
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scale = (d // self.heads) ** -0.5
        if self.kind == "sdpa":
            o = F.scaled_dot_product_attention(q, k, v)
        elif self.kind == "einsum":
            a = torch.einsum("bhnd,bhmd->bhnm", q, k) * scale
            o = torch.einsum("bhnm,bhmd->bhnd", a.softmax(-1), v)
        else:
            o = ((q @ k.transpose(-2, -1)) * scale).softmax(-1) @ v
        return self.proj(o.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """A pre-norm transformer block: LayerNorm, attention, LayerNorm, GELU MLP."""

    def __init__(self, kind: str, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, kind)
        self.ln2 = nn.LayerNorm(dim, elementwise_affine=False)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(self.act(self.fc1(self.ln2(x))))


class CrossAttention(nn.Module):
    """Queries from x, keys and values from a context, value head dim != query head dim."""

    def __init__(self, dim: int = 16, ctx: int = 12, heads: int = 2, dv: int = 6) -> None:
        super().__init__()
        self.heads, self.dv = heads, dv
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(ctx, dim + heads * dv)
        self.out = nn.Linear(heads * dv, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        m, h = context.shape[1], self.heads
        q = self.q(x).reshape(b, n, h, d // h).transpose(1, 2)
        k, v = self.kv(context).split([d, h * self.dv], dim=-1)
        k = k.reshape(b, m, h, d // h).transpose(1, 2)
        v = v.reshape(b, m, h, self.dv).transpose(1, 2)
        o = F.scaled_dot_product_attention(q, k, v)
        return self.out(o.transpose(1, 2).reshape(b, n, h * self.dv))


class Decoder(nn.Module):
    """A VAE-decoder-like block: GroupNorm, SiLU, nearest upsampling, transposed conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.gn = nn.GroupNorm(2, 8)
        self.act = nn.SiLU()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.tconv = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.gn2 = nn.GroupNorm(3, 6, affine=False)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up(self.act(self.gn(self.conv(x))))
        return self.softmax(self.gn2(self.tconv(x)))


class Assorted(nn.Module):
    """The less common rules: instance norm, PReLU, average and adaptive pooling with
    windows that do not tile, interpolating upsamplers, 1-D layers, grid sampling."""

    def __init__(self) -> None:
        super().__init__()
        self.inorm = nn.InstanceNorm2d(4, affine=True)
        self.inorm2 = nn.InstanceNorm2d(4)
        self.prelu = nn.PReLU()
        self.avg = nn.AvgPool2d(2)
        self.mp = nn.MaxPool2d(2)
        self.bilinear = nn.Upsample(scale_factor=2, mode="bilinear")
        self.bicubic = nn.Upsample(size=(7, 9), mode="bicubic")
        self.apool = nn.AdaptiveAvgPool2d((3, 5))
        self.lrelu = nn.LeakyReLU()
        self.conv1d = nn.Conv1d(4, 4, 3)
        self.bn1d = nn.BatchNorm1d(4)
        self.apool1d = nn.AdaptiveAvgPool1d(5)
        self.linear1d = nn.Upsample(scale_factor=2, mode="linear")
        self.nearest1d = nn.Upsample(scale_factor=3, mode="nearest")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.prelu(self.inorm2(self.inorm(x)))
        y = self.bicubic(self.bilinear(self.avg(x)))
        z = self.lrelu(self.apool(self.mp(x)))
        w = self.bn1d(self.conv1d(x.flatten(2)))
        s = self.nearest1d(self.linear1d(self.apool1d(w)))
        g = F.grid_sample(x, torch.tanh(x[:, :2].permute(0, 2, 3, 1)), align_corners=False)
        return y, z, s, g


class StringPadding(nn.Module):
    """Convolutions given padding="same" and "valid" beside a numeric one: TorchScript
    traces the first two as aten::_convolution_mode, which fvcore does not count."""

    def __init__(self) -> None:
        super().__init__()
        self.same = nn.Conv2d(3, 8, 3, padding="same")
        self.valid = nn.Conv1d(8, 4, 3, padding="valid")
        self.numeric = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.numeric(self.same(x))
        return y, self.valid(y.flatten(2))


MODELS: dict[str, Callable[[], tuple[nn.Module, tuple[torch.Tensor, ...]]]] = {
    "cnn": lambda: (TinyCNN(), (torch.randn(2, 3, 16, 16),)),
    "string-padding": lambda: (StringPadding(), (torch.randn(2, 3, 10, 10),)),
    "block-matmul": lambda: (Block("matmul"), (torch.randn(2, 5, 16),)),
    "block-einsum": lambda: (Block("einsum"), (torch.randn(2, 5, 16),)),
    "block-sdpa": lambda: (Block("sdpa"), (torch.randn(2, 5, 16),)),
    "decoder": lambda: (Decoder(), (torch.randn(1, 4, 6, 6),)),
    "assorted": lambda: (Assorted(), (torch.randn(2, 4, 8, 8),)),
    "cross-sdpa": lambda: (CrossAttention(), (torch.randn(2, 5, 16), torch.randn(2, 7, 12))),
}


# --------------------------------------------------------------------------- the tools


def thop_ops(model: nn.Module, args: tuple[torch.Tensor, ...]) -> float:
    return thop.profile(model, inputs=args, verbose=False)[0]


def fvcore_flops(model: nn.Module, args: tuple[torch.Tensor, ...]) -> float:
    analysis = fvcore_nn.FlopCountAnalysis(model, args)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return analysis.total()


def torch_flops(model: nn.Module, args: tuple[torch.Tensor, ...]) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*args)
    return counter.get_total_flops()


TOOLS = {"thop": thop_ops, "fvcore": fvcore_flops, "torch": torch_flops}

# fvcore traces with torch.jit and sees F.scaled_dot_product_attention as one
# aten::scaled_dot_product_attention, which it does not count. On CPU, torch 2.13 runs SDPA
# as one fused kernel only when the value head dim equals the query's; otherwise the
# capture sees its math decomposition (bmm, softmax, bmm) and cannot tell those bmm from
# ones the user wrote, which fvcore does count. Fixing it needs the capture to keep
# aten.scaled_dot_product_attention whole (a capture change, not a convention change).
XFAIL = {
    ("cross-sdpa", "fvcore"): "capture sees SDPA decomposed into bmm when dv != d on CPU; "
    "fvcore sees aten::scaled_dot_product_attention whole and counts it as zero",
}


def _case(model: str, tool: str) -> object:
    reason = XFAIL.get((model, tool))
    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
    return pytest.param(model, tool, id=f"{model}-{tool}", marks=marks)


@pytest.fixture(autouse=True)
def _quiet_tools() -> object:
    logging.disable(logging.WARNING)  # fvcore's and thop's per-op warnings
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize(("model_name", "tool"), [_case(m, t) for m in MODELS for t in TOOLS])
def test_convention_matches_tool(model_name: str, tool: str) -> None:
    torch.manual_seed(0)
    model, args = MODELS[model_name]()
    model.eval()
    graph = edgewise.capture(model, *args)  # before the tools: thop adds buffers
    ours = profile(graph, convention_name=tool).totals.flops
    reference = TOOLS[tool](model, args)
    assert reference > 0
    assert ours == reference


# --------------------------------------------------------------------------- what differs


def test_conventions_differ_as_documented() -> None:
    """One linear + one fused attention: each convention counts what its tool counts."""
    torch.manual_seed(0)
    model, (x,) = MODELS["block-sdpa"]()
    graph = edgewise.capture(model, x)
    b, n, d, heads = 2, 5, 16, 2
    linear_macs = b * n * (d * 3 * d + d * d + d * 4 * d + 4 * d * d)
    attention_macs = b * heads * n * n * 2 * (d // heads)

    counts = {c: profile(graph, convention_name=c).totals for c in ("default", "torch", "thop")}
    # torch's registry has no entry for the CPU flash kernel: linears only, 2 per MAC
    assert counts["torch"].flops == 2 * linear_macs
    # thop: Linear modules (1 per MAC) and LayerNorm (2 per element, doubled with affine)
    assert counts["thop"].flops == linear_macs + 4 * b * n * d + 2 * b * n * d
    # edgewise counts the attention too
    assert counts["default"].macs == linear_macs + attention_macs


def test_unknown_convention_names_the_choices() -> None:
    graph = edgewise.capture(nn.Linear(2, 2), torch.randn(1, 2))
    with pytest.raises(EdgewiseError, match=r"unknown convention 'flops'.*thop"):
        profile(graph, convention_name="flops")
