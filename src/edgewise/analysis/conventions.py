"""Named counting conventions: edgewise's own, and those of thop, fvcore and torch.

Published tables disagree on the same model because tools count different things. Each
convention here reproduces one tool's rules on our ATen graph, so a paper's figure can be
matched exactly and the gap to edgewise's default explained op by op
(docs/conventions.md has the SD 1.5 U-Net side by side).

- `default`: every op with a formula (see formulas.py); FLOPs = 2 x MACs + vector ops.
- `torch`: `torch.utils.flop_counter.FlopCounterMode`: mm, addmm, bmm, baddbmm,
  convolution and the CUDA SDPA kernels (flash, efficient, cudnn), 2 FLOPs per MAC,
  nothing else. Its registry has no formula for the CPU flash kernel, so attention on
  CPU counts zero there; bias adds are not counted.
- `fvcore`: `fvcore.nn.FlopCountAnalysis` (one "flop" per MAC): conv, mm, addmm, bmm,
  matmul, einsum and linear; layer/group norm 5 per element (4 without affine); inference
  batch norm 2 (1); nearest upsampling 1 and bilinear 4 per output element; adaptive
  average pooling 1 per input element. It has no handle for baddbmm or SDPA, so attention
  written as either counts zero.
- `thop`: `thop.profile` 0.1.x, which hooks modules by exact type: Conv*d
  (out elements x Cin/groups x kernel, also for transposed convs), Linear (in_features x
  out elements), BatchNorm/LayerNorm/InstanceNorm (2 per element, 4 with affine),
  nn.Softmax, pooling and nn.Upsample. Functional calls (F.group_norm, matmul, SDPA,
  F.interpolate) and GroupNorm modules count zero. Reports "ops" at one per MAC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import prod

from edgewise.analysis.formulas import (
    ZERO,
    Count,
    OpArgs,
    conv_macs,
    formula_for,
    sdpa_count,
)
from edgewise.ir.graph import Tensor

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


_TORCH_OPS = frozenset(("mm", "addmm", "bmm", "baddbmm", "convolution", "_convolution"))
_TORCH_SDPA = frozenset(("_scaled_dot_product_flash_attention",
                         "_scaled_dot_product_efficient_attention",
                         "_scaled_dot_product_cudnn_attention"))  # fmt: skip


def _torch(a: OpArgs, module_type: str) -> Count:
    if a.op.name in _TORCH_OPS:
        return _macs_only(a)
    if a.op.name in _TORCH_SDPA:
        q, k, v = a.args[0].shape, a.args[1].shape, a.args[2].shape
        return Count(macs=sdpa_count(q, k, v, masked=False).macs)
    return ZERO


_FVCORE_MACS = frozenset(("mm", "addmm", "bmm", "convolution", "_convolution"))


def _fvcore(a: OpArgs, module_type: str) -> Count:
    name = a.op.name
    if name in _FVCORE_MACS:
        return _macs_only(a)
    x: Tensor = a.args[0] if a.args and isinstance(a.args[0], Tensor) else a.out
    if name in ("native_layer_norm", "native_group_norm"):
        weight = a.args[2] if name == "native_layer_norm" else a.args[1]
        return Count(vector_ops=x.numel * (5 if weight is not None else 4))
    if name in ("_native_batch_norm_legit_no_training", "native_batch_norm"):
        return Count(vector_ops=x.numel * (2 if a.args[1] is not None else 1))
    if name == "upsample_nearest2d":
        return Count(vector_ops=a.out.numel)
    if name == "upsample_bilinear2d":
        return Count(vector_ops=4 * a.out.numel)
    if name == "_adaptive_avg_pool2d" or (name == "mean" and "AdaptiveAvgPool2d" in module_type):
        return Count(vector_ops=x.numel)
    return ZERO


_NN = "torch.nn.modules."
_THOP_CONV = {f"{_NN}conv.{c}" for c in
              ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")}  # fmt: skip
_THOP_NORM = {f"{_NN}batchnorm.BatchNorm{d}d" for d in (1, 2, 3)} | {
    f"{_NN}instancenorm.InstanceNorm{d}d" for d in (1, 2, 3)} | {f"{_NN}normalization.LayerNorm"}  # fmt: skip
_THOP_AVGPOOL = {f"{_NN}pooling.AvgPool{d}d" for d in (1, 2, 3)}
_THOP_ADAPTIVE = {f"{_NN}pooling.AdaptiveAvgPool{d}d" for d in (1, 2, 3)}
_THOP_UPSAMPLE = {f"{_NN}upsampling.{c}" for c in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d")}
_THOP_UPSAMPLE_WEIGHT = {"upsample_nearest2d": 1, "upsample_nearest1d": 1, "upsample_nearest3d": 1,
                         "upsample_bilinear2d": 11, "upsample_linear1d": 5}  # fmt: skip


def _thop(a: OpArgs, module_type: str) -> Count:
    name = a.op.name
    if module_type in _THOP_CONV and name in ("convolution", "_convolution"):
        x, w, groups = a.args[0], a.args[1], a.arg(8, "groups", 1)
        return Count(macs=a.out.numel * (x.shape[1] // groups) * prod(w.shape[2:]))
    if module_type == f"{_NN}linear.Linear" and name in ("mm", "addmm"):
        return _macs_only(a)
    if module_type in _THOP_NORM and a.op.category == "norm":
        affine = a.args[1] is not None if "batch_norm" in name else a.args[2] is not None
        return Count(vector_ops=2 * a.args[0].numel * (2 if affine else 1))
    if module_type == f"{_NN}activation.Softmax" and name == "_softmax":
        n = a.args[0].shape[a.args[1]]
        return Count(vector_ops=(a.args[0].numel // n) * (3 * n - 1))
    if module_type == f"{_NN}activation.PReLU":
        return Count(vector_ops=a.out.numel)
    if module_type in _THOP_AVGPOOL and name.startswith("avg_pool"):
        return Count(vector_ops=a.out.numel)
    if module_type in _THOP_ADAPTIVE and name in ("mean", "_adaptive_avg_pool2d"):
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
                   "every op with a formula; conv, matmul and attention in MACs; FLOPs = 2 MACs + vector ops"),
        Convention("torch", 2, _torch,
                   "torch FlopCounterMode: mm/addmm/bmm/baddbmm/conv and CUDA SDPA only; 2 FLOPs per MAC"),
        Convention("fvcore", 1, _fvcore,
                   "fvcore FlopCountAnalysis: conv and matmuls (no baddbmm, no SDPA) + norms and upsampling; 1 flop per MAC"),
        Convention("thop", 1, _thop,
                   "thop.profile: Conv/Linear/BatchNorm/LayerNorm/Softmax/pool/Upsample modules only; 1 op per MAC"),
    )
}  # fmt: skip


def convention(name: str) -> Convention:
    from edgewise.errors import EdgewiseError

    if name not in CONVENTIONS:
        raise EdgewiseError(
            f"unknown convention '{name}': expected one of {', '.join(CONVENTIONS)}"
        )
    return CONVENTIONS[name]
