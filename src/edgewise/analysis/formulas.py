"""Per-op cost formulas: pure functions of an op's argument shapes, in one registry.

Conventions (edgewise default; see docs/conventions.md):
- MAC: one multiply-accumulate. Convolution, mm/addmm/bmm/baddbmm and attention (QK^T
  and AV) are counted in MACs. FLOPs = 2 x MACs + vector ops.
- Vector ops: one per output element for plain arithmetic; functions, normalizations
  and reductions carry the per-element weights in `VECTOR_OPS_PER_ELEMENT` and the
  docstrings below. A transcendental (exp, erf, tanh) counts as one vector op.
- Views cost nothing. Data-movement ops cost no arithmetic but move bytes
  (`moved_bytes` = bytes read + bytes written).
- An op with no formula is not zero: it goes to the uncounted ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from math import prod
from typing import Any

from edgewise.ir.graph import Graph, Op, Tensor, TensorRef


@dataclass(frozen=True, slots=True)
class Count:
    """What one op (or any group of ops, by `sum`) costs."""

    macs: int = 0  # multiply-accumulates
    vector_ops: int = 0  # non-MAC arithmetic, weighted per element
    moved_bytes: int = 0  # bytes read + written by data-movement ops

    def __add__(self, other: Count) -> Count:
        return Count(
            self.macs + other.macs,
            self.vector_ops + other.vector_ops,
            self.moved_bytes + other.moved_bytes,
        )

    def __radd__(self, other: int) -> Count:  # lets sum() start from 0
        return self if other == 0 else NotImplemented

    def flops(self, flops_per_mac: int = 2) -> int:
        return flops_per_mac * self.macs + self.vector_ops


ZERO = Count()


@dataclass(frozen=True, slots=True)
class OpArgs:
    """An op's arguments with tensor references resolved to tensor records."""

    op: Op
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    outputs: tuple[Tensor, ...]

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        """Positional argument `index`, or keyword `name`, or `default`."""
        if index < len(self.args):
            return self.args[index]
        return self.kwargs.get(name, default)

    @property
    def tensors_in(self) -> Iterator[Tensor]:
        return (a for a in _flatten(self.args) if isinstance(a, Tensor))

    @property
    def out(self) -> Tensor:
        return self.outputs[0]


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, tuple | list):
        for v in value:
            yield from _flatten(v)
    else:
        yield value


def resolve(op: Op, graph: Graph) -> OpArgs:
    def res(v: Any) -> Any:
        if isinstance(v, TensorRef):
            return graph.tensors[v.id]
        if isinstance(v, tuple | list):
            return tuple(res(x) for x in v)
        return v

    return OpArgs(
        op=op,
        args=res(op.args),
        kwargs={k: res(v) for k, v in op.kwargs.items()},
        outputs=tuple(graph.tensors[t] for t in op.outputs),
    )


Formula = Callable[[OpArgs], Count]
FORMULAS: dict[str, Formula] = {}


def register(*names: str) -> Callable[[Formula], Formula]:
    """Register a formula under ATen overload packet names ("addmm", "add_")."""

    def wrap(fn: Formula) -> Formula:
        for name in names:
            if name in FORMULAS:
                raise ValueError(f"formula for aten.{name} registered twice ({fn.__name__})")
            FORMULAS[name] = fn
        return fn

    return wrap


def formula_for(op_name: str) -> Formula | None:
    """The formula for an overload packet name; in-place "add_" falls back to "add"."""
    return FORMULAS.get(op_name) or FORMULAS.get(op_name.rstrip("_"))


# --------------------------------------------------------------------------- matmuls


@register("mm")
def mm(a: OpArgs) -> Count:
    """[M, K] @ [K, N]: M*K*N MACs."""
    (m, k), n = a.arg(0, "self").shape, a.arg(1, "mat2").shape[-1]
    return Count(macs=m * k * n)


@register("addmm")
def addmm(a: OpArgs) -> Count:
    """bias + [M, K] @ [K, N]: M*K*N MACs, plus M*N adds for the bias (linear layers)."""
    (m, k), n = a.arg(1, "mat1").shape, a.arg(2, "mat2").shape[-1]
    return Count(macs=m * k * n, vector_ops=m * n)


