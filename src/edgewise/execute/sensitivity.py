"""Per-layer quantization sensitivity: how much the output moves when one layer's weights
are rounded to a narrower integer format, the others left in float.

For each layer with weights (a module holding a `weight` of 2 or more dimensions:
Linear, Conv*, ConvTranspose*, Embedding) and each bit-width: fake-quantize that layer's
weights alone (`quantize.fake_quantize_weight`, per output channel, symmetric), run the
model on N calibration inputs, record the output error against the float model, and put
the float weights back. Error = `quantize.relative_mse` of all floating-point outputs
(flattened and concatenated), averaged over the N inputs. Calibration inputs come from
the model (a `calibration_inputs(n)` method, as the digits model has: real images), or
are random normal tensors of the example inputs' shapes (integer inputs are zeros),
seed 0. A tensor tied between layers is measured once and its error recorded for every
scope that holds it (quantizing it changes them all).

Cost: (layers x bit-widths + 1) x N forwards. ResNet-50 has 54 such layers: 3 bit-widths
and N = 16 is 2,608 forwards; the SD 1.5 U-Net has 282: restrict with --layers.

The result is the planner's sensitivity file (`plan.knobs.load_sensitivity`):
    {"metric": "...", "model": "...", "layers": {scope: {"int8": e, "int4": e, ...}}}
scope being the module's qualified name, the same string the captured graph gives its ops.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map_only

from edgewise.errors import EdgewiseError
from edgewise.execute.measure import forward
from edgewise.execute.quantize import BITS, fake_quantize_weight, relative_mse

METRIC = (
    "relative_mse: mean over the calibration inputs of mean((y_q - y)^2) / mean(y^2), y = "
    "all floating-point outputs concatenated, with only this layer's weights fake-quantized "
    "(symmetric, per output channel)"
)
Inputs = list[tuple[tuple[Any, ...], dict[str, Any]]]  # (args, kwargs) per forward
Progress = Callable[[int, int, str], None]  # (done, total, what runs next)


@dataclass(frozen=True)
class LayerSensitivity:
    scope: str  # the module's qualified name (the graph's op scope)
    kind: str  # module class, e.g. Conv2d
    weight_params: int  # elements of the weight tensor
    errors: dict[str, float]  # precision -> the metric


@dataclass(frozen=True)
class Sensitivity:
    model: str
    metric: str
    calibration: str  # where the inputs came from
    inputs: int  # N
    forwards: int  # forwards run, the float reference included
    seconds: float
    layers: tuple[LayerSensitivity, ...]

    def planner_dict(self) -> dict[str, Any]:
        """Exactly what `edgewise plan --sensitivity` reads."""
        return {
            "metric": self.metric,
            "model": self.model,
            "layers": {layer.scope: dict(layer.errors) for layer in self.layers},
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.planner_dict(),
            "calibration": self.calibration,
            "inputs": self.inputs,
            "forwards": self.forwards,
            "seconds": self.seconds,
            "kinds": {layer.scope: layer.kind for layer in self.layers},
            "weight_params": {layer.scope: layer.weight_params for layer in self.layers},
        }


def weight_layers(model: nn.Module, globs: Sequence[str] = ()) -> dict[str, nn.Module]:
    """Scope -> module for every module holding a weight of 2+ dims, matching any glob."""
    layers = {
        name: m
        for name, m in model.named_modules()
        if isinstance(w := m._parameters.get("weight"), torch.Tensor) and w.ndim >= 2
    }
    if not globs:
        return layers
    chosen = {n: m for n, m in layers.items() if any(fnmatch.fnmatch(n, g) for g in globs)}
    if not chosen:
        some = ", ".join(list(layers)[:6]) + (", ..." if len(layers) > 6 else "")
        raise EdgewiseError(
            f"--layers {','.join(globs)} matches none of the {len(layers)} weight layers "
            f"({some}); use glob patterns such as 'down_blocks.*'"
        )
    return chosen


def layer_weight(module: nn.Module) -> torch.Tensor:
    """The `weight` a module holds itself (a layer from `weight_layers`)."""
    weight = module._parameters.get("weight")
    if weight is None:
        raise EdgewiseError(f"{type(module).__name__} holds no weight of its own")
    return weight


def parse_bits(text: str) -> tuple[str, ...]:
    bits = tuple(b.strip() for b in text.split(",") if b.strip())
    bad = [b for b in bits if b not in BITS]
    if bad or not bits:
        raise EdgewiseError(f"--bits takes a comma list of {', '.join(BITS)} (got '{text}')")
    return tuple(dict.fromkeys(bits))


def calibration_inputs(
    model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], n: int, seed: int = 0
) -> tuple[Inputs, str]:
    """N inputs and a description: the model's own, or random of the example shapes."""
    if n < 1:
        raise EdgewiseError(f"--calib must be at least 1 input (got {n})")
    own = getattr(model, "calibration_inputs", None)
    if callable(own):
        return [(tuple(a), {}) for a in own(n)], f"{type(model).__name__}.calibration_inputs"
    generator = torch.Generator().manual_seed(seed)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))

    def random(t: torch.Tensor) -> torch.Tensor:
        if t.dtype.is_floating_point:
            return torch.randn(t.shape, generator=generator).to(device=device, dtype=t.dtype)
        return torch.zeros(t.shape, dtype=t.dtype, device=device)

    inputs = [
        (tree_map_only(torch.Tensor, random, args), tree_map_only(torch.Tensor, random, kwargs))
        for _ in range(n)
    ]
    return inputs, f"random normal inputs of the example shapes, seed {seed}"


