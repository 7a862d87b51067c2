"""Roofline points of a simulation's layers, shared by the PNG chart and the HTML report.

A layer with MACs is placed at (MACs per DRAM byte, MACs per second achieved) under the MAC
roof; a layer without MACs (norms, softmax, elementwise: the vector unit's work) at (vector
ops per DRAM byte, vector ops per second) under the vector roof. A layer that moves no
DRAM byte (all on chip) has no finite intensity: it is drawn at the right edge of the
data's range, marked as such, not at a made-up x. A layer whose ops all run in another
op's epilogue (`compile.fuse_epilogues`) is charged no compute of its own, so it has no
achieved rate: it is counted in `fused`, not drawn. The x range is the data's own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgewise.simulate.simulator import LayerCost


@dataclass(frozen=True, slots=True)
class RooflinePoint:
    name: str
    kind: str  # "MAC" | "vector" (what the layer's ops are counted in)
    on_chip: bool  # no DRAM bytes: x is the chart's right edge
    intensity: float  # ops per DRAM byte (the right edge when on chip)
    achieved: float  # ops per second
    bound: str
    row: LayerCost


@dataclass(frozen=True, slots=True)
class Roofline:
    points: tuple[RooflinePoint, ...]
    x_range: tuple[float, float]
    peak_macs_per_s: float
    peak_vector_per_s: float
    dram_bytes_per_s: float
    fused: int = 0  # layers wholly fused into other ops' epilogues (not drawn)

    def roof(self, kind: str, xs: np.ndarray) -> np.ndarray:
        peak = self.peak_macs_per_s if kind == "MAC" else self.peak_vector_per_s
        if self.dram_bytes_per_s <= 0:
            return np.full_like(xs, peak)
        return np.minimum(peak, xs * self.dram_bytes_per_s)


def roofline(
    rows: tuple[LayerCost, ...], peak_macs: float, peak_vector: float, dram_bw: float
) -> Roofline:
    """Every layer that takes time, MAC layers and vector-only layers alike."""
    counted = [r for r in rows if r.latency_s > 0 and (r.macs or r.vector_ops)]
    timed = [r for r in counted if r.fused_ops < r.op_count]
    finite = [(r.macs or r.vector_ops) / r.dram_bytes for r in timed if r.dram_bytes]
    lo = min(finite) / 2 if finite else 0.1
    hi = max(finite) * 4 if finite else 1000.0
    hi = max(hi, lo * 10)
    points = tuple(
        RooflinePoint(
            r.name,
            "MAC" if r.macs else "vector",
            r.dram_bytes == 0,
            (r.macs or r.vector_ops) / r.dram_bytes if r.dram_bytes else hi,
            (r.macs or r.vector_ops) / r.latency_s,
            r.bound,
            r,
        )
        for r in timed
    )
    return Roofline(points, (lo, hi * 1.5), peak_macs, peak_vector, dram_bw,
                    len(counted) - len(timed))  # fmt: skip
