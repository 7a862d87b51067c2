"""Named counting conventions: edgewise's own, and those of thop, fvcore and torch.

Published tables disagree on the same model because tools count different things. Each
convention here reproduces one tool's rules on our ATen graph, so a paper's figure can be
matched exactly and the gap to edgewise's default explained op by op
(docs/conventions.md has the SD 1.5 U-Net side by side).

- `default`: every op with a formula (see formulas.py); FLOPs = 2 x MACs + vector ops.
- `torch`: `torch.utils.flop_counter.FlopCounterMode`: mm, addmm, bmm, baddbmm,
  _scaled_mm, convolution and the CUDA SDPA kernels (flash, efficient, cudnn), 2 FLOPs
  per MAC, nothing else. Its registry has no formula for the CPU flash kernel, so fused
  attention on CPU counts zero there; bias adds are not counted.
- `fvcore`: `fvcore.nn.FlopCountAnalysis` (one "flop" per MAC): conv, mm, addmm, bmm,
  matmul, einsum and linear; layer/group norm 5 per element (4 without affine); batch
  norm 2 (1) at inference, 5 (4) in training mode and for instance norm; nearest
  upsampling 1 and bilinear upsampling and grid sampling 4 per output element; adaptive
  average pooling 1 per input element. It has no handle for baddbmm or SDPA, so
  attention written as either counts zero. Limit: fvcore sees `scaled_dot_product_attention`
  whole, but when the capture sees it decomposed into bmm (on CPU, when the value head
  dim differs from the query's) this convention counts those bmm.
- `thop`: `thop.profile` 0.1.x, which hooks modules by exact type: Conv*d
  (out elements x Cin/groups x kernel, also for transposed convs), Linear (in_features x
  out elements), BatchNorm/LayerNorm/InstanceNorm (2 per element, 4 with affine),
  nn.Softmax, PReLU, average pooling and nn.Upsample. Functional calls (F.group_norm,
  matmul, SDPA, F.interpolate) and GroupNorm modules count zero. Reports "ops" at one
  per MAC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import prod

from edgewise.analysis.formulas import (
    ZERO,
    Count,
    OpArgs,
    batch_norm_training,
    formula_for,
    sdpa_count,
)

CountRule = Callable[[OpArgs, str], Count]  # (op arguments, running module's class) -> count


@dataclass(frozen=True)
class Convention:
    name: str
    flops_per_mac: int  # how the convention turns MACs into its FLOP figure
    rule: CountRule
    summary: str


def _default(a: OpArgs, module_type: str) -> Count:
    fn = formula_for(a.op.name)
    return fn(a) if fn else ZERO


def _macs_only(a: OpArgs) -> Count:
    fn = formula_for(a.op.name)
    return Count(macs=fn(a).macs) if fn else ZERO


# torch.utils.flop_counter.flop_registry, forward entries (convolution_overrideable and
# cudnn_convolution never reach a dispatch mode on their own: convolution wraps them).
_TORCH_OPS = frozenset(("mm", "addmm", "bmm", "baddbmm", "_scaled_mm", "convolution",
                        "_convolution", "_slow_conv2d_forward"))  # fmt: skip
_TORCH_SDPA = frozenset(("_scaled_dot_product_flash_attention",
                         "_scaled_dot_product_efficient_attention",
                         "_scaled_dot_product_cudnn_attention"))  # fmt: skip


def _torch(a: OpArgs, module_type: str) -> Count:
    """2 x MACs of the ops in torch's flop registry; everything else is zero."""
    if a.op.name in _TORCH_OPS:
        return _macs_only(a)
    if a.op.name in _TORCH_SDPA:
        q, k, v = a.args[0].shape, a.args[1].shape, a.args[2].shape
        return Count(macs=sdpa_count(q, k, v, masked=False).macs)
    return ZERO


_FVCORE_MACS = frozenset(("mm", "addmm", "bmm", "convolution", "_convolution"))
_BATCH_NORMS = frozenset(("_native_batch_norm_legit_no_training", "native_batch_norm",
                          "_native_batch_norm_legit"))  # fmt: skip
