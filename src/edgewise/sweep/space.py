"""A design space: the models, a base spec, the spec fields to vary and how to sample them.

The space file (YAML or JSON; `edgewise sweep schema` prints its JSON schema):

    models: [sd15-unet, {name: resnet50, batch: 4}, {file: graph.json},
             {pipeline: sd15, steps: 25, cfg: true}]   # a pipeline: one point, one image
    hardware: generic-npu          # the base spec: a preset or a spec file
    set: [weights_resident=false]  # fixed overrides, as --set
    precision: [int8, w4a8]
    spec:                          # fields to vary (`simulate.batch.SWEEP_FIELDS`)
      sram_bytes: [256KiB, 64MiB, log, 16]           # 16 levels, log-spaced
      dram_bandwidth_bytes_per_s: [8GB/s, 136GB/s, 8] # 8 levels, evenly spaced
      mac_array.rows: {values: [16, 32, 64, 128]}
    sampling: {method: grid}       # or {method: random | lhs, points: N, seed: 0}
    plan: {objective: latency, allow: [keep, spill, recompute]}   # optional
    area: {sram_mm2_per_mib: {value: 0.176, source: "..."}, mac_mm2: {...}}  # optional

Grid: every combination of the levels. Random: each field uniform between its ends
(log-uniform on a log axis; a `values` field picks one of its values), seeded. Latin
hypercube: N strata per field, one point in each, the strata paired at random, seeded.
Integer fields (sram_bytes, the MAC array's rows and cols) are rounded to whole numbers.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgewise.errors import EdgewiseError
from edgewise.hardware.spec import parse_field_value
from edgewise.ir.files import parse_json, parse_yaml, read_text, schema_problem
from edgewise.simulate.batch import INTEGER_FIELDS, SWEEP_FIELDS

MAX_POINTS = 100_000_000
MAX_FILE_BYTES = 1 << 20
Name = Annotated[str, Field(min_length=1, max_length=4096)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelEntry(_Strict):
    name: Name | None = None  # a zoo name
    file: Name | None = None  # a graph file from `edgewise capture`
    pipeline: Name | None = None  # sd15 or sdxl: a point costs one whole run (an image)
    batch: Annotated[int, Field(ge=1, le=4096)] | None = None
    resolution: Annotated[int, Field(ge=8, le=16384)] | None = None
    frames: Annotated[int, Field(ge=1, le=4096)] | None = None
    cfg: bool = False
    steps: Annotated[int, Field(ge=1, le=10_000)] | None = None  # a pipeline's
    cfg_mode: Literal["batch", "sequential"] | None = None  # a pipeline's, with cfg

    @property
    def key(self) -> str:
        """What identifies the model's graph in the store."""
        opts = [f"{k}={v}" for k, v in (("batch", self.batch), ("resolution", self.resolution),
                                         ("frames", self.frames), ("steps", self.steps),
                                         ("cfg_mode", self.cfg_mode)) if v is not None]  # fmt: skip
        opts += ["cfg"] if self.cfg else []
        base = (self.name if self.name else f"file:{self.file}" if self.file
                else f"pipeline:{self.pipeline}")  # fmt: skip
        return base + (f"?{'&'.join(opts)}" if opts else "")


class Values(_Strict):
    values: Annotated[list[float | str], Field(min_length=1, max_length=100_000)]


class Sampling(_Strict):
    method: Literal["grid", "random", "lhs"] = "grid"
    points: Annotated[int, Field(ge=1, le=MAX_POINTS)] | None = None
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0


class PlanOptions(_Strict):
    objective: Literal["latency", "energy", "dram"] = "latency"
    allow: Annotated[list[Literal["keep", "spill", "recompute"]], Field(min_length=1)] = [
        "keep", "spill", "recompute",
    ]  # fmt: skip
    time_limit_s: Annotated[float, Field(gt=0, le=3600)] = 10.0


class Figure(_Strict):
    value: Annotated[float, Field(ge=0, le=1e6)]
    source: Annotated[str, Field(min_length=1, max_length=4000)]


