"""The operator graph every later stage reads.

A `Graph` is the ATen ops of one forward pass in execution order, and the tensors they
read and write. Tensors are values (one record per op output, SSA style); the memory
they occupy is their *storage*: views and in-place ops produce new tensor records that
share the storage of their input, so they add no memory. Analyses (counts, liveness,
cost) attach their results beside the graph; they never subclass or mutate it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from math import prod
from typing import Annotated, Any

from msgspec import Meta, Struct

from edgewise.ir.categories import OpCategory


class TensorKind(StrEnum):
    INPUT = "input"  # an example input of the forward
    PARAMETER = "parameter"  # an nn.Parameter (a weight)
    BUFFER = "buffer"  # a registered buffer (running stats, position ids)
    ACTIVATION = "activation"  # produced by an op during the forward
    CONSTANT = "constant"  # any other tensor the forward reads (created outside the graph)


DTYPE_BYTES: dict[str, float] = {
    "float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4,
    "int16": 2, "int8": 1, "uint8": 1, "bool": 1, "complex64": 8, "float8_e4m3fn": 1,
    "float8_e5m2": 1, "int4": 0.5, "int2": 0.25, "uint16": 2, "uint32": 4, "uint64": 8,
    "complex128": 16, "float8_e4m3fnuz": 1, "float8_e5m2fnuz": 1, "uint4": 0.5,
}  # fmt: skip
# every dtype name torch has (a graph file naming any other is refused)
KNOWN_DTYPES: tuple[str, ...] = (
    *DTYPE_BYTES, "bits16", "bits1x8", "bits2x4", "bits4x2", "bits8", "complex32",
    "float4_e2m1fn_x2", "float8_e8m0fnu", "int1", "int3", "int5", "int6", "int7", "qint32",
    "qint8", "quint2x4", "quint4x2", "quint8", "uint1", "uint2", "uint3", "uint5", "uint6",
    "uint7",
)  # fmt: skip


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (usable as a decorator): a whole-graph pass makes
    millions of acyclic records, and beside a large graph the collector would rescan the
    heap again and again while they pile up. Restored as it was, whatever happens."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def rescaled_bytes(nbytes: int, dtype: str, bytes_per_element: float | None) -> int:
    """`nbytes` of a `dtype` tensor stored at `bytes_per_element` instead: floating tensors
    scale (an fp32 activation at int8 is a quarter), integer ones (indices) do not."""
    if bytes_per_element is None or not dtype.startswith(("float", "bfloat")):
        return nbytes
    return int(nbytes * bytes_per_element / DTYPE_BYTES[dtype])


# Bounds a graph file's records must keep (checked when a file is decoded, not on
# construction): ids exact in a JSON double, 64 dims of at most 2^40, text of 4096 chars.
Id = Annotated[int, Meta(ge=0, lt=2**53)]
Shape = Annotated[tuple[Annotated[int, Meta(ge=0, le=2**40)], ...], Meta(max_length=64)]
Text = Annotated[str, Meta(max_length=4096)]


# Tensor and Op are frozen msgspec Structs rather than dataclasses: the same frozen typed
# records, but a graph file decodes straight into them with their annotations checked
# (a million-op file in about 3 s instead of 20), and the collector never tracks them.
class Tensor(Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """One value in the graph: its shape and dtype, and the storage it lives in."""

    id: Id
    shape: Shape
    dtype: Annotated[str, Meta(max_length=64)]  # torch dtype name without "torch."
    kind: TensorKind
    storage_id: Id  # tensors sharing a storage share memory (views, in-place results)
    storage_bytes: Annotated[int, Meta(ge=0, le=2**51)]  # size of that storage, in bytes
    producer: Id | None = None  # index of the op that produced it; None for graph inputs
    name: Text = ""  # parameter/buffer qualified name or input name; empty for activations
    # Eager lifetime: the last op that ran while PyTorch still held this tensor (Python
    # references, not just uses); None if it was still held when the forward returned.
    released_after: Id | None = None

    @property
    def numel(self) -> int:
        return prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of this tensor's own elements (a view's bytes, not its storage's)."""
        return int(self.numel * DTYPE_BYTES.get(self.dtype, 4))


class Op(Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """One ATen op as it ran, with its arguments and the module scope that ran it.

    `args` and `kwargs` hold the op's non-tensor arguments as JSON-ready values and its
    tensor arguments as `TensorRef`s, so every count is a pure function of the record.
    """

    index: Id  # position in execution order
    target: Text  # ATen overload, e.g. "aten.convolution.default"
    inputs: tuple[Id, ...]  # ids of tensors read, in argument order
    outputs: tuple[Id, ...]  # ids of tensors written
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    scope: Text  # qualified name of the innermost module, "" for the root
    category: OpCategory

    @property
    def name(self) -> str:
        """The overload packet, e.g. "convolution" for "aten.convolution.default"."""
        parts = self.target.split(".")
        return parts[1] if len(parts) > 1 else parts[0]


class TensorRef(Struct, frozen=True, gc=False):
    """Stands for a tensor argument inside `Op.args` / `Op.kwargs`."""

    id: int


@dataclass(frozen=True)
class Graph:
    """Ops in execution order, the tensors they touch, and what ran them."""

    model: str  # the model's name (zoo name, module path or class name)
    ops: tuple[Op, ...]
    tensors: dict[int, Tensor]
    scopes: dict[str, str]  # module qualified name -> module class name, in call order
    inputs: dict[str, tuple[int, ...]] = field(default_factory=dict)  # input name -> shape
    outputs: tuple[int, ...] = ()  # ids of the tensors the forward returned
    constants: dict[int, tuple[Any, ...]] = field(default_factory=dict)  # small constants' values
    meta: dict[str, Any] = field(default_factory=dict)  # workload: batch, resolution, cfg...

    def __repr__(self) -> str:
        """One line (the fields would print a whole model: 121,909 characters for SD 1.5)."""
        return (f"<Graph {self.model}: {len(self.ops):,} ops, {len(self.tensors):,} tensors, "
                f"{self.parameter_count:,} parameters>")  # fmt: skip

    @cached_property
    def consumers(self) -> dict[int, tuple[int, ...]]:
        """Tensor id -> indices of the ops that read it, in order."""
        readers: dict[int, list[int]] = {tid: [] for tid in self.tensors}
        for op in self.ops:
            for tid in dict.fromkeys(op.inputs):
                readers[tid].append(op.index)
        return {tid: tuple(ops) for tid, ops in readers.items()}

    @cached_property
    def op_at(self) -> dict[int, Op]:
        """Op index -> op. Producers and consumers name ops by index; this finds them
        whatever order `ops` lists them in (a position in `ops` is not an index)."""
        return {op.index: op for op in self.ops}

    def tensors_of_kind(self, *kinds: TensorKind) -> Iterator[Tensor]:
        return (t for t in self.tensors.values() if t.kind in kinds)

    @cached_property
    def parameter_count(self) -> int:
        """Elements of all distinct parameters the forward read (shared weights once)."""
        seen: set[int] = set()
        total = 0
        for t in self.tensors_of_kind(TensorKind.PARAMETER):
            if t.storage_id not in seen:
                seen.add(t.storage_id)
                total += t.numel
        return total

    def block_of(self, op: Op, depth: int) -> str:
        """The op's scope cut to its first `depth` dotted components ("" is the root)."""
        return ".".join(op.scope.split(".")[:depth]) if op.scope else ""
