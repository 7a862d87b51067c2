"""A workload of several graphs: phases run in order, each a number of calls per run.

Stable Diffusion makes one image from a text encoder (once), a denoising U-Net (once per
step, twice with classifier-free guidance run as two calls) and a VAE decoder (once); a
language model prefills once and decodes once per token. A `Pipeline` is that sequence,
so every figure can be given per run (per image) as well as per call. A single graph is
a pipeline of one phase called once.

A phase's calls run back to back, so weights a spec or a plan keeps on chip are loaded by
the first call and serve every later one (`simulate.pipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgewise.errors import EdgewiseError
from edgewise.ir.graph import Graph

MAX_CALLS = 1_000_000  # a typo guard: a million denoising steps is a mistake


@dataclass(frozen=True)
class Phase:
    """One graph and how many times a run calls it."""

    name: str  # e.g. "unet"
    graph: Graph
    calls: int = 1
    steps_per_call: float = 0.0  # denoising steps one call advances (0: not a denoiser)

    def __post_init__(self) -> None:
        if type(self.calls) is not int or not 1 <= self.calls <= MAX_CALLS:
            raise EdgewiseError(
                f"phase '{self.name}' must be called 1 to {MAX_CALLS:,} times (got {self.calls!r})"
            )


@dataclass(frozen=True)
class Pipeline:
    """Phases in the order they run; `unit` names what one run makes (an image)."""

    name: str
    phases: tuple[Phase, ...]
    unit: str = "image"
    description: str = ""

    def __post_init__(self) -> None:
        if not self.phases:
            raise EdgewiseError(f"pipeline '{self.name}' has no phases")
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise EdgewiseError(f"pipeline '{self.name}' names a phase twice: {names}")

    @property
    def steps(self) -> float:
        """Denoising steps per run (0 for a pipeline without a denoiser)."""
        return sum(p.steps_per_call * p.calls for p in self.phases)


def single(graph: Graph) -> Pipeline:
    """A graph as the one-phase pipeline it is."""
    return Pipeline(graph.model, (Phase(graph.model, graph),), unit="call")