class Area(_Strict):
    """Silicon area per spec: SRAM per MiB plus MAC array cells (rows x cols), each figure
    with its source, so Pareto fronts can trade area for speed."""

    sram_mm2_per_mib: Figure
    mac_mm2: Figure  # per MAC cell of the array


Axis = Annotated[list[float | str], Field(min_length=3, max_length=4)] | Values


class SpaceFile(_Strict):
    models: Annotated[list[Name | ModelEntry], Field(min_length=1, max_length=256)]
    hardware: Name = "generic-npu"
    set: Annotated[list[Name], Field(max_length=256)] = []
    precision: Annotated[list[Name], Field(min_length=1, max_length=16)] = ["int8"]
    spec: Annotated[dict[str, Axis], Field(min_length=1, max_length=len(SWEEP_FIELDS))]
    sampling: Sampling = Sampling()
    plan: PlanOptions | None = None
    area: Area | None = None


@dataclass(frozen=True)
class Space:
    """A validated space: its models, the base spec's name and overrides, precisions, and
    the points (one column per swept field, same length)."""

    models: tuple[ModelEntry, ...]
    hardware: str
    overrides: tuple[str, ...]
    precisions: tuple[str, ...]
    columns: dict[str, np.ndarray]
    plan: PlanOptions | None
    area: Area | None
    text_hash: str  # of the space file, for the store's record

    @property
    def points(self) -> int:
        return len(next(iter(self.columns.values())))

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.columns)


def schema() -> dict[str, Any]:
    return SpaceFile.model_json_schema()


def load_space(path: Path) -> Space:
    """Read, validate and sample a space file; every mistake is one line naming it."""
    text = read_text(path, "space file", MAX_FILE_BYTES)
    label = f"space file '{path}'"
    raw = parse_json(text, label) if path.suffix.lower() == ".json" else parse_yaml(text, label)
    return space_from_mapping(raw, label, hashlib.sha256(text.encode()).hexdigest()[:16])


def space_from_mapping(raw: Any, label: str = "space", text_hash: str | None = None) -> Space:
    """A space from the file's content already parsed (the API passes a dict); its hash,
    when not given, is of its canonical JSON."""
    if not isinstance(raw, dict):
        raise EdgewiseError(f"{label} must be a mapping with 'models' and 'spec' (see "
                            "`edgewise sweep schema`)")  # fmt: skip
    try:
        data = SpaceFile.model_validate(raw)
    except ValidationError as e:
        raise EdgewiseError(f"{label}: {schema_problem(e)}") from None
    if text_hash is None:
        canonical = json.dumps(raw, sort_keys=True, default=str)
        text_hash = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    try:
        return _space(data, text_hash)
    except EdgewiseError as e:
        raise EdgewiseError(f"{label}: {e}") from None


def _space(data: SpaceFile, text_hash: str) -> Space:
    models = tuple(ModelEntry(name=m) if isinstance(m, str) else m for m in data.models)
    for m in models:
        if sum(x is not None for x in (m.name, m.file, m.pipeline)) != 1:
            raise EdgewiseError("each model needs exactly one of 'name' (a zoo model), 'file' "
                                "(a graph file) or 'pipeline' (sd15, sdxl)")  # fmt: skip
        if m.pipeline is None and (m.steps is not None or m.cfg_mode is not None):
            raise EdgewiseError(f"'steps' and 'cfg_mode' are for pipelines ({m.key})")
        if m.pipeline is not None and data.plan is not None:
            raise EdgewiseError("a sweep plans single graphs: drop 'plan', or sweep a phase's "
                                f"zoo model instead of {m.key} (e.g. sd15-unet)")  # fmt: skip
    unknown = sorted(set(data.spec) - set(SWEEP_FIELDS))
    if unknown:
        raise EdgewiseError(f"spec: cannot sweep '{unknown[0]}' (sweepable: "
                            f"{', '.join(SWEEP_FIELDS)})")  # fmt: skip
    axes = {name: _axis(name, axis) for name, axis in data.spec.items()}
    s = data.sampling
    if s.method == "grid":
        if s.points is not None:
            raise EdgewiseError("sampling: a grid has as many points as its levels make; "
                                "'points' is for random and lhs")  # fmt: skip
        total = int(np.prod([len(a.levels) for a in axes.values()], dtype=object))
        if total * len(models) * len(data.precision) > MAX_POINTS:
            raise EdgewiseError(f"the grid has {total:,} points per model and precision; at "
                                f"most {MAX_POINTS:,} in all")  # fmt: skip
        columns = _grid(axes)
    else:
        if s.points is None:
            raise EdgewiseError(f"sampling: {s.method} needs 'points: N'")
        rng = np.random.default_rng(s.seed)
        columns = {n: a.sample(rng, s.points, s.method == "lhs") for n, a in axes.items()}
    return Space(models, data.hardware, tuple(data.set), tuple(data.precision), columns,
                 data.plan, data.area, text_hash)  # fmt: skip


