"""What a user varies about a zoo model's forward without changing the model: torch-free,
so commands can name a workload (and find its graph in the cache) without importing torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Workload:
    """One forward pass's input: what a user varies without changing the model."""

    batch: int = 1
    resolution: int | None = None  # image size in pixels (None = the entry's default)
    frames: int | None = None  # video frames (None = the entry's default)
    cfg: bool = False  # classifier-free guidance: the denoiser runs on 2 x batch


DEFAULT_WORKLOAD = Workload()
