"""A small vision model trained here, on data a package ships, for a real task metric.

Data: scikit-learn's `load_digits` (1,797 grayscale 8x8 handwritten digits, 10 classes,
pixel values 0..16 scaled to 0..1), split once by a fixed permutation into 1,437
training and 360 test images.

Model (`DigitsCNN`, 40,394 parameters, no normalization layers, so every weight layer
quantizes as it is):
    conv1 1->16 3x3  ReLU                8x8
    conv2 16->32 3x3 ReLU, max-pool 2    4x4
    conv3 32->64 3x3 ReLU, max-pool 2    2x2
    fc    256->64    ReLU
    head  64->10     logits
Training: Adam (lr 5e-3), batch 64, 20 epochs, seed 0, deterministic algorithms, one
CPU thread (the same weights whatever the core count), in 2 to 4 seconds;
99.2 % test accuracy (357 of 360). Weights are cached as
`digits-cnn-v1.safetensors` under $EDGEWISE_CACHE_DIR (default ~/.cache/edgewise) and
loaded back through `execute.weights` like any user's file.

Quantized evaluation: each layer's weights fake-quantized at its precision from an
assignment {scope: "int8" | "int4" | "int2" | float} (a plan's `weights`), per output
channel; the input of every weight layer fake-quantized per tensor (int8 by default)
with scales calibrated on 256 training images. `--module edgewise.execute.digits:factory`
gives the trained model and one test image as example input.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from edgewise.capture import zoo_builtin
from edgewise.errors import EdgewiseError
from edgewise.execute.quantize import (
    BITS,
    activation_scale,
    cosine,
    fake_quantize_activation,
    fake_quantize_weight,
    sqnr_db,
)
from edgewise.execute.sensitivity import layer_weight, weight_layers

FACTORY = "edgewise.execute.digits:factory"
WEIGHTS_FILE = "digits-cnn-v1.safetensors"  # bump the version when the recipe changes
SEED = 0
TEST_IMAGES = 360
CALIBRATION_IMAGES = 256
FLOAT_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0}
FLOAT_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class DigitsCNN(zoo_builtin.DigitsCNN):
    """The zoo's `digits-cnn` architecture, with the calibration data sensitivity needs."""

    def calibration_inputs(self, n: int) -> list[tuple[Any, ...]]:
        """The first `n` training images, one forward each (`execute.sensitivity` uses it)."""
        data = load_data()
        if n > len(data.train_x):
            raise EdgewiseError(f"--calib: the digits data has {len(data.train_x)} training "
                                f"images (got {n})")  # fmt: skip
        return [(data.train_x[i : i + 1],) for i in range(n)]


@dataclass(frozen=True)
class DigitsData:
    train_x: torch.Tensor  # (1437, 1, 8, 8) float32 in 0..1
    train_y: torch.Tensor  # (1437,) int64 class labels
    test_x: torch.Tensor  # (360, 1, 8, 8)
    test_y: torch.Tensor  # (360,)


@cache
def load_data() -> DigitsData:
    """scikit-learn's digits, split by a fixed permutation (seed 0)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SEED))
    test, train = order[:TEST_IMAGES], order[TEST_IMAGES:]
    return DigitsData(x[train], y[train], x[test], y[test])


@dataclass(frozen=True)
class Training:
    seconds: float
    epochs: int
    test_accuracy: float  # fraction of the 360 test images classified right


def train(epochs: int = 20, seed: int = SEED) -> tuple[DigitsCNN, Training]:
    """Train from scratch, deterministically: same seed, same weights (for one PyTorch
    build and CPU kind)."""
    data = load_data()
    start = time.perf_counter()
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # sums in one order whatever the core count; and a busy
    try:  # machine cannot stall these tiny kernels on waits between threads
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = DigitsCNN()
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(data.train_y), generator=generator)
            for batch in order.split(64):
                optimizer.zero_grad()
                loss = F.cross_entropy(model(data.train_x[batch]), data.train_y[batch])
                loss.backward()
                optimizer.step()
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)
    model.eval()
    seconds = time.perf_counter() - start
    return model, Training(seconds, epochs, accuracy(model, data.test_x, data.test_y))


def cache_dir() -> Path:
    return Path(os.environ.get("EDGEWISE_CACHE_DIR") or Path.home() / ".cache" / "edgewise")


def save(model: nn.Module, path: Path) -> None:
    """safetensors, written whole or not at all."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(path)