@dataclass(frozen=True)
class _Axis:
    name: str
    low: float
    high: float
    log: bool
    levels: np.ndarray  # the grid's levels (a values axis: its values)
    values: bool  # a list of values rather than a range

    def sample(self, rng: np.random.Generator, n: int, lhs: bool) -> np.ndarray:
        u = (rng.permutation(n) + rng.random(n)) / n if lhs else rng.random(n)
        if self.values:
            out = self.levels[np.minimum((u * len(self.levels)).astype(np.int64),
                                         len(self.levels) - 1)]  # fmt: skip
        elif self.log:
            out = np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low)))
        else:
            out = self.low + u * (self.high - self.low)
        return _rounded(self.name, out)


def _axis(name: str, axis: Any) -> _Axis:
    if isinstance(axis, Values):
        vals = np.array([parse_field_value(name, v) for v in axis.values], dtype=np.float64)
        vals = _rounded(name, vals)
        return _Axis(name, float(vals.min()), float(vals.max()), False, vals, True)
    shape = "[LOW, HIGH, N] or [LOW, HIGH, log, N]"
    if len(axis) == 4 and axis[2] != "log":
        raise EdgewiseError(f"spec.{name}: expected {shape} (got {json.dumps(axis)})")
    count = axis[-1]
    if isinstance(count, str) or count != int(count) or not 1 <= count <= 1_000_000:
        raise EdgewiseError(f"spec.{name}: N, the number of levels, must be a whole number "
                            f"from 1 to 1,000,000 (got {count!r}); {shape}")  # fmt: skip
    low, high = parse_field_value(name, axis[0]), parse_field_value(name, axis[1])
    log = len(axis) == 4
    if not (np.isfinite(low) and np.isfinite(high)) or low > high:
        raise EdgewiseError(f"spec.{name}: LOW must not exceed HIGH (got {axis[0]} > {axis[1]})")
    if log and low <= 0:
        raise EdgewiseError(f"spec.{name}: a log axis needs LOW > 0 (got {axis[0]})")
    n = int(count)
    levels = np.geomspace(low, high, n) if log else np.linspace(low, high, n)
    return _Axis(name, low, high, log, _rounded(name, levels), False)


def _rounded(name: str, values: np.ndarray) -> np.ndarray:
    return np.floor(values + 0.5) if name in INTEGER_FIELDS else values


def _grid(axes: dict[str, _Axis]) -> dict[str, np.ndarray]:
    names = list(axes)
    combos = itertools.product(*(range(len(axes[n].levels)) for n in names))
    index = np.array(list(combos), dtype=np.int64).reshape(-1, len(names))
    return {n: axes[n].levels[index[:, k]] for k, n in enumerate(names)}


def point_ids(model_key: str, precision: str, columns: dict[str, np.ndarray]) -> np.ndarray:
    """A 63-bit id per point from what defines it (the model, the precision, every swept
    field's value): the same point in a rerun has the same id, so the store skips it."""
    salt = int.from_bytes(hashlib.sha256(f"{model_key}\0{precision}".encode()).digest()[:8],
                          "little")  # fmt: skip
    h = np.full(len(next(iter(columns.values()))), salt, dtype=np.uint64)
    for name in sorted(columns):
        tag = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
        bits = np.ascontiguousarray(columns[name], dtype=np.float64).view(np.uint64)
        h = _mix(h ^ _mix(bits ^ np.uint64(tag)))
    return (h >> np.uint64(1)).astype(np.int64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every input bit moves every output bit."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))
