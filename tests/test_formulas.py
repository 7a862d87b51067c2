"""Counting formulas against counts derived by hand from the layer's shapes.

Every expectation below is written out from the op's definition (the derivation is the
expression), then compared with what `profile` reports for a real nn.Module captured by
`edgewise.capture`. Where a derived output size is used, it is first checked against the
shape torch actually produced, so a wrong derivation fails loudly instead of agreeing
with a wrong formula.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import edgewise
from edgewise.analysis.formulas import (
    FACTORIES,
    FORMULAS,
    VIEWS,
    ZERO,
    Count,
    adaptive_window_elements,
    formula_for,
    pool_window_elements,
    register,
    scaled_add_ops,
)
from edgewise.analysis.profile import ProfileRow, profile
from edgewise.ir.categories import _TABLE, OpCategory, category_of
from edgewise.ir.graph import Graph

F32 = 4  # bytes per float32 element


class Fn(nn.Module):
    """Wraps a function of the inputs as a module, so it can be captured."""

    def __init__(self, fn) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.fn = fn

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.fn(*args)


def totals(model: nn.Module, *args: torch.Tensor) -> ProfileRow:
    """Default-convention totals of one forward; fails if any op went uncounted."""
    graph = edgewise.capture(model, *args)
    prof = profile(graph)
    assert prof.uncounted == (), f"uncounted ops: {prof.uncounted}"
    return prof.totals


def out_shape(graph: Graph) -> tuple[int, ...]:
    """Shape of the last op's first output (the model's output in these tests)."""
    return graph.tensors[graph.ops[-1].outputs[0]].shape


def conv_out(size: int, k: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def conv_transpose_out(size: int, k: int, stride: int, padding: int, out_pad: int) -> int:
    return (size - 1) * stride - 2 * padding + (k - 1) + out_pad + 1


# --------------------------------------------------------------------------- convolution


@pytest.mark.parametrize(
    ("c_in", "c_out", "k", "stride", "padding", "dilation", "groups", "bias"),
    [
        (3, 8, (3, 3), 1, 1, 1, 1, True),  # plain 3x3, same padding
        (4, 6, (3, 3), 2, 1, 1, 2, True),  # strided, grouped
        (4, 8, (3, 5), 1, 2, 2, 1, False),  # dilated, non-square kernel, no bias
        (6, 6, (3, 3), 2, 1, 1, 6, False),  # depthwise
        (8, 4, (1, 1), 1, 0, 1, 4, True),  # grouped pointwise
    ],
)
def test_conv2d(
    c_in: int, c_out: int, k: tuple[int, int], stride: int, padding: int, dilation: int,
    groups: int, bias: bool,
) -> None:  # fmt: skip
    n, h, w = 2, 11, 9
    conv = nn.Conv2d(c_in, c_out, k, stride, padding, dilation, groups, bias=bias)
    x = torch.randn(n, c_in, h, w)
    graph = edgewise.capture(conv, x)
    h_out = conv_out(h, k[0], stride, padding, dilation)
    w_out = conv_out(w, k[1], stride, padding, dilation)
    assert out_shape(graph) == (n, c_out, h_out, w_out)

    got = profile(graph).totals
    # each output element is a dot product over (c_in / groups) channels x the kernel
    assert got.macs == n * c_out * h_out * w_out * (c_in // groups) * k[0] * k[1]
    # one bias add per output element, nothing else
    assert got.vector_ops == (n * c_out * h_out * w_out if bias else 0)
    assert got.params == c_out * (c_in // groups) * k[0] * k[1] + (c_out if bias else 0)


def test_conv1d_and_conv3d() -> None:
    n, c_in, c_out, length = 2, 4, 6, 20
    got = totals(nn.Conv1d(c_in, c_out, 5, stride=3, padding=2), torch.randn(n, c_in, length))
    l_out = conv_out(length, 5, 3, 2, 1)
    assert got.macs == n * c_out * l_out * c_in * 5
    assert got.vector_ops == n * c_out * l_out

    d = 6
    got = totals(nn.Conv3d(c_in, c_out, 3, groups=2, bias=False), torch.randn(1, c_in, d, d, d))
    d_out = conv_out(d, 3, 1, 0, 1)
    assert got.macs == 1 * c_out * d_out**3 * (c_in // 2) * 3**3
    assert got.vector_ops == 0


@pytest.mark.parametrize(("stride", "groups", "bias"), [(1, 1, True), (2, 2, True), (2, 4, False)])
def test_conv_transpose2d(stride: int, groups: int, bias: bool) -> None:
    n, c_in, c_out, h, k, padding, out_pad = 2, 8, 12, 5, 3, 1, stride - 1
    conv = nn.ConvTranspose2d(c_in, c_out, k, stride, padding, out_pad, groups, bias=bias)
    graph = edgewise.capture(conv, torch.randn(n, c_in, h, h))
    h_out = conv_transpose_out(h, k, stride, padding, out_pad)
    assert out_shape(graph) == (n, c_out, h_out, h_out)

    got = profile(graph).totals
    # every *input* element is scattered through its k x k kernel into c_out / groups
    # output channels; stride spreads the results out but adds no work
    assert got.macs == n * c_in * h * h * (c_out // groups) * k * k
    assert got.vector_ops == (n * c_out * h_out * h_out if bias else 0)


def test_conv_transpose1d() -> None:
    n, c_in, c_out, length, k = 3, 4, 2, 7, 4
    got = totals(nn.ConvTranspose1d(c_in, c_out, k, stride=2), torch.randn(n, c_in, length))
    l_out = conv_transpose_out(length, k, 2, 0, 0)
    assert got.macs == n * c_in * length * c_out * k
    assert got.vector_ops == n * c_out * l_out


# --------------------------------------------------------------------------- matmuls


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lead", [(5,), (2, 7), (2, 3, 4)])
def test_linear(lead: tuple[int, ...], bias: bool) -> None:
    d_in, d_out = 12, 10
    rows = 1
    for s in lead:
        rows *= s
    got = totals(nn.Linear(d_in, d_out, bias=bias), torch.randn(*lead, d_in))
    assert got.macs == rows * d_in * d_out  # every row of x times W^T
    assert got.vector_ops == (rows * d_out if bias else 0)  # bias add per output element
    assert got.params == d_in * d_out + (d_out if bias else 0)


@pytest.mark.parametrize("widths", [(8, 8), (8, 16, 4), (3, 32, 32, 7, 5), (16,) * 7])
def test_linear_chain_family(widths: tuple[int, ...]) -> None:
    """A chain of n linears: MACs add up layer by layer, whatever the widths."""
    batch = 3
    pairs = list(itertools.pairwise(widths))
    model = nn.Sequential(*(nn.Linear(a, b) for a, b in pairs))
    graph = edgewise.capture(model, torch.randn(batch, widths[0]))
    prof = profile(graph)
    assert prof.totals.macs == sum(batch * a * b for a, b in pairs)
    assert prof.totals.vector_ops == sum(batch * b for _, b in pairs)
    assert prof.totals.params == graph.parameter_count == sum(a * b + b for a, b in pairs)
    # one row per layer, and each row carries exactly that layer's work
    assert [r.macs for r in prof.rows] == [batch * a * b for a, b in pairs]


def test_bmm() -> None:
    b, m, k, n = 3, 4, 5, 6
    got = totals(Fn(torch.bmm), torch.randn(b, m, k), torch.randn(b, k, n))
    assert (got.macs, got.vector_ops) == (b * m * k * n, 0)


@pytest.mark.parametrize(
    ("alpha", "beta", "per_out"),
    [
        (1, 1, 1),  # input + product: one add
        (0.5, 2, 3),  # 2*input + 0.5*product: scale, scale, add
        (2, 0, 1),  # input ignored: only the alpha scale
        (1, 0.5, 2),  # beta scale and add
    ],
)
def test_baddbmm(alpha: float, beta: float, per_out: int) -> None:
    b, m, k, n = 2, 3, 4, 5
    fn = Fn(lambda x, y, z: torch.baddbmm(x, y, z, alpha=alpha, beta=beta))
    got = totals(fn, torch.randn(b, m, n), torch.randn(b, m, k), torch.randn(b, k, n))
    assert got.macs == b * m * k * n
    assert got.vector_ops == per_out * b * m * n
    assert scaled_add_ops(beta, alpha) == per_out


def test_addmm_with_alpha_and_mv_dot() -> None:
    m, k, n = 3, 4, 5
    fn = Fn(lambda c, a, b: torch.addmm(c, a, b, alpha=3))  # 3*(a@b) + c: scale, add
    got = totals(fn, torch.randn(m, n), torch.randn(m, k), torch.randn(k, n))
    assert (got.macs, got.vector_ops) == (m * k * n, 2 * m * n)

    b = 6  # addbmm sums the b products into one [m, n] output, then adds the input once
    got = totals(Fn(torch.addbmm), torch.randn(m, n), torch.randn(b, m, k), torch.randn(b, k, n))
    assert (got.macs, got.vector_ops) == (b * m * k * n, m * n)

    got = totals(Fn(torch.mv), torch.randn(m, k), torch.randn(k))
    assert (got.macs, got.vector_ops) == (m * k, 0)
    got = totals(Fn(torch.dot), torch.randn(k), torch.randn(k))
    assert got.macs == k


# --------------------------------------------------------------------------- attention


def attention_path(graph: Graph) -> str:
    """'fused' when the capture kept SDPA as one kernel, 'math' when it saw it decomposed."""
    fused = any(op.category is OpCategory.ATTENTION for op in graph.ops)
    return "fused" if fused else "math"


@pytest.mark.parametrize(
    ("nq", "nk", "d", "dv", "mask"),
    [
        (6, 6, 8, 8, None),  # self-attention
        (6, 6, 8, 8, "float"),  # self-attention, additive mask
        (4, 9, 8, 8, "bool"),  # cross-attention, boolean mask
        (4, 9, 8, 5, None),  # cross-attention, value head dim differs
        (4, 9, 8, 5, "float"),
    ],
)
def test_scaled_dot_product_attention(nq: int, nk: int, d: int, dv: int, mask: str | None) -> None:
    b, h = 2, 3
    q, k, v = torch.randn(b, h, nq, d), torch.randn(b, h, nk, d), torch.randn(b, h, nk, dv)
    args = [q, k, v]
    if mask == "float":
        args.append(torch.randn(nq, nk))
    elif mask == "bool":
        args.append(torch.rand(nq, nk) > 0.3)
    graph = edgewise.capture(Fn(lambda *t: F.scaled_dot_product_attention(*t[:3], *t[3:])), *args)
    prof = profile(graph)
    assert prof.uncounted == ()
    scores = b * h * nq * nk
    # QK^T: d MACs per score; AV: dv MACs per score. Whatever kernel ran.
    assert prof.totals.macs == scores * (d + dv)

    if attention_path(graph) == "fused":
        # one kernel: scale 1 + softmax 5 per score, + 1 for an additive mask; a boolean
        # mask is first turned into an additive one (one `where` per mask element)
        expected = scores * (6 + (mask is not None)) + (nq * nk if mask == "bool" else 0)
    else:
        # decomposed: q and k^T are each scaled by sqrt(scale), the mask is added to the
        # scores, then softmax (5 per score)
        expected = b * h * nq * d + b * h * d * nk + scores * ((mask is not None) + 5)
    assert prof.totals.vector_ops == expected
    assert (dv == d) == (attention_path(graph) == "fused")  # torch 2.13 CPU kernel choice


def test_explicit_attention() -> None:
    b, h, n, d = 2, 4, 7, 8

    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return ((q @ k.transpose(-2, -1)) * d**-0.5).softmax(-1) @ v

    got = totals(Fn(attend), *(torch.randn(b, h, n, d) for _ in range(3)))
    scores = b * h * n * n
    assert got.macs == scores * d + scores * d  # QK^T, then AV
    assert got.vector_ops == scores * 1 + scores * 5  # scale, softmax


# --------------------------------------------------------------------------- norms


@pytest.mark.parametrize(
    ("norm", "per_element"),
    [
        (nn.GroupNorm(4, 8), 6 + 2),  # statistics 6 (mean 1, var 3, normalize 2) + affine
        (nn.GroupNorm(2, 8, affine=False), 6),
        (nn.BatchNorm2d(8), 2 + 2),  # running stats: sub, mul by rstd + affine
        (nn.BatchNorm2d(8, affine=False), 2),
        (nn.InstanceNorm2d(8), 6),  # statistics from the input, as group norm
        (nn.InstanceNorm2d(8, affine=True), 6 + 2),
    ],
    ids=["gn", "gn-plain", "bn", "bn-plain", "in", "in-affine"],
)
def test_image_norms(norm: nn.Module, per_element: int) -> None:
    x = torch.randn(2, 8, 5, 6)
    got = totals(norm, x)
    assert got.vector_ops == x.numel() * per_element
    assert got.macs == 0


@pytest.mark.parametrize(
    ("norm", "per_element"),
    [
        (nn.LayerNorm(16), 6 + 2),  # statistics 6 + weight 1 + bias 1
        (nn.LayerNorm(16, elementwise_affine=False), 6),
        (nn.LayerNorm(16, bias=False), 6 + 1),
        (nn.LayerNorm((4, 16)), 6 + 2),
    ],
    ids=["ln", "ln-plain", "ln-nobias", "ln-2d"],
)
def test_layer_norm(norm: nn.Module, per_element: int) -> None:
    x = torch.randn(3, 4, 16)
    assert totals(norm, x).vector_ops == x.numel() * per_element


# --------------------------------------------------------------------------- per element


@pytest.mark.parametrize(
    ("module", "per_element"),
    [
        (nn.ReLU(), 1),
        (nn.GELU(), 5),  # 0.5*x*(1 + erf(x/sqrt 2)): div, erf, add, mul, mul
        (nn.GELU(approximate="tanh"), 9),
        (nn.SiLU(), 5),  # x * sigmoid(x), sigmoid = neg, exp, add, reciprocal
        (nn.Sigmoid(), 4),
        (nn.LeakyReLU(), 2),
        (nn.PReLU(), 2),
        (nn.Softmax(dim=-1), 5),  # max, sub, exp, sum, div
        (nn.LogSoftmax(dim=1), 5),
    ],
)
def test_per_element_weights(module: nn.Module, per_element: int) -> None:
    x = torch.randn(2, 3, 10)
    assert totals(module, x).vector_ops == x.numel() * per_element


def test_reductions() -> None:
    x = torch.randn(4, 6, 5)
    rows, n = 4 * 6, 5
    assert totals(Fn(lambda t: t.sum(-1)), x).vector_ops == x.numel()
    assert totals(Fn(lambda t: t.mean(-1)), x).vector_ops == x.numel() + rows  # adds, divides
    # var: sub mean, square, add per element (the mean pass is the add), divide per row
    assert totals(Fn(lambda t: t.var(-1)), x).vector_ops == 3 * x.numel() + rows
    # logsumexp: max, sub, exp, add per element; log, add back the max per row
    assert totals(Fn(lambda t: t.logsumexp(-1)), x).vector_ops == 4 * rows * n + 2 * rows


# --------------------------------------------------------------------------- pooling


def test_pooling() -> None:
    n, c, h = 2, 3, 8
    x = torch.randn(n, c, h, h)
    assert conv_out(h, 3, 2, 1, 1) == 4
    # max: one compare per input element in each window: windows [-1, 2), [1, 4), [3, 6),
    # [5, 8) hold 2, 3, 3, 3 elements along each dim (padding holds nothing)
    assert totals(nn.MaxPool2d(3, 2, 1), x).vector_ops == n * c * (2 + 3 + 3 + 3) ** 2
    # average: one add per window element, one divide per output
    assert totals(nn.AvgPool2d(2), x).vector_ops == n * c * (h // 2) ** 2 * (2 * 2 + 1)
    # global average: every input added once, one divide per channel
    assert totals(nn.AdaptiveAvgPool2d(1), x).vector_ops == x.numel() + n * c
    # 8 -> 4 tiles exactly: as global pooling, per window
    assert totals(nn.AdaptiveAvgPool2d(4), x).vector_ops == x.numel() + n * c * 4 * 4


def test_avg_pool_window_is_clipped_to_the_input() -> None:
    """HF EfficientNet's pooler, AvgPool2d(1280, ceil_mode=True) on a 7x7 map: its one
    window, clipped to the map, adds the 7 x 7 inputs of each channel (not 1280 x 1280),
    then divides once per channel."""
    x = torch.randn(1, 1280, 7, 7)
    pool = nn.AvgPool2d(1280, ceil_mode=True)
    assert out_shape(edgewise.capture(pool, x)) == (1, 1280, 1, 1)
    assert totals(pool, x).vector_ops == 1280 * 7 * 7 + 1280 == 64_000
    # padding holds nothing to add: windows [0,2) [1,4) [3,6) [5,8) of 8 read 11 per dim
    n, c = 2, 3
    x = torch.randn(n, c, 8, 8)
    assert totals(nn.AvgPool2d(3, 2, padding=1), x).vector_ops == n * c * (11 * 11 + 4 * 4)


def test_avg_pool_inside_the_input_counts_whole_windows() -> None:
    """3x3 windows, stride 2, on 9x9: 4 x 4 outputs, each adding 9 inputs (as before)."""
    n, c = 2, 3
    x = torch.randn(n, c, 9, 9)
    assert out_shape(edgewise.capture(nn.AvgPool2d(3, 2), x)) == (n, c, 4, 4)
    assert totals(nn.AvgPool2d(3, 2), x).vector_ops == n * c * 4 * 4 * (3 * 3 + 1)


@pytest.mark.parametrize(
    ("size_in", "kernel", "stride", "padding", "ceil_mode"),
    [(7, 1280, 1280, 0, True), (8, 3, 2, 1, False), (8, 3, 2, 1, True), (9, 3, 2, 0, True),
     (10, 2, 2, 0, False), (5, 4, 3, 2, True)],
)  # fmt: skip
def test_pool_window_elements_match_torch(
    size_in: int, kernel: int, stride: int, padding: int, ceil_mode: bool
) -> None:
    """Reference: average-pooling ones with divisor 1 sums the input elements each window
    adds."""
    ones = torch.ones(1, 1, 1, size_in)
    sums = F.avg_pool2d(ones, (1, kernel), (1, stride), (0, padding), ceil_mode, divisor_override=1)
    assert pool_window_elements(size_in, sums.shape[-1], kernel, stride, padding) == sums.sum()


@pytest.mark.parametrize(
    ("size_in", "kernel", "stride", "padding", "dilation", "ceil_mode"),
    [(7, 3, 2, 0, 1, True), (8, 3, 2, 1, 1, True), (9, 3, 2, 1, 2, True), (7, 5, 5, 2, 1, True),
     (10, 2, 2, 0, 1, False), (11, 3, 3, 1, 2, False)],
)  # fmt: skip
def test_max_pool_compares_only_what_its_windows_hold(
    size_in: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> None:
    """By hand: each output compares the inputs its window covers (positions
    i*stride - padding + j*dilation inside the input); padding and a ceil_mode window's
    overhang hold nothing. Counted on a 2-D pool of identical rows and columns."""
    x = torch.randn(2, 3, size_in, size_in)
    pool = nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    outs = pool(x).shape[-1]
    per_dim = sum(
        sum(0 <= i * stride - padding + j * dilation < size_in for j in range(kernel))
        for i in range(outs)
    )
    assert totals(pool, x).vector_ops == 2 * 3 * per_dim**2
    if padding == 0 and not ceil_mode and dilation == 1:  # whole windows: out x kernel
        assert per_dim == outs * kernel


def test_adaptive_pool_overlapping_windows() -> None:
    """6 -> 4: windows [0,2) [1,3) [3,5) [4,6), 2 elements each, 8 in all per dim."""
    n, c = 2, 3
    x = torch.randn(n, c, 6, 6)
    assert adaptive_window_elements(6, 4) == 2 + 2 + 2 + 2
    assert totals(nn.AdaptiveAvgPool2d(4), x).vector_ops == n * c * 8 * 8 + n * c * 4 * 4
    assert totals(nn.AdaptiveMaxPool2d(4), x).vector_ops == n * c * 8 * 8


@pytest.mark.parametrize(("size_in", "size_out"), [(6, 4), (7, 3), (10, 10), (5, 1), (3, 5)])
def test_adaptive_window_elements_match_torch(size_in: int, size_out: int) -> None:
    """Reference: input j is in window i iff pooling the one-hot e_j is non-zero at i."""
    eye = torch.eye(size_in).unsqueeze(1)  # size_in one-hot signals of length size_in
    members = F.adaptive_avg_pool1d(eye, size_out) != 0
    assert adaptive_window_elements(size_in, size_out) == int(members.sum())


# --------------------------------------------------------------------------- bytes, free ops


def test_views_cost_nothing() -> None:
    def relabel(x: torch.Tensor) -> torch.Tensor:
        y = x.view(2, 3, 20).permute(0, 2, 1).transpose(1, 2).unsqueeze(0).flatten(0, 1)
        return y[:, 1:, ::2].reshape(2, -1, 10).squeeze()

    graph = edgewise.capture(Fn(relabel), torch.randn(6, 20))
    assert len(graph.ops) >= 6
    assert {op.category for op in graph.ops} == {OpCategory.VIEW}
    got = profile(graph).totals
    assert (got.macs, got.vector_ops, got.moved_bytes, got.activation_bytes) == (0, 0, 0, 0)


def test_data_movement_moves_bytes() -> None:
    a, b = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    got = totals(Fn(lambda x, y: torch.cat([x, y], dim=1)), a, b)
    # read both inputs, write the output (which holds the same elements again)
    assert got.moved_bytes == (a.numel() + b.numel()) * F32 * 2
    assert (got.macs, got.vector_ops) == (0, 0)
    assert got.activation_bytes == (a.numel() + b.numel()) * F32

    got = totals(Fn(lambda x: x.transpose(1, 2).contiguous()), a)  # one copying clone
    assert got.moved_bytes == 2 * a.numel() * F32
    got = totals(Fn(lambda x: F.pad(x, (1, 2))), a)  # read 2x3x4, write 2x3x7
    assert got.moved_bytes == (2 * 3 * 4 + 2 * 3 * 7) * F32


def test_upsampling() -> None:
    x = torch.randn(1, 2, 4, 4)
    out = 1 * 2 * 8 * 8
    nearest = totals(nn.Upsample(scale_factor=2), x)
    assert (nearest.vector_ops, nearest.moved_bytes) == (0, (x.numel() + out) * F32)
    bilinear = totals(nn.Upsample(scale_factor=2, mode="bilinear"), x)
    assert bilinear.vector_ops == out * (4 + 3)  # 4 taps: 4 multiplies, 3 adds
    bicubic = totals(nn.Upsample(scale_factor=2, mode="bicubic"), x)
    assert bicubic.vector_ops == out * (16 + 15)
    linear = totals(nn.Upsample(scale_factor=3, mode="linear"), torch.randn(2, 3, 5))
    assert linear.vector_ops == 2 * 3 * 15 * (2 + 1)


@pytest.mark.parametrize(("mode", "per_output"), [("bilinear", 4 + 3), ("nearest", 0)])
def test_grid_sample(mode: str, per_output: int) -> None:
    x, grid = torch.randn(2, 3, 6, 6), torch.rand(2, 4, 5, 2) * 2 - 1
    got = totals(Fn(lambda t, g: F.grid_sample(t, g, mode=mode, align_corners=False)), x, grid)
    out = 2 * 3 * 4 * 5
    assert got.vector_ops == out * per_output
    assert got.moved_bytes == (x.numel() + grid.numel() + out) * F32


def test_copy_reads_source_only() -> None:
    def overwrite(x: torch.Tensor) -> torch.Tensor:
        y = torch.empty(3, 4)
        return y.copy_(x)

    got = totals(Fn(overwrite), torch.randn(3, 4))
    assert got.moved_bytes == 2 * 3 * 4 * F32  # read src, write dst


# --------------------------------------------------------------------------- uncounted


def test_op_without_formula_is_listed_not_dropped() -> None:
    def mixed(x: torch.Tensor) -> torch.Tensor:
        return torch.cumprod(x, dim=1) + torch.sort(x, dim=1).values

    x = torch.randn(3, 5)
    graph = edgewise.capture(Fn(mixed), x)
    prof = profile(graph)
    ledger = {u.target: u for u in prof.uncounted}
    assert set(ledger) == {"aten.cumprod.default", "aten.sort.default"}
    assert ledger["aten.cumprod.default"].occurrences == 1
    assert ledger["aten.sort.default"].output_bytes == x.numel() * (F32 + 8)  # values, int64 idx
    assert prof.totals.vector_ops == x.numel()  # only the add is counted


# --------------------------------------------------------------------------- registry


def test_count_adds_up() -> None:
    parts = [Count(macs=3, vector_ops=1), Count(moved_bytes=8), Count(macs=2, vector_ops=5)]
    total = sum(parts)
    assert total == Count(macs=5, vector_ops=6, moved_bytes=8)
    assert total.flops() == 2 * 5 + 6
    assert total.flops(flops_per_mac=1) == 5 + 6
    assert sum([], ZERO) == ZERO


def test_registry_rejects_duplicates_and_resolves_inplace() -> None:
    with pytest.raises(ValueError, match=r"aten\.mm registered twice"):
        register("mm")(lambda a: ZERO)
    assert formula_for("add_") is FORMULAS["add"]
    assert formula_for("no_such_op") is None


def _composite_only(name: str) -> bool:
    """True if every non-out overload of aten.<name> decomposes before a dispatch mode."""
    packet = getattr(torch.ops.aten, name, None)
    if packet is None:
        return False
    overloads = [o for o in packet.overloads() if "out" not in o]
    return bool(overloads) and all(
        torch._C._dispatch_has_kernel_for_dispatch_key(
            getattr(packet, o).name(), "CompositeImplicitAutograd"
        )
        for o in overloads
    )


# categorized kernels we cannot count from shapes: packed [B, N, H, d] layouts and
# variable-length batches need the cumulative sequence lengths (data), not shapes
_KNOWN_UNCOUNTED = {"_flash_attention_forward", "_efficient_attention_forward"}


def test_categories_and_formulas_agree() -> None:
    for name in FORMULAS:
        category = category_of(name)
        if name in FACTORIES:
            assert category is OpCategory.OTHER, name
        else:
            assert category is not OpCategory.OTHER, f"aten.{name} has a formula, no category"
    for name in VIEWS:
        assert category_of(name) is OpCategory.VIEW, name
    for names in _TABLE.values():
        for name in names:
            if formula_for(name) is None:
                assert name in _KNOWN_UNCOUNTED or _composite_only(name), (
                    f"aten.{name} reaches the capture but has no formula"
                )


def test_counts_once_per_signature_equal_counts_per_op() -> None:
    """`op_cost_columns` counts each distinct signature once: every op still gets what its
    own formula says, under every convention; and values that compare equal but are not
    the same (1, 1.0, True; 0.0 and -0.0) never share a signature."""
    from msgspec.structs import replace

    from edgewise.analysis.conventions import CONVENTIONS
    from edgewise.analysis.formulas import resolve, signature
    from edgewise.analysis.profile import op_cost_columns
    from edgewise.capture.source import graph_from_module

    graph = graph_from_module("tests.models:tiny_unet")
    for conv in CONVENTIONS.values():
        direct = [conv.rule(resolve(op, graph), graph.scopes.get(op.scope, "")) for op in graph.ops]
        assert op_cost_columns(graph, conv).counts == direct, conv.name
    op = next(op for op in graph.ops if op.name == "addmm")
    keys = {
        signature(replace(op, kwargs={"alpha": alpha}), graph.tensors)
        for alpha in (1, 1.0, True, 0.0, -0.0)
    }
    assert len(keys) == 5
