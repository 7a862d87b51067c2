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

A formula (and a convention's rule) reads only the op's target and category, its
non-tensor arguments, and the shape, dtype and kind of its tensors: `signature` is that
much of an op, and counts are computed once per distinct signature (a graph of 10^6 ops
repeats a few hundred).
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


class OpArgs:
    """An op's arguments with tensor references resolved to tensor records.

    Read-only; `args`, `kwargs` and `outputs` are resolved when first read, so a formula
    that needs none of them (a view, an op a convention does not count) costs nothing."""

    __slots__ = ("_args", "_kwargs", "_outputs", "_tensors", "op")
    op: Op
    _tensors: dict[int, Tensor]
    _args: tuple[Any, ...] | None
    _kwargs: dict[str, Any] | None
    _outputs: tuple[Tensor, ...] | None

    def __init__(self, op: Op, tensors: dict[int, Tensor]) -> None:
        set_ = object.__setattr__
        set_(self, "op", op)
        set_(self, "_tensors", tensors)
        set_(self, "_args", None)
        set_(self, "_kwargs", None)
        set_(self, "_outputs", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"OpArgs is read-only (cannot set {name})")

    @property
    def args(self) -> tuple[Any, ...]:
        if self._args is None:
            tensors = self._tensors
            object.__setattr__(self, "_args", tuple([_resolved(v, tensors) for v in self.op.args]))
        return self._args  # type: ignore[return-value]

    @property
    def kwargs(self) -> dict[str, Any]:
        if self._kwargs is None:
            tensors, kwargs = self._tensors, self.op.kwargs
            resolved = {k: _resolved(v, tensors) for k, v in kwargs.items()} if kwargs else {}
            object.__setattr__(self, "_kwargs", resolved)
        return self._kwargs  # type: ignore[return-value]

    @property
    def outputs(self) -> tuple[Tensor, ...]:
        if self._outputs is None:
            tensors = self._tensors
            object.__setattr__(self, "_outputs", tuple([tensors[t] for t in self.op.outputs]))
        return self._outputs  # type: ignore[return-value]

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        """Positional argument `index`, or keyword `name`, or `default`."""
        if index < len(self.op.args):
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


_SCALARS = frozenset((int, float, bool, str, type(None)))


def _resolved(v: Any, tensors: dict[int, Tensor]) -> Any:
    """A value with every `TensorRef` in it replaced by its tensor (sequences as tuples)."""
    kind = type(v)
    if kind in _SCALARS:  # most arguments: checked first, by exact type
        return v
    if kind is TensorRef:
        return tensors[v.id]
    if isinstance(v, tuple | list):
        return tuple([_resolved(x, tensors) for x in v])
    return v


_TENSOR = object()  # marks a tensor in a signature


def _sign(v: Any, tensors: dict[int, Tensor], out: list[Any]) -> None:
    """Append what a formula can see of one argument (its type with its value, so that
    1, 1.0 and True stay apart; a float by its exact hex form)."""
    kind = type(v)
    if kind is TensorRef:
        t = tensors[v.id]
        out += (_TENSOR, t.shape, t.dtype, t.kind)
    elif kind is int or kind is bool or kind is str or v is None:
        out += (kind, v)
    elif kind is tuple or kind is list:
        if all(type(x) is int for x in v):  # a shape, a stride: the integers as they are
            out += (kind, tuple(v))
        else:
            out += (kind, len(v))
            for x in v:
                _sign(x, tensors, out)
    elif kind is float:
        out += (kind, v.hex())
    else:  # anything else (a dict, an object): no signature, counted on its own
        raise TypeError(kind)


def signature(op: Op, tensors: dict[int, Tensor], context: str = "") -> tuple[Any, ...] | None:
    """Everything a formula reads of `op` (see the module docstring), plus `context` (the
    module type a convention may key on), as a hashable key; None when an argument is of
    a type that has no key (such an op is counted on its own)."""
    out: list[Any] = [op.target, op.category, context, len(op.args), len(op.kwargs),
                      len(op.outputs)]  # fmt: skip
    try:
        for v in op.args:
            if type(v) is TensorRef:  # the commonest argument, inline
                t = tensors[v.id]
                out += (_TENSOR, t.shape, t.dtype, t.kind)
            else:
                _sign(v, tensors, out)
        for k, v in op.kwargs.items():
            out.append(k)
            _sign(v, tensors, out)
    except TypeError:
        return None
    for tid in op.outputs:
        t = tensors[tid]
        out += (t.shape, t.dtype, t.kind)
    return tuple(out)


def resolve(op: Op, graph: Graph) -> OpArgs:
    """The op's arguments as tensor records (see `OpArgs`: resolved as they are read)."""
    return OpArgs(op, graph.tensors)


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


def scaled_add_ops(beta: float, alpha: float) -> int:
    """Vector ops per output element of `beta * input + alpha * product`.

    alpha != 1 scales the product (1 multiply); beta != 0 adds the input (1 add) and
    beta not in (0, 1) also scales it (1 multiply). beta == 0 ignores the input.
    """
    return (alpha != 1) + (beta != 0) + (beta not in (0, 1))


@register("addmm")
def addmm(a: OpArgs) -> Count:
    """beta*bias + alpha*([M, K] @ [K, N]): M*K*N MACs, plus M*N*`scaled_add_ops` vector
    ops (M*N bias adds for a linear layer, where beta = alpha = 1)."""
    (m, k), n = a.arg(1, "mat1").shape, a.arg(2, "mat2").shape[-1]
    scale_add = scaled_add_ops(a.kwargs.get("beta", 1), a.kwargs.get("alpha", 1))
    return Count(macs=m * k * n, vector_ops=m * n * scale_add)


@register("bmm")
def bmm(a: OpArgs) -> Count:
    """[B, M, K] @ [B, K, N]: B*M*K*N MACs."""
    b, m, k = a.arg(0, "self").shape
    return Count(macs=b * m * k * a.arg(1, "mat2").shape[-1])


@register("baddbmm")
def baddbmm(a: OpArgs) -> Count:
    """beta*input + alpha*([B,M,K] @ [B,K,N]): B*M*K*N MACs, plus B*M*N*`scaled_add_ops`
    vector ops (the input broadcasts to the [B, M, N] output)."""
    b, m, k = a.arg(1, "batch1").shape
    n = a.arg(2, "batch2").shape[-1]
    scale_add = scaled_add_ops(a.kwargs.get("beta", 1), a.kwargs.get("alpha", 1))
    return Count(macs=b * m * k * n, vector_ops=b * m * n * scale_add)


@register("addbmm")
def addbmm(a: OpArgs) -> Count:
    """beta*input + alpha*sum_b([B,M,K] @ [B,K,N]): B*M*K*N MACs (the sum over b is
    the accumulation), plus M*N*`scaled_add_ops` vector ops on the [M, N] output."""
    b, m, k = a.arg(1, "batch1").shape
    n = a.arg(2, "batch2").shape[-1]
    scale_add = scaled_add_ops(a.kwargs.get("beta", 1), a.kwargs.get("alpha", 1))
    return Count(macs=b * m * k * n, vector_ops=m * n * scale_add)


@register("mv")
def mv(a: OpArgs) -> Count:
    """[M, K] @ [K]: M*K MACs."""
    return Count(macs=prod(a.arg(0, "self").shape))


@register("addmv")
def addmv(a: OpArgs) -> Count:
    """beta*input + alpha*([M, K] @ [K]): M*K MACs, plus M*`scaled_add_ops` vector ops."""
    m, k = a.arg(1, "mat").shape
    scale_add = scaled_add_ops(a.kwargs.get("beta", 1), a.kwargs.get("alpha", 1))
    return Count(macs=m * k, vector_ops=m * scale_add)


@register("dot", "vdot")
def dot(a: OpArgs) -> Count:
    """[K] . [K]: K MACs."""
    return Count(macs=a.arg(0, "self").numel)


@register("_scaled_mm")
def scaled_mm(a: OpArgs) -> Count:
    """Low-precision [M, K] @ [K, N] with per-tensor or per-row scales: M*K*N MACs (the
    scaling is folded into the epilogue and not counted)."""
    (m, k), n = a.arg(0, "self").shape, a.arg(1, "mat2").shape[-1]
    return Count(macs=m * k * n)


@register("matmul")
def matmul(a: OpArgs) -> Count:
    """Broadcast matmul (an ONNX MatMul ATen would split differently): each output
    element is one K-long dot product, K the left operand's last dim."""
    return Count(macs=a.out.numel * a.args[0].shape[-1])


@register("einsum")
def einsum(a: OpArgs) -> Count:
    """einsum(equation, operands) with two operands: one MAC per point of the whole index
    space ("bhqd,bhkd->bhqk" is b*h*q*k*d MACs; "..." dims multiply in). Any other
    number of operands counts one add per input element (a sum or a trace)."""
    equation, operands = a.args[0], a.args[1]
    if len(operands) != 2:
        return Count(vector_ops=sum(t.numel for t in operands))
    sizes: dict[str, int] = {}
    ellipsis = 1
    for letters, t in zip(equation.replace(" ", "").split("->")[0].split(","), operands,
                          strict=True):  # fmt: skip
        before, dots, after = letters.partition("...")
        tail = t.shape[len(t.shape) - len(after) :] if after else ()
        if dots:
            ellipsis = max(ellipsis, prod(t.shape[len(before) : len(t.shape) - len(after)]))
        for letter, size in (*zip(before, t.shape, strict=False), *zip(after, tail, strict=True)):
            sizes[letter] = max(size, sizes.get(letter, 1))
    return Count(macs=ellipsis * prod(sizes.values()))


@register("linear")
def linear(a: OpArgs) -> Count:
    """x[..., K] @ W[N, K]^T (+ bias): prod(x.shape[:-1])*K*N MACs, plus bias adds."""
    x, w, bias = a.arg(0, "input"), a.arg(1, "weight"), a.arg(2, "bias")
    rows = prod(x.shape[:-1])
    macs = rows * x.shape[-1] * w.shape[0]
    return Count(macs=macs, vector_ops=a.out.numel if bias is not None else 0)


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
    """Convolution MACs (see `conv_macs`), plus one add per output element for a bias.

    Only `convolution` / `_convolution` carry the `transposed` flag (argument 6);
    `_slow_conv2d_forward(input, weight, kernel_size, bias, ...)` has its bias at 3.
    """
    x, w = a.arg(0, "input"), a.arg(1, "weight")
    bias = a.arg(3, "bias") if a.op.name == "_slow_conv2d_forward" else a.arg(2, "bias")
    transposed = a.op.name in ("convolution", "_convolution") and bool(a.arg(6, "transposed"))
    macs = conv_macs(x.shape, w.shape, a.out.shape, transposed)
    return Count(macs=macs, vector_ops=a.out.numel if isinstance(bias, Tensor) else 0)


# --------------------------------------------------------------------------- attention


def sdpa_count(q: tuple[int, ...], k: tuple[int, ...], v: tuple[int, ...], masked: bool) -> Count:
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
    """See `sdpa_count`. Every SDPA overload that takes a mask takes it as argument 3
    (`attn_mask` / `attn_bias`) or as a keyword; the flash kernels have a float there."""
    q, k, v = a.args[0], a.args[1], a.args[2]
    masks = (a.kwargs.get("attn_mask"), a.kwargs.get("attn_bias"), a.arg(3, "attn_mask"))
    masked = any(isinstance(m, Tensor) for m in masks)
    return sdpa_count(q.shape, k.shape, v.shape, masked=masked)


# --------------------------------------------------------------------------- per element

VECTOR_OPS_PER_ELEMENT: dict[str, int] = {
    # plain arithmetic, comparisons, selection, casts: 1 per output element
    **dict.fromkeys(
        ("add", "sub", "mul", "div", "rsub", "neg", "abs", "reciprocal", "pow", "sqrt",
         "rsqrt", "square", "exp", "log", "sin", "cos", "tanh", "erf", "relu", "relu6",
         "hardtanh", "clamp", "clamp_min", "clamp_max", "where", "eq", "ne", "lt", "le",
         "gt", "ge", "masked_fill", "minimum", "maximum", "floor", "ceil", "round", "sign",
         "logical_not", "logical_and", "bitwise_not", "floor_divide", "remainder", "tril",
         "triu", "_to_copy", "fill", "zero", "logical_or", "logical_xor", "isnan", "isinf"), 1),
    "leaky_relu": 2,  # compare, multiply
    "_prelu_kernel": 2, "prelu": 2,  # compare, multiply by the learned slope
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


@register("selective_scan")
def selective_scan(a: OpArgs) -> Count:
    """Mamba's fused selective scan (edgewise::selective_scan; u [B, D, L], A [D, N]) by
    its published rule (state-spaces/mamba issue #110; VMamba's flops_selective_scan_fn):
    9 B L D N FLOPs for the recurrence (discretize, update, read out), plus B L D for the
    D skip and B L D for the z gate. All vector ops: the scan is elementwise work."""
    u, A = a.args[0], a.args[2]
    batch, d, length = u.shape
    return Count(vector_ops=9 * batch * length * d * A.shape[1] + 2 * batch * d * length)


# --------------------------------------------------------------------------- norms


NORM_STATS_OPS = 6  # per element: mean 1 (add), variance 3 (sub, square, add), normalize 2
NORM_APPLY_OPS = 2  # per element, with running statistics: sub mean, mul by rstd


def _affine_ops(weight: Any, bias: Any) -> int:
    """Per element: 1 multiply for a weight, 1 add for a bias (either may be absent)."""
    return isinstance(weight, Tensor) + isinstance(bias, Tensor)


@register("native_layer_norm", "native_group_norm")
def layer_or_group_norm(a: OpArgs) -> Count:
    """Statistics from the input: `NORM_STATS_OPS` = 6 per element, plus 1 per element
    for a weight and 1 for a bias (8 for the usual affine norm). Per-row rsqrt is
    negligible. native_layer_norm(input, shape, weight, bias, eps);
    native_group_norm(input, weight, bias, N, C, HxW, groups, eps)."""
    x = a.args[0]
    if a.op.name == "native_layer_norm":
        weight, bias = a.arg(2, "weight"), a.arg(3, "bias")
    else:
        weight, bias = a.arg(1, "weight"), a.arg(2, "bias")
    return Count(vector_ops=x.numel * (NORM_STATS_OPS + _affine_ops(weight, bias)))


def batch_norm_training(a: OpArgs) -> bool:
    """Whether a batch-norm op computes statistics from its input (training mode, and
    instance norm, which runs as batch norm over [1, N*C, ...]) or uses running ones.

    native_batch_norm / _native_batch_norm_legit(input, weight, bias, running_mean,
    running_var, training, momentum, eps); the `no_stats` overload has no running
    tensors, so `training` is argument 3; _no_training is inference by name.
    """
    if a.op.name == "_native_batch_norm_legit_no_training":
        return False
    if a.op.target.endswith(".no_stats"):
        return bool(a.arg(3, "training"))
    return bool(a.arg(5, "training"))


@register("_native_batch_norm_legit_no_training", "native_batch_norm", "_native_batch_norm_legit")
def batch_norm(a: OpArgs) -> Count:
    """Inference with running statistics: (x - mean) * rstd is `NORM_APPLY_OPS` = 2 per
    element (fused into the preceding conv on most NPUs). With statistics from the input
    (training mode, instance norm) it is `NORM_STATS_OPS` = 6, as for layer norm. Plus 1
    per element for a weight and 1 for a bias."""
    x, weight, bias = a.args[0], a.arg(1, "weight"), a.arg(2, "bias")
    stats = NORM_STATS_OPS if batch_norm_training(a) else NORM_APPLY_OPS
    return Count(vector_ops=x.numel * (stats + _affine_ops(weight, bias)))


@register("_fused_rms_norm", "rms_norm")
def rms_norm(a: OpArgs) -> Count:
    """Per element: square and add for the mean square, multiply by rsqrt = 3, plus 1 for
    a weight. (_fused_rms_norm / rms_norm(input, normalized_shape, weight, eps).)"""
    return Count(vector_ops=a.args[0].numel * (3 + _affine_ops(a.arg(2, "weight"), None)))


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
# max, sub, exp, sum, div per element. _safe_softmax (the SDPA math path) is softmax that
# zeroes fully masked rows: that guard is bookkeeping, so it counts as softmax.
register("_softmax", "softmax", "_log_softmax", "log_softmax", "_safe_softmax")(_reduce(5))
register("linalg_vector_norm", "norm")(_reduce(2, 1))  # square, add; sqrt per output (2-norm)
register("logsumexp")(_reduce(4, 2))  # max, sub, exp, add per input; log, add per output


def _per_dim(value: int | list[int] | tuple[int, ...], dims: int) -> tuple[int, ...]:
    """A pooling size per spatial dim: an int (or a one-element list) stands for all."""
    if isinstance(value, int):
        return (value,) * dims
    return tuple(value) * dims if len(value) == 1 else tuple(value)


def pool_window_elements(
    in_size: int, out_size: int, kernel: int, stride: int, padding: int, dilation: int = 1
) -> int:
    """Input elements inside the windows of a pool along one dim, summed over its outputs.

    Output i reads positions i*stride - padding + j*dilation, j < kernel, that lie in the
    input [0, in_size): padding, and the part of a ceil_mode window past the edge, hold
    nothing to add or compare (count_include_pad changes only the divisor).
    AvgPool2d(1280, ceil_mode=True) on a 7-wide map reads 7 elements, not 1280.
    """
    starts = (i * stride - padding for i in range(out_size))
    if dilation == 1:
        return sum(max(0, min(s + kernel, in_size) - max(s, 0)) for s in starts)
    return sum(sum(0 <= s + j * dilation < in_size for j in range(kernel)) for s in starts)


@register("avg_pool1d", "avg_pool2d", "avg_pool3d")
def avg_pool(a: OpArgs) -> Count:
    """One add per input element in each output's window (the window clipped to the
    input) and one divide per output; a window inside the input adds kernel elements."""
    dims = int(a.op.name[-2])  # avg_pool2d -> 2
    x, out = a.args[0].shape, a.out.shape
    kernel = _per_dim(a.arg(1, "kernel_size"), dims)
    stride = _per_dim(a.arg(2, "stride") or kernel, dims)  # [] (the default) = kernel
    padding = _per_dim(a.arg(3, "padding", 0), dims)
    per_dim = zip(x[-dims:], out[-dims:], kernel, stride, padding, strict=True)
    windows = prod(pool_window_elements(*sizes) for sizes in per_dim)
    return Count(vector_ops=prod(x[:-dims]) * windows + a.out.numel)


@register("max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices",
          "max_pool3d_with_indices")  # fmt: skip
def max_pool(a: OpArgs) -> Count:
    """One compare per input element in each output's window, the window clipped to the
    input (padding and a ceil_mode window's overhang hold nothing to compare); a window
    inside the input compares kernel elements."""
    dims = int(a.op.name[len("max_pool")])  # max_pool3d_with_indices -> 3
    x, out = a.args[0].shape, a.out.shape
    kernel = _per_dim(a.arg(1, "kernel_size"), dims)
    stride = _per_dim(a.arg(2, "stride") or kernel, dims)  # [] (the default) = kernel
    padding = _per_dim(a.arg(3, "padding", 0), dims)
    dilation = _per_dim(a.arg(4, "dilation", 1), dims)
    per_dim = zip(x[-dims:], out[-dims:], kernel, stride, padding, dilation, strict=True)
    windows = prod(pool_window_elements(*sizes) for sizes in per_dim)
    return Count(vector_ops=prod(x[:-dims]) * windows)


def adaptive_window_elements(in_size: int, out_size: int) -> int:
    """Sum of the adaptive pooling window lengths along one dim.

    Output i pools input [floor(i*I/O), ceil((i+1)*I/O)), so the windows tile the input
    exactly (sum = I) when O divides I, and overlap where it does not (6 -> 4: 8).
    """
    return sum(-(-(i + 1) * in_size // out_size) - i * in_size // out_size for i in range(out_size))


def _adaptive_elements(a: OpArgs) -> int:
    """Input elements read by all the windows of an adaptive pool, overlaps included."""
    x, out_size = a.args[0].shape, a.arg(1, "output_size")
    dims = len(out_size)
    windows = prod(adaptive_window_elements(i, o) for i, o in zip(x[-dims:], out_size, strict=True))
    return prod(x[:-dims]) * windows


@register("_adaptive_avg_pool2d", "adaptive_avg_pool2d", "_adaptive_avg_pool3d",
          "adaptive_avg_pool3d")  # fmt: skip
def adaptive_avg_pool(a: OpArgs) -> Count:
    """One add per window element and one divide per output element. When the output
    divides the input this is input numel + output numel, as `mean` over the window."""
    return Count(vector_ops=_adaptive_elements(a) + a.out.numel)


@register("adaptive_max_pool2d", "adaptive_max_pool3d")
def adaptive_max_pool(a: OpArgs) -> Count:
    """One compare per window element."""
    return Count(vector_ops=_adaptive_elements(a))


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


@register("copy")
def copy(a: OpArgs) -> Count:
    """copy_(dst, src): reads src, writes dst (dst's old contents are not read)."""
    return Count(moved_bytes=a.arg(1, "src").nbytes + a.out.nbytes)


register("cat", "stack", "clone", "contiguous", "constant_pad_nd", "pad", "repeat",
         "roll", "flip", "repeat_interleave", "reflection_pad2d", "replication_pad2d",
         "pixel_shuffle", "im2col", "col2im", "tile", "upsample_nearest1d", "upsample_nearest2d",
         "upsample_nearest3d", "_upsample_nearest_exact2d", "index_put", "scatter",
         "split_with_sizes_copy", "masked_select", "pixel_unshuffle")(_moved)  # fmt: skip
register("embedding", "index_select", "gather", "index", "_unsafe_index")(_gathered)


INTERPOLATION_TAPS: dict[str, int] = {
    "upsample_linear1d": 2, "upsample_bilinear2d": 4, "_upsample_bilinear2d_aa": 4,
    "upsample_trilinear3d": 8, "upsample_bicubic2d": 16, "_upsample_bicubic2d_aa": 16,
}  # fmt: skip


@register(*INTERPOLATION_TAPS)
def upsample_interpolate(a: OpArgs) -> Count:
    """Moves bytes like nearest upsampling; each output element weighs `taps` inputs:
    taps multiplies and taps - 1 adds (bilinear 7, bicubic 31 per output element)."""
    taps = INTERPOLATION_TAPS[a.op.name]
    return _moved(a) + Count(vector_ops=(2 * taps - 1) * a.out.numel)


# interpolation_mode -> taps: bilinear (trilinear on 5-D input), nearest, bicubic
GRID_SAMPLE_TAPS: dict[tuple[str, int], int] = {
    ("grid_sampler_2d", 0): 4, ("grid_sampler_3d", 0): 8,
    ("grid_sampler_2d", 1): 1, ("grid_sampler_3d", 1): 1, ("grid_sampler_2d", 2): 16,
}  # fmt: skip


@register("grid_sampler_2d", "grid_sampler_3d")
def grid_sample(a: OpArgs) -> Count:
    """grid_sampler(input, grid, interpolation_mode, padding_mode, align_corners): gathers
    like an upsample, and weighs its taps as interpolation does: taps multiplies and
    taps - 1 adds per output element (bilinear 7, trilinear 15, bicubic 31). Nearest has
    one tap and no arithmetic. Turning grid values into source coordinates is not
    counted."""
    taps = GRID_SAMPLE_TAPS[(a.op.name, a.arg(2, "interpolation_mode"))]
    per_output = 2 * taps - 1 if taps > 1 else 0
    return _moved(a) + Count(vector_ops=per_output * a.out.numel)


# --------------------------------------------------------------------------- free ops


def _free(a: OpArgs) -> Count:
    return ZERO


# views and metadata: no bytes move (dropout is the identity at inference)
VIEWS = (
    "view", "_unsafe_view", "reshape", "permute", "transpose", "t", "expand", "squeeze",
    "unsqueeze", "slice", "select", "split", "split_with_sizes", "chunk", "unbind", "narrow",
    "as_strided", "alias", "detach", "flatten", "unflatten", "_reshape_alias", "view_as",
    "expand_as", "movedim", "diagonal", "unfold", "lift_fresh", "lift_fresh_copy",
    "dropout", "native_dropout",
)  # fmt: skip
# tensor factories: allocate, compute nothing (category OTHER)
FACTORIES = (
    "arange", "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones",
    "ones_like", "full", "full_like", "new_empty", "new_zeros", "new_ones", "new_full",
    "new_empty_strided", "scalar_tensor", "linspace", "rand", "randn", "randn_like",
    "rand_like", "randint", "normal", "uniform", "_local_scalar_dense",
)  # fmt: skip
register(*VIEWS, *FACTORIES)(_free)
