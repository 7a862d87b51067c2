"""Fake quantization and the fidelity metrics that judge it.

Weights: symmetric, per output channel (dim 0): scale = max|w| over the channel / qmax,
w_q = clamp(round(w / scale), -qmax, qmax) x scale, qmax = 2^(bits-1) - 1 (int2 is
ternary: -1, 0, 1). Activations: symmetric per tensor with a scale calibrated on sample
inputs (max |x| seen / qmax). Values stay floating point ("fake"): the arithmetic is the
float kernel's, the rounding error is the integer format's.
"""

from __future__ import annotations

import math

import torch

BITS = {"int8": 8, "int4": 4, "int2": 2}


def qmax(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def fake_quantize_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-output-channel symmetric quantize-dequantize (a 1-D tensor: one channel)."""
    if w.ndim <= 1:
        scale = w.abs().max().clamp(min=1e-12) / qmax(bits)
    else:
        scale = w.abs().amax(dim=tuple(range(1, w.ndim)), keepdim=True).clamp(min=1e-12) / qmax(
            bits
        )
    return torch.clamp(torch.round(w / scale), -qmax(bits), qmax(bits)) * scale


def activation_scale(absmax: float, bits: int) -> float:
    return max(absmax, 1e-12) / qmax(bits)


def fake_quantize_activation(x: torch.Tensor, scale: float, bits: int) -> torch.Tensor:
    """Per-tensor symmetric quantize-dequantize with a calibrated scale."""
    return torch.clamp(torch.round(x / scale), -qmax(bits), qmax(bits)) * scale


def sqnr_db(reference: torch.Tensor, test: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio: 10 log10(sum ref^2 / sum (ref - test)^2)."""
    ref = reference.double()
    noise = (ref - test.double()).pow(2).sum().item()
    signal = ref.pow(2).sum().item()
    return math.inf if noise == 0 else 10 * math.log10(signal / noise) if signal else -math.inf


def cosine(reference: torch.Tensor, test: torch.Tensor) -> float:
    a, b = reference.double().flatten(), test.double().flatten()
    denom = a.norm().item() * b.norm().item()
    return float((a @ b).item() / denom) if denom else 1.0


def max_abs_error(reference: torch.Tensor, test: torch.Tensor) -> float:
    return (
        float((reference.double() - test.double()).abs().max().item()) if reference.numel() else 0.0
    )


def relative_mse(reference: torch.Tensor, test: torch.Tensor) -> float:
    """Mean squared error over mean square of the reference: the sensitivity metric."""
    ref = reference.double()
    power = ref.pow(2).mean().item()
    return (ref - test.double()).pow(2).mean().item() / power if power else 0.0