@register("bmm")
def bmm(a: OpArgs) -> Count:
    """[B, M, K] @ [B, K, N]: B*M*K*N MACs."""
    b, m, k = a.arg(0, "self").shape
    return Count(macs=b * m * k * a.arg(1, "mat2").shape[-1])


@register("baddbmm")
def baddbmm(a: OpArgs) -> Count:
    """beta*input + alpha*([B,M,K] @ [B,K,N]): B*M*K*N MACs; one vector op per output
    element for the add when beta != 0 and one for the scale when alpha != 1."""
    b, m, k = a.arg(1, "batch1").shape
    n = a.arg(2, "batch2").shape[-1]
    beta, alpha = a.kwargs.get("beta", 1), a.kwargs.get("alpha", 1)
    return Count(macs=b * m * k * n, vector_ops=b * m * n * ((beta != 0) + (alpha != 1)))


@register("linear")
def linear(a: OpArgs) -> Count:
    """x[..., K] @ W[N, K]^T (+ bias): prod(x.shape[:-1])*K*N MACs, plus bias adds."""
    x, w, bias = a.arg(0, "input"), a.arg(1, "weight"), a.arg(2, "bias")
    rows = prod(x.shape[:-1])
    return Count(macs=rows * x.shape[-1] * w.shape[0], vector_ops=a.out.numel if bias else 0)


# --------------------------------------------------------------------------- convolution


def conv_macs(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    transposed: bool,
) -> int:
    """MACs of an N-d convolution from shapes alone.

    The weight is [Cout, Cin/groups, *k] (normal) or [Cin, Cout/groups, *k] (transposed),
    so one output element of a normal conv takes (Cin/groups)*prod(k) MACs:
        N * Cout * prod(out_spatial) * (Cin/groups) * prod(k) = N * prod(out_spatial) * numel(W).
    A transposed conv scatters each *input* element through its kernel:
        N * prod(in_spatial) * numel(W)  (= N * Cin * prod(in_spatial) * (Cout/groups) * prod(k)).
    Stride, padding and dilation change only the spatial sizes, which the shapes carry.
    """
    spatial = x_shape[2:] if transposed else out_shape[2:]
    return x_shape[0] * prod(spatial) * prod(w_shape)


@register("convolution", "_convolution", "conv1d", "conv2d", "conv3d", "_slow_conv2d_forward",
          "mkldnn_convolution")  # fmt: skip
def convolution(a: OpArgs) -> Count:
    """Convolution MACs (see `conv_macs`), plus one add per output element for a bias."""
    x, w, bias = a.arg(0, "input"), a.arg(1, "weight"), a.arg(2, "bias")
    transposed = bool(a.arg(6, "transposed", False)) if a.op.name in ("convolution", "_convolution") else False
    macs = conv_macs(x.shape, w.shape, a.out.shape, transposed)
    return Count(macs=macs, vector_ops=a.out.numel if bias is not None else 0)


# --------------------------------------------------------------------------- attention


def sdpa_count(
    q: tuple[int, ...], k: tuple[int, ...], v: tuple[int, ...], masked: bool
) -> Count:
    """Scaled-dot-product attention on q [..., Nq, d], k [..., Nk, d], v [..., Nk, dv].

    MACs: QK^T takes batch*Nq*Nk*d and AV takes batch*Nq*Nk*dv, where batch is the
    product of q's leading dims (B x heads; grouped-query kv heads are broadcast).
    Vector ops per score element: 1 scale + 5 softmax (max, sub, exp, sum, div) = 6,
    plus 1 for an additive mask. Causal masking is counted as full attention.
    """
    *lead, nq, d = q
    nk, dv = k[-2], v[-1]
    scores = prod(lead) * nq * nk
    return Count(macs=scores * (d + dv), vector_ops=scores * (6 + masked))


@register(
    "scaled_dot_product_attention",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_attention_math",
    "_scaled_dot_product_fused_attention_overrideable",
)
def sdpa(a: OpArgs) -> Count:
    q, k, v = a.args[0], a.args[1], a.args[2]
    mask = a.kwargs.get("attn_mask") or a.kwargs.get("attn_bias")
    if mask is None and a.op.name in ("scaled_dot_product_attention",
                                      "_scaled_dot_product_efficient_attention") and len(a.args) > 3:
        mask = a.args[3] if isinstance(a.args[3], Tensor) else None  # fmt: skip
    return sdpa_count(q.shape, k.shape, v.shape, masked=mask is not None)


