"""The closed set of op categories, and which ATen ops fall into each.

One table, documented in one place: every stage that needs to know whether an op is a
matmul or a view asks `category_of`. An ATen op not listed here is `OTHER`; counting
puts such ops in the uncounted ledger unless a formula exists for them.
"""

from enum import StrEnum


class OpCategory(StrEnum):
    CONV = "conv"  # convolution, transposed convolution
    MATMUL = "matmul"  # mm, addmm, bmm, baddbmm, einsum-derived products
    ATTENTION = "attention"  # fused scaled-dot-product attention kernels
    NORM = "norm"  # batch, group, layer, instance, RMS normalization
    ELEMENTWISE = "elementwise"  # arithmetic and activation functions, per element
    REDUCTION = "reduction"  # sum, mean, max, softmax, pooling
    DATA_MOVEMENT = "data-movement"  # copies that move bytes: cat, clone, contiguous, pad
    VIEW = "view"  # reshape, permute, slice: metadata only, no bytes moved
    OTHER = "other"  # anything else (factories, indexing with data-dependent shapes)


_TABLE: dict[OpCategory, tuple[str, ...]] = {
    # --- compute-heavy ---
    OpCategory.CONV: ("convolution", "_convolution", "conv1d", "conv2d", "conv3d",
                      "_slow_conv2d_forward", "mkldnn_convolution", "conv_transpose1d",
                      "conv_transpose2d", "conv_transpose3d"),
    OpCategory.MATMUL: ("mm", "addmm", "bmm", "baddbmm", "matmul", "linear", "_scaled_mm",
                        "dot", "vdot", "mv", "addmv", "addbmm", "einsum"),
    OpCategory.ATTENTION: ("scaled_dot_product_attention",
                           "_scaled_dot_product_flash_attention",
                           "_scaled_dot_product_flash_attention_for_cpu",
                           "_scaled_dot_product_efficient_attention",
                           "_scaled_dot_product_cudnn_attention",
                           "_scaled_dot_product_attention_math",
                           "_scaled_dot_product_fused_attention_overrideable",
                           "_flash_attention_forward", "_efficient_attention_forward"),
    # --- per-element and per-row ---
    OpCategory.NORM: ("native_group_norm", "native_layer_norm", "native_batch_norm",
                      "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
                      "batch_norm", "group_norm", "layer_norm", "instance_norm",
                      "_fused_rms_norm", "rms_norm"),
    OpCategory.ELEMENTWISE: ("add", "sub", "mul", "div", "rsub", "neg", "pow", "sqrt",
                             "rsqrt", "exp", "log", "sin", "cos", "tanh", "sigmoid", "silu",
                             "gelu", "relu", "hardtanh", "hardswish", "hardsigmoid", "clamp",
                             "clamp_min", "clamp_max", "erf", "abs", "reciprocal", "where",
                             "eq", "ne", "lt", "le", "gt", "ge", "masked_fill", "leaky_relu",
                             "mish", "softplus", "elu", "addcmul", "addcdiv", "lerp", "prelu",
                             "floor", "ceil", "round", "sign", "logical_not", "logical_and",
                             "bitwise_not", "minimum", "maximum", "fill", "zero",
                             "_prelu_kernel", "relu6", "square", "floor_divide", "remainder",
                             "_to_copy", "type_as", "tril", "triu",
                             "logical_or", "logical_xor", "isnan", "isinf",
                             "selective_scan"),
    OpCategory.REDUCTION: ("sum", "mean", "amax", "amin", "max", "min", "var", "var_mean",
                           "std", "prod", "_softmax", "softmax", "_safe_softmax", "_log_softmax",
                           "log_softmax", "argmax", "argmin", "norm", "linalg_vector_norm",
                           "cumsum", "logsumexp", "any", "all",
                           "avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d",
                           "max_pool3d", "max_pool2d_with_indices", "max_pool3d_with_indices",
                           "adaptive_avg_pool1d", "_adaptive_avg_pool2d", "adaptive_avg_pool2d",
                           "_adaptive_avg_pool3d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
                           "adaptive_max_pool2d", "adaptive_max_pool3d"),
    # --- moving and relabelling data ---
    OpCategory.DATA_MOVEMENT: ("cat", "stack", "clone", "contiguous", "copy", "copy_",
                               "constant_pad_nd", "pad", "upsample_nearest2d",
                               "upsample_nearest1d", "upsample_nearest3d",
                               "_upsample_nearest_exact2d", "upsample_linear1d",
                               "upsample_bilinear2d", "_upsample_bilinear2d_aa",
                               "upsample_trilinear3d", "upsample_bicubic2d",
                               "_upsample_bicubic2d_aa", "grid_sampler_2d",
                               "grid_sampler_3d", "index_select", "gather", "embedding",
                               "index", "repeat", "roll", "flip", "repeat_interleave",
                               "index_put", "scatter", "_unsafe_index", "masked_select",
                               "reflection_pad2d", "replication_pad2d", "pixel_shuffle",
                               "im2col", "col2im", "split_with_sizes_copy", "tile",
                               "pixel_unshuffle"),
    OpCategory.VIEW: ("view", "_unsafe_view", "reshape", "permute", "transpose", "t",
                      "expand", "squeeze", "unsqueeze", "slice", "select", "split",
                      "split_with_sizes", "chunk", "unbind", "narrow", "as_strided",
                      "alias", "detach", "flatten", "unflatten", "lift_fresh",
                      "_reshape_alias", "view_as", "expand_as", "movedim", "diagonal",
                      "unfold", "lift_fresh_copy", "dropout", "native_dropout"),
}  # fmt: skip

_BY_NAME: dict[str, OpCategory] = {
    name: category for category, names in _TABLE.items() for name in names
}


def category_of(op_name: str) -> OpCategory:
    """Category of an ATen overload packet name ("conv" for "convolution").

    In-place variants ("add_") fall into the category of their functional op.
    """
    if op_name in _BY_NAME:
        return _BY_NAME[op_name]
    return _BY_NAME.get(op_name.rstrip("_"), OpCategory.OTHER)