def load_or_train(
    path: Path | None = None, retrain: bool = False
) -> tuple[DigitsCNN, Training | None]:
    """The cached model (built on meta, filled by the safe loader), or a fresh one saved
    there; the training record when it trained."""
    from edgewise.execute.weights import load_weights

    path = path or cache_dir() / WEIGHTS_FILE
    if path.exists() and not retrain:
        with torch.device("meta"):
            empty = DigitsCNN()
        try:
            loaded = load_weights(empty, path)
        except EdgewiseError as e:
            raise EdgewiseError(
                f"{e} (the digits cache: `edgewise digits --train` rewrites it)"
            ) from e
        assert isinstance(loaded, DigitsCNN)
        return loaded, None
    model, training = train()
    save(model, path)
    return model, training


def factory() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """For `--module edgewise.execute.digits:factory`: trained model, one test image."""
    model, _ = load_or_train()
    return model, (load_data().test_x[:1],)


# --------------------------------------------------------------------------- evaluation


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean().item())


def quantized_copy(
    model: nn.Module,
    weights: Mapping[str, str],
    activation_bits: int | None = 8,
    calibration: torch.Tensor | None = None,
) -> nn.Module:
    """A copy whose layers hold fake-quantized weights and (with `activation_bits`)
    fake-quantize their input per tensor at scales calibrated on `calibration`."""
    fake = copy.deepcopy(model).eval()
    layers = weight_layers(fake)
    unknown = sorted(set(weights) - set(layers))
    if unknown:
        raise EdgewiseError(
            f"no weight layer named {', '.join(unknown)} in {type(model).__name__}; "
            f"its layers are {', '.join(layers)}"
        )
    with torch.no_grad():
        for scope, precision in weights.items():
            w = layer_weight(layers[scope])
            if precision in BITS:
                w.copy_(fake_quantize_weight(w, BITS[precision]))
            elif precision in FLOAT_DTYPES:
                w.copy_(w.to(FLOAT_DTYPES[precision]).float())
            elif precision != "fp32":
                known = ", ".join([*BITS, *FLOAT_BYTES])
                raise EdgewiseError(f"layer '{scope}': unknown precision '{precision}' ({known})")
    if activation_bits is None:
        return fake
    if calibration is None:
        raise EdgewiseError("activation fake quantization needs calibration inputs")
    absmax = dict.fromkeys(layers, 0.0)

    def observe(scope: str) -> Any:
        def hook(_m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            absmax[scope] = max(absmax[scope], float(inputs[0].abs().max().item()))

        return hook

    handles = [m.register_forward_pre_hook(observe(s)) for s, m in layers.items()]
    with torch.no_grad():
        fake(calibration)
    for h in handles:
        h.remove()

    def quantize_input(scale: float) -> Any:
        def hook(_m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
            bits = activation_bits
            assert bits is not None
            return (fake_quantize_activation(inputs[0], scale, bits), *inputs[1:])

        return hook

    for scope, m in layers.items():
        scale = activation_scale(absmax[scope], activation_bits)
        m.register_forward_pre_hook(quantize_input(scale))
    return fake


@dataclass(frozen=True)
class Evaluation:
    name: str  # what ran: "float", "int8", "plan", ...
    accuracy: float  # fraction of the test images classified right
    sqnr_db: float  # of the test logits against the float model's (inf when identical)
    cosine: float  # of the test logits against the float model's
    weight_bytes: float  # weight bytes stored at the assignment's precisions


def weight_bytes(model: nn.Module, weights: Mapping[str, str]) -> float:
    sizes = {**FLOAT_BYTES, **{p: b / 8 for p, b in BITS.items()}}
    return sum(
        layer_weight(m).numel() * sizes[weights.get(scope, "fp32")]
        for scope, m in weight_layers(model).items()
    )


def evaluate(
    model: nn.Module,
    weights: Mapping[str, str] | None = None,
    activation_bits: int | None = 8,
    name: str = "",
) -> Evaluation:
    """Test accuracy and logit fidelity, float (`weights=None`) or quantized."""
    data = load_data()
    with torch.no_grad():
        reference = model(data.test_x)
    run = model
    if weights is not None:
        run = quantized_copy(model, weights, activation_bits, data.train_x[:CALIBRATION_IMAGES])
    with torch.no_grad():
        logits = run(data.test_x)
    hits = float((logits.argmax(1) == data.test_y).float().mean().item())
    return Evaluation(
        name or ("float" if weights is None else "quantized"),
        hits,
        sqnr_db(reference, logits),
        cosine(reference, logits),
        weight_bytes(model, weights or {}),
    )


def uniform(model: nn.Module, precision: str) -> dict[str, str]:
    """Every weight layer at `precision`."""
    return dict.fromkeys(weight_layers(model), precision)


def plan_assignment(
    model: nn.Module, weights: str, activations: str, planned: Mapping[str, str]
) -> tuple[dict[str, str], int | None]:
    """(weights, activation bits) of a plan: its base weight precision for every layer,
    the plan's per-layer choices over it."""
    return {**uniform(model, weights), **planned}, BITS.get(activations)
