"""The words every stage shares: what a plan does with a tensor, how attention runs, what
a planner minimizes, and the facts about each number format. One place, as enums whose
values are the strings users type and files hold (a `StrEnum` compares equal to them)."""

from __future__ import annotations

from enum import StrEnum

from edgewise.errors import EdgewiseError


class Action(StrEnum):
    """What a plan does with a long-lived tensor across its gap."""

    KEEP = "keep"  # resident in SRAM for the whole gap
    SPILL = "spill"  # written to DRAM when the gap opens (unless a copy is there), read back
    RECOMPUTE = "recompute"  # dropped, rebuilt from its sources inside the gap


class AttentionMode(StrEnum):
    """How an attention op holds its scores (analysis, simulation, plans and runs alike)."""

    CAPTURED = "captured"  # as the captured kernel had them
    MATERIALIZED = "materialized"  # B x heads x Nq x Nk scores and their softmax, whole
    FUSED = "fused"  # FlashAttention tiles: no score tensor, K and V re-read per query tile


class Objective(StrEnum):
    LATENCY = "latency"
    ENERGY = "energy"
    DRAM = "dram"


class Precision(StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT16 = "int16"  # integer activations of Qualcomm's w8a16 (8-bit weights, 16-bit activations)
    INT8 = "int8"
    INT4 = "int4"
    INT2 = "int2"


BITS: dict[str, int] = {
    "fp32": 32, "fp16": 16, "bf16": 16, "int16": 16, "int8": 8, "int4": 4, "int2": 2
}  # fmt: skip
PRECISION_BYTES: dict[str, float] = {p: b / 8 for p, b in BITS.items()}
WEIGHT_OPTIONS: tuple[Precision, ...] = (Precision.INT8, Precision.INT4, Precision.INT2)


def parse_enum(kind: type[StrEnum], value: str, flag: str) -> StrEnum:
    """`value` as a member of `kind`, or a one-line error naming the flag and the choices."""
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(m.value for m in kind)
        raise EdgewiseError(f"{flag} must be one of {choices} (got '{value}')") from None


# graph.meta key: scopes of convolutions given a string padding ("same", "valid"), which
# TorchScript traces as aten::_convolution_mode (fvcore's convention does not count them)
STRING_PADDING_CONVS = "string_padding_convs"
