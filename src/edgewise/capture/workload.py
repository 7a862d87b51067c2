"""What a user varies about a zoo model's forward without changing the model: torch-free,
so commands can name a workload (and find its graph in the cache) without importing torch."""

from __future__ import annotations

from dataclasses import dataclass

from edgewise.errors import EdgewiseError


@dataclass(frozen=True)
class Workload:
    """One forward pass's input: what a user varies without changing the model."""

    batch: int = 1
    resolution: int | None = None  # image size in pixels (None = the entry's default)
    frames: int | None = None  # video frames (None = the entry's default)
    cfg: bool = False  # classifier-free guidance: the denoiser runs on 2 x batch


DEFAULT_WORKLOAD = Workload()


def workload_for(
    batch: int | None, resolution: int | None, frames: int | None, cfg: bool
) -> Workload | None:
    """The workload the zoo options describe (the zoo entry checks it further); None when
    no option is given, so that a graph file is read without importing the zoo (torch)."""
    if batch is not None and batch < 1:
        raise EdgewiseError(f"--batch must be at least 1 (got {batch})")
    if batch in (None, 1) and resolution is None and frames is None and not cfg:
        return None
    return Workload(batch=batch or 1, resolution=resolution, frames=frames, cfg=cfg)