# --------------------------------------------------------------------------- per element

VECTOR_OPS_PER_ELEMENT: dict[str, int] = {
    # plain arithmetic, comparisons, selection, casts: 1 per output element
    **dict.fromkeys(
        ("add", "sub", "mul", "div", "rsub", "neg", "abs", "reciprocal", "pow", "sqrt",
         "rsqrt", "square", "exp", "log", "sin", "cos", "tanh", "erf", "relu", "relu6",
         "hardtanh", "clamp", "clamp_min", "clamp_max", "where", "eq", "ne", "lt", "le",
         "gt", "ge", "masked_fill", "minimum", "maximum", "floor", "ceil", "round", "sign",
         "logical_not", "logical_and", "bitwise_not", "floor_divide", "remainder", "tril",
         "triu", "_to_copy", "fill", "zero"), 1),
    "leaky_relu": 2,  # compare, multiply
    "addcmul": 2, "addcdiv": 2, "lerp": 2,  # product or quotient, then add
    "sigmoid": 4,  # 1 / (1 + exp(-x)): neg, exp, add, reciprocal
    "silu": 5,  # x * sigmoid(x)
    "hardswish": 4,  # x * clamp(x + 3, 0, 6) / 6: add, clamp, mul, div
    "hardsigmoid": 3,  # clamp(x + 3, 0, 6) / 6
    "softplus": 3,  # log(1 + exp(x))
    "mish": 5,  # x * tanh(softplus(x))
    "elu": 3,  # compare, exp, sub (and scale folded)
}  # fmt: skip


def _elementwise(weight: int) -> Formula:
    def count(a: OpArgs) -> Count:
        return Count(vector_ops=weight * a.out.numel)

    return count


for _name, _weight in VECTOR_OPS_PER_ELEMENT.items():
    register(_name)(_elementwise(_weight))


@register("gelu")
def gelu(a: OpArgs) -> Count:
    """erf form 0.5*x*(1 + erf(x/sqrt 2)): div, erf, add, mul, mul = 5 per element;
    tanh form 0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3))): 9 per element."""
    return Count(vector_ops=(9 if a.kwargs.get("approximate") == "tanh" else 5) * a.out.numel)


# --------------------------------------------------------------------------- norms


@register("native_layer_norm", "native_group_norm")
def layer_or_group_norm(a: OpArgs) -> Count:
    """Per element: mean 1 add, variance 3 (sub, square, add), normalize 2 (sub, mul by
    rstd) = 6; the affine scale and shift add 2 -> 8. Per-row rsqrt is negligible."""
    x = a.args[0]
    weight = a.args[2] if a.op.name == "native_layer_norm" else a.args[1]
    return Count(vector_ops=x.numel * (8 if weight is not None else 6))


@register("_native_batch_norm_legit_no_training", "native_batch_norm", "_native_batch_norm_legit")
def batch_norm(a: OpArgs) -> Count:
    """Inference batch norm with running statistics: (x - mean) * rstd is 2 per element,
    the affine scale and shift 2 more. (Fused into the preceding conv on most NPUs.)"""
    x, weight = a.args[0], a.args[1]
    return Count(vector_ops=x.numel * (4 if weight is not None else 2))


@register("_fused_rms_norm", "rms_norm")
def rms_norm(a: OpArgs) -> Count:
    """Per element: square and add for the mean square, multiply by rsqrt, affine 1 = 4."""
    return Count(vector_ops=4 * a.args[0].numel)


# --------------------------------------------------------------------------- reductions


def _reduce(per_input: int, per_output: int = 0) -> Formula:
    def count(a: OpArgs) -> Count:
        return Count(vector_ops=per_input * a.args[0].numel + per_output * a.out.numel)

    return count


register("sum", "amax", "amin", "max", "min", "prod", "any", "all", "argmax", "argmin",
         "cumsum")(_reduce(1))  # fmt: skip
