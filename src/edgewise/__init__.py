"""edgewise: where a vision model's memory and compute go, layer by layer.

The pipeline, stage by stage (each importable on its own):
    graph = edgewise.capture(model, *example_args)      # capture: ATen op graph, no weights
    prof = edgewise.profile(graph, by="layer")          # analysis: params, MACs, vector ops
"""

from edgewise.analysis.profile import Profile, profile
from edgewise.capture.torch_capture import capture
from edgewise.errors import EdgewiseError
from edgewise.ir.graph import Graph, Op, Tensor, TensorKind

__all__ = ["EdgewiseError", "Graph", "Op", "Profile", "Tensor", "TensorKind", "capture", "profile"]