_NN = "torch.nn.modules."  # module class paths are matched exactly, as the tools do
_AVG_POOL_1D = f"{_NN}pooling.AdaptiveAvgPool1d"


# appended to the module type a rule sees for a convolution given a string padding
# ("same", "valid"; `ir.vocab.STRING_PADDING_CONVS`): TorchScript traces its call as
# aten::_convolution_mode, which fvcore has no handle for
STRING_PADDED = " (padding given as a string)"


def _fvcore(a: OpArgs, module_type: str) -> Count:
    """fvcore's default handles (flop_count._DEFAULT_SUPPORTED_OPS), mapped to the ATen
    ops its traced ops dispatch to:
    - aten::linear / matmul / einsum / mm / addmm / bmm / _convolution -> mm, addmm,
      bmm, convolution: MACs, no bias;
    - aten::layer_norm / group_norm, and batch_norm in training mode / instance_norm
      (both dispatch to batch norm computing its own statistics): 5 per input element
      with a weight, 4 without; batch_norm at inference: 2 with a weight, 1 without;
    - aten::upsample_nearest2d 1 and upsample_bilinear2d 4 per output element,
      aten::grid_sampler 4 per output element;
    - a convolution given padding="same" or "valid" is traced as aten::_convolution_mode,
      which fvcore does not handle: zero;
    - aten::adaptive_avg_pool2d 1 per input element. A 1x1 output dispatches as `mean`,
      which counts only inside an AdaptiveAvgPool2d module (a user's `x.mean(...)` is
      aten::mean to fvcore, which it ignores); AdaptiveAvgPool1d dispatches as
      `_adaptive_avg_pool2d` but is aten::adaptive_avg_pool1d to fvcore: zero.
    """
    name = a.op.name
    if name == "convolution" and module_type.endswith(STRING_PADDED):
        return ZERO  # aten::_convolution_mode: not among fvcore's handles
    if name in _FVCORE_MACS:
        return _macs_only(a)
    if name in ("native_layer_norm", "native_group_norm"):
        weight = a.args[2] if name == "native_layer_norm" else a.args[1]
        return Count(vector_ops=a.args[0].numel * (5 if weight is not None else 4))
    if name in _BATCH_NORMS:
        affine = a.args[1] is not None
        if batch_norm_training(a):
            return Count(vector_ops=a.args[0].numel * (5 if affine else 4))
        return Count(vector_ops=a.args[0].numel * (2 if affine else 1))
    if name == "upsample_nearest2d":
        return Count(vector_ops=a.out.numel)
    if name in ("upsample_bilinear2d", "grid_sampler_2d", "grid_sampler_3d"):
        return Count(vector_ops=4 * a.out.numel)
    if (name == "_adaptive_avg_pool2d" and module_type != _AVG_POOL_1D) or (
        name == "mean" and module_type == f"{_NN}pooling.AdaptiveAvgPool2d"
    ):
        return Count(vector_ops=a.args[0].numel)
    return ZERO


_THOP_CONV = {f"{_NN}conv.{c}{d}d" for c in ("Conv", "ConvTranspose") for d in (1, 2, 3)}
_THOP_NORM = {f"{_NN}batchnorm.BatchNorm{d}d" for d in (1, 2, 3)} | {
    f"{_NN}instancenorm.InstanceNorm{d}d" for d in (1, 2, 3)} | {
    f"{_NN}normalization.LayerNorm", f"{_NN}batchnorm.SyncBatchNorm"}  # fmt: skip
_THOP_AVGPOOL = {f"{_NN}pooling.AvgPool{d}d" for d in (1, 2, 3)}
_THOP_ADAPTIVE = {f"{_NN}pooling.AdaptiveAvgPool{d}d" for d in (1, 2, 3)}
_THOP_UPSAMPLE = {
    f"{_NN}upsampling.{c}" for c in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d")
}
# thop's calculate_upsample per output element, by the ATen op each mode dispatches to.
# "trilinear" is rejected by count_upsample (zero) and "nearest-exact" is not handled.
_THOP_UPSAMPLE_WEIGHT = {"upsample_nearest1d": 1, "upsample_nearest2d": 1, "upsample_nearest3d": 1,
                         "upsample_linear1d": 5, "upsample_bilinear2d": 11,
                         "upsample_bicubic2d": 224 + 35}  # fmt: skip