register("mean")(_reduce(1, 1))  # adds, then one divide per output
register("var", "var_mean")(_reduce(3, 1))  # sub, square, add per input; divide per output
register("std")(_reduce(3, 2))  # as var, then sqrt per output
register("_softmax", "softmax", "_log_softmax", "log_softmax")(_reduce(5))  # max, sub, exp, sum, div
register("linalg_vector_norm", "norm")(_reduce(2, 1))  # square, add; sqrt per output
register("logsumexp")(_reduce(3, 2))


@register("avg_pool1d", "avg_pool2d", "avg_pool3d")
def avg_pool(a: OpArgs) -> Count:
    """Per output element: prod(kernel) adds and one divide."""
    kernel = a.arg(1, "kernel_size")
    return Count(vector_ops=a.out.numel * (prod(kernel) + 1))


@register("max_pool2d", "max_pool2d_with_indices", "max_pool1d", "max_pool3d")
def max_pool(a: OpArgs) -> Count:
    """Per output element: prod(kernel) compares."""
    return Count(vector_ops=a.out.numel * prod(a.arg(1, "kernel_size")))


@register("_adaptive_avg_pool2d", "adaptive_avg_pool2d", "_adaptive_avg_pool3d")
def adaptive_avg_pool(a: OpArgs) -> Count:
    """Every input element is added once; one divide per output element."""
    return Count(vector_ops=a.args[0].numel + a.out.numel)


# --------------------------------------------------------------------------- data movement


def _moved(a: OpArgs) -> Count:
    """Bytes read from the inputs plus bytes written to the outputs."""
    read = sum(t.nbytes for t in a.tensors_in)
    return Count(moved_bytes=read + sum(t.nbytes for t in a.outputs))


def _gathered(a: OpArgs) -> Count:
    """Gathers read only what they write (plus the index), not the whole table."""
    written = sum(t.nbytes for t in a.outputs)
    index = sum(t.nbytes for t in a.tensors_in if t.dtype in ("int64", "int32"))
    return Count(moved_bytes=2 * written + index)


register("cat", "stack", "clone", "contiguous", "copy", "constant_pad_nd", "pad", "repeat",
         "roll", "flip", "repeat_interleave", "reflection_pad2d", "replication_pad2d",
         "pixel_shuffle", "im2col", "col2im", "tile", "upsample_nearest1d", "upsample_nearest2d",
         "upsample_nearest3d", "_upsample_nearest_exact2d", "index_put", "scatter",
         "split_with_sizes_copy", "masked_select")(_moved)  # fmt: skip
register("embedding", "index_select", "gather", "index", "_unsafe_index")(_gathered)


@register("upsample_bilinear2d", "_upsample_bilinear2d_aa")
def upsample_bilinear(a: OpArgs) -> Count:
    """Moves bytes like nearest; 4 weight multiplies and 3 adds per output element."""
    return _moved(a) + Count(vector_ops=7 * a.out.numel)


@register("upsample_bicubic2d")
def upsample_bicubic(a: OpArgs) -> Count:
    """16 taps: 16 multiplies and 15 adds per output element."""
    return _moved(a) + Count(vector_ops=31 * a.out.numel)


# --------------------------------------------------------------------------- free ops


def _free(a: OpArgs) -> Count:
    return ZERO


register(
    # views and metadata: no bytes move
    "view", "_unsafe_view", "reshape", "permute", "transpose", "t", "expand", "squeeze",
    "unsqueeze", "slice", "select", "split", "split_with_sizes", "chunk", "unbind", "narrow",
    "as_strided", "alias", "detach", "flatten", "unflatten", "_reshape_alias", "view_as",
    "expand_as", "movedim", "diagonal", "unfold", "lift_fresh", "lift_fresh_copy",
    "dropout", "native_dropout",
    # tensor factories: allocate, compute nothing
    "arange", "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones",
    "ones_like", "full", "full_like", "new_empty", "new_zeros", "new_ones", "new_full",
    "new_empty_strided", "scalar_tensor", "linspace", "rand", "randn", "randn_like",
    "rand_like", "randint", "normal", "uniform", "_local_scalar_dense",
)(_free)  # fmt: skip