def flat_output(out: Any) -> torch.Tensor:
    """Every floating-point tensor of a forward's output, flattened into one vector."""
    if hasattr(out, "to_tuple"):  # transformers ModelOutput, diffusers BaseOutput
        out = out.to_tuple()
    leaves = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
    floats = [t.detach().flatten().float() for t in leaves if t.dtype.is_floating_point]
    if not floats:
        raise EdgewiseError("the model's output has no floating-point tensor to compare")
    return torch.cat(floats)


def measure_sensitivity(
    model: nn.Module,
    inputs: Inputs,
    layers: dict[str, nn.Module],
    bits: Sequence[str],
    name: str,
    calibration: str = "",
    progress: Progress | None = None,
) -> Sensitivity:
    """Quantize each layer alone at each bit-width and record the output error."""
    start = time.perf_counter()
    model.eval()
    total = len(layers) * len(bits)
    if progress:
        progress(0, total, "float reference")
    with torch.no_grad():
        reference = [flat_output(forward(model, a, k)) for a, k in inputs]
    forwards = len(inputs)
    measured: dict[int, dict[str, float]] = {}  # id(weight) -> errors: tied weights once
    out = []
    for done, (scope, module) in enumerate(layers.items()):
        weight = layer_weight(module)
        if id(weight) not in measured:
            errors = {}
            original = weight.detach().clone()
            try:
                for i, precision in enumerate(bits):
                    if progress:
                        progress(done * len(bits) + i, total, f"{scope} {precision}")
                    with torch.no_grad():
                        weight.copy_(fake_quantize_weight(original, BITS[precision]))
                        diffs = [
                            relative_mse(ref, flat_output(forward(model, a, k)))
                            for ref, (a, k) in zip(reference, inputs, strict=True)
                        ]
                    forwards += len(inputs)
                    errors[precision] = sum(diffs) / len(diffs)
            finally:
                with torch.no_grad():
                    weight.copy_(original)
            measured[id(weight)] = errors
        out.append(
            LayerSensitivity(scope, type(module).__name__, weight.numel(), measured[id(weight)])
        )
    if progress:
        progress(total, total, "done")
    return Sensitivity(
        name, METRIC, calibration, len(inputs), forwards, time.perf_counter() - start, tuple(out)
    )