_THOP_ADAPTIVE_OPS = frozenset(("mean", "_adaptive_avg_pool2d", "_adaptive_avg_pool3d"))


def _thop(a: OpArgs, module_type: str) -> Count:
    """thop's forward hooks (vision/basic_hooks.py), keyed by the exact module class that
    ran the op; an op outside those modules counts zero."""
    module_type = module_type.removesuffix(STRING_PADDED)
    name = a.op.name
    if module_type in _THOP_CONV and name in ("convolution", "_convolution"):
        # out elements x (Cin / groups) x prod(kernel), for transposed convs too
        x, w, groups = a.args[0], a.args[1], a.arg(8, "groups", 1)
        return Count(macs=a.out.numel * (x.shape[1] // groups) * prod(w.shape[2:]))
    # thop counts a Linear from its input and output sizes; a non-contiguous 3-D input
    # reaches the dispatcher as bmm rather than mm, which must count the same
    if module_type == f"{_NN}linear.Linear" and name in ("mm", "addmm", "bmm", "baddbmm"):
        return _macs_only(a)  # in_features x out elements
    if module_type in _THOP_NORM and a.op.category == "norm":
        # 2 per input element, doubled with affine (BatchNorm.affine, LayerNorm weight)
        affine = a.args[1] is not None if "batch_norm" in name else a.args[2] is not None
        return Count(vector_ops=2 * a.args[0].numel * (2 if affine else 1))
    if module_type == f"{_NN}activation.Softmax" and name == "_softmax":
        n = a.args[0].shape[a.args[1]]  # exp n, add n - 1, div n per row
        return Count(vector_ops=(a.args[0].numel // n) * (3 * n - 1))
    if module_type == f"{_NN}activation.PReLU" and name in ("_prelu_kernel", "prelu"):
        return Count(vector_ops=a.args[0].numel)
    if module_type in _THOP_AVGPOOL and name.startswith("avg_pool"):
        return Count(vector_ops=a.out.numel)
    if module_type in _THOP_ADAPTIVE and name in _THOP_ADAPTIVE_OPS:
        # (prod(in / out) + 1) x out elements, in float64, truncated
        x = a.args[0].shape
        kernel = prod(i / o for i, o in zip(x[2:], a.out.shape[2:], strict=True))
        return Count(vector_ops=int((kernel + 1) * a.out.numel))
    if module_type in _THOP_UPSAMPLE and name in _THOP_UPSAMPLE_WEIGHT:
        return Count(vector_ops=_THOP_UPSAMPLE_WEIGHT[name] * a.out.numel)
    return ZERO


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention("default", 2, _default,
                   "every op with a formula; conv, matmul and attention in MACs; "
                   "FLOPs = 2 MACs + vector ops"),
        Convention("torch", 2, _torch,
                   "torch FlopCounterMode: mm/addmm/bmm/baddbmm/conv and CUDA SDPA only; "
                   "2 FLOPs per MAC"),
        Convention("fvcore", 1, _fvcore,
                   "fvcore FlopCountAnalysis: conv and matmuls (no baddbmm, no SDPA) + norms "
                   "and upsampling; 1 flop per MAC"),
        Convention("thop", 1, _thop,
                   "thop.profile: Conv/Linear/BatchNorm/LayerNorm/Softmax/pool/Upsample "
                   "modules only; 1 op per MAC"),
    )
}  # fmt: skip


def convention(name: str) -> Convention:
    from edgewise.errors import EdgewiseError

    if name not in CONVENTIONS:
        raise EdgewiseError(
            f"unknown convention '{name}': expected one of {', '.join(CONVENTIONS)}"
        )
    return CONVENTIONS[name]
