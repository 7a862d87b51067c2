"""Stages of a model: the coarse blocks a reader names (down 64, mid, up 8, encoder).

A stage is a top-level called module; containers that are never called themselves
(`nn.ModuleList` such as `down_blocks`) are looked through, so `down_blocks.1` is a
stage. If that gives fewer than three stages (a wrapper such as `vit.`), we look one
level deeper. Each stage carries the spatial resolution most of its convolutions and
attentions run at, so a U-Net's stages read "down 64 / 32 / 16 / 8, mid 8, up 8 ... 64".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from math import isqrt

from edgewise.ir.categories import OpCategory
from edgewise.ir.graph import Graph, Op


@dataclass(frozen=True, slots=True)
class Stage:
    name: str  # scope prefix, e.g. "down_blocks.1"
    label: str  # short reading, e.g. "down 32"
    resolution: int | None  # dominant spatial size (H of NCHW, sqrt of token count)


def _stage_names(graph: Graph, scopes: dict[str, None], depth: int) -> dict[str, str]:
    """Stage of each scope: its shortest prefix that is a called module with at least
    `depth` non-numeric parts (the whole scope if none is). Each prefix is looked at
    once, however many scopes share it."""
    found: dict[str, tuple[str | None, int]] = {}  # prefix -> (stage prefix, word parts)
    out: dict[str, str] = {}
    for scope in scopes:
        chain: list[tuple[str, str]] = []  # (prefix, its last part), innermost first
        prefix = scope
        state: tuple[str | None, int] = (None, 0)
        while True:
            if (hit := found.get(prefix)) is not None:
                state = hit
                break
            parent, dot, part = prefix.rpartition(".")
            chain.append((prefix, part))
            if not dot:
                break
            prefix = parent
        for prefix, part in reversed(chain):
            stage, words = state[0], state[1] + (not part.isdigit())
            if stage is None and words >= depth and prefix in graph.scopes:
                stage = prefix
            state = found[prefix] = (stage, words)
        out[scope] = scope if state[0] is None else state[0]
    return out


def stage_of_ops(graph: Graph) -> tuple[str, ...]:
    """Stage name of every op, in execution order."""
    scopes = dict.fromkeys(op.scope for op in graph.ops)  # each distinct scope, named once
    name_of: dict[str, str] = {}
    for depth in (1, 2, 3):
        name_of = _stage_names(graph, scopes, depth)
        if len(set(name_of.values()) - {""}) >= 3:
            break
    return tuple([name_of[op.scope] for op in graph.ops])


def stage_position_of_ops(graph: Graph) -> tuple[int, ...]:
    """Position of each op's stage in execution order: 0, 1, 2, ... as stages follow one
    another. Glue ops run by the root module ("" scope) belong to the stage before them,
    so a skip read three stages later is 3 positions away however much glue sits between."""
    positions, position, current = [], 0, None
    for name in stage_of_ops(graph):
        if name and name != current:
            position += current is not None
            current = name
        positions.append(position)
    return tuple(positions)


def _resolution(op: Op, graph: Graph) -> int | None:
    if op.category is OpCategory.CONV and op.outputs:
        shape = graph.tensors[op.outputs[0]].shape
        return shape[-2] if len(shape) == 4 else None
    if op.category is OpCategory.ATTENTION and op.outputs:
        tokens = graph.tensors[op.outputs[0]].shape[-2]
        root = isqrt(tokens)
        return root if root * root == tokens else None
    return None


def _label(name: str, resolution: int | None) -> str:
    base = name.split(".")
    words = [p for p in base if not p.isdigit()]
    word = words[-1] if words else name
    for suffix in ("_blocks", "_block"):
        word = word.removesuffix(suffix)
    return f"{word} {resolution}" if resolution else word


def stages(graph: Graph) -> tuple[Stage, ...]:
    """Stages in order of first execution."""
    names = stage_of_ops(graph)
    res: dict[str, Counter[int]] = {}
    for op, name in zip(graph.ops, names, strict=True):
        counter = res.setdefault(name, Counter())
        r = _resolution(op, graph)
        if r:
            counter[r] += 1
    out = []
    for name, counter in res.items():
        resolution = counter.most_common(1)[0][0] if counter else None
        out.append(Stage(name, _label(name, resolution), resolution))
    return tuple(out)
