"""The accelerator a model is simulated on: one validated, frozen record per chip.

A spec enters at one boundary (`load_spec`: a shipped preset or the user's YAML/JSON file,
plus `--set PATH=VALUE` overrides), is validated once with every problem reported in one
message, and travels typed after that. Units live in the field names (`_hz`, `_bytes`,
`_bytes_per_s`, `_pj_per_...`, `_w`); files and overrides may write sizes, rates and clocks
with units ("4 MiB", "68 GB/s", "2 GHz"), which are converted here and nowhere else. Every
figure carries its provenance in `sources`: a citation, a derivation from cited figures,
or "assumption: <why>"; an override replaces the figure and says so in its source.

    spec = load_spec("tesla-fsd-nna", ["sram_bytes=16MiB"])
    w, a = parse_precision("w4a8", spec)            # ('int4', 'int8')
    spec.peak_macs_per_s(compute_precision(w, a))   # 1.84e13 MAC/s = 36.9 TOPS
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import reprlib
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

from edgewise.errors import EdgewiseError
from edgewise.ir.files import parse_json, parse_yaml, read_text, shown
from edgewise.ir.vocab import BITS as VOCAB_BITS

Precision = Literal["fp32", "fp16", "bf16", "int16", "int8", "int4", "int2"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
BITS: dict[Precision, int] = VOCAB_BITS  # type: ignore[assignment]

PRESETS: tuple[str, ...] = (
    "generic-npu",  # the default
    "edge-tpu",
    "hailo-8",
    "tesla-fsd-nna",
    "ethos-u65-512",
    "ethos-n77",
    "jetson-orin-nano",
    "rk3588-npu",
    "snapdragon-8gen3",
    "snapdragon-8elite",
)
DEFAULT_PRESET = "generic-npu"
MAX_FILE_BYTES = 1_000_000  # a spec is a page of YAML; anything bigger is a mistake or hostile

# Figures a spec may leave out (their defaults change nothing); given, they need a source.
OPTIONAL_FIGURES = frozenset(
    (
        "op_overhead_s",
        "mac_efficiency",
        "depthwise_efficiency",
        "activation_matmul_efficiency",
        "weight_compression",
    )
)
# Bounds are typo guards at physical limits, not claims about any chip.
MacsPerCycle = Annotated[int, Field(ge=1, le=10_000_000)]
PjPerMac = Annotated[float, Field(gt=0, le=1000)]


class MacArray(BaseModel):
    """The physical MAC array. An op's reduction dimension (K) maps onto the rows and its
    output dimension (N) onto the columns, so a K x N product smaller than the array, or
    not a multiple of it, leaves MACs idle: the simulator's mapping utilization."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int = Field(ge=1, le=65536, description="MACs along the reduction dimension (K)")
    cols: int = Field(ge=1, le=65536, description="MACs along the output dimension (N)")


UNSTATED = "assumption: unstated (no source given)"


class HardwareSpec(BaseModel):
    """One accelerator: compute, on-chip SRAM, external DRAM, energy, and where each
    figure comes from. Peak MAC/s at a precision = macs_per_cycle[p] x clock_hz; vendors'
    TOPS count 2 ops per MAC, so TOPS = 2 x peak MAC/s / 1e12."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=200, description="preset or chip name")
    description: str = Field(
        "", max_length=4000, description="what the chip is, in one or two sentences"
    )
    clock_hz: float = Field(gt=0, le=10e9, description="clock of the MAC array")
    mac_array: MacArray = Field(description="physical array shape, for mapping utilization")
    macs_per_cycle: dict[Precision, MacsPerCycle] = Field(
        min_length=1,
        description="MACs per cycle at each supported precision (absent = unsupported)",
    )
    vector_ops_per_cycle: float = Field(
        gt=0, le=10_000_000, description="vector unit: non-MAC ops per cycle"
    )
    sram_bytes: int = Field(
        gt=0, le=2**40, description="on-chip SRAM for activations (and weights if resident)"
    )
    sram_bandwidth_bytes_per_s: float = Field(gt=0, le=1e16, description="SRAM read + write")
    sram_energy_pj_per_byte: float = Field(gt=0, le=1000, description="per byte moved")
    dram_bytes: int = Field(ge=0, le=2**44, description="external DRAM capacity, 0 = none")
    dram_bandwidth_bytes_per_s: float = Field(
        ge=0, le=1e14, description="external DRAM bandwidth (0 only when dram_bytes is 0)"
    )
    dram_energy_pj_per_byte: float = Field(ge=0, le=10_000, description="per byte moved")
    energy_pj_per_mac: dict[Precision, PjPerMac] = Field(
        description="energy of one MAC at each precision (covers macs_per_cycle)"
    )
    vector_energy_pj_per_op: float = Field(gt=0, le=1000, description="per vector op")
    static_power_w: float = Field(
        ge=0, le=10_000, description="drawn while running, whatever it computes (leakage, clocks)"
    )
    overlap_compute_dma: bool = Field(
        True, description="compute and DMA run concurrently (latency = max) or not (sum)"
    )
    weights_resident: bool = Field(
        False, description="weights stay in SRAM when all of them fit beside the activations"
    )
    # What the vendor's compiler and runtime do (docs/validation.md has the evidence for
    # each); all optional, and a figure given needs a source like any other.
    weights_cached: bool = Field(
        False,
        description="with weights_resident: SRAM keeps as many weights as fit beside the "
        "largest op's working set (a parameter cache), the rest stream at every use",
    )
    weights_preloaded: bool = Field(
        False,
        description="resident weights are loaded with the model, not at every inference "
        "(steady-state figures, as Coral and Hailo publish them)",
    )
    pipelined: bool = Field(
        False,
        description="a dataflow chip: every layer has its own share of the array and frames "
        "stream through, so a frame costs its busiest resource over the whole model "
        "(throughput), not the sum of its ops' latencies",
    )
    fuse_epilogues: bool = Field(
        False,
        description="elementwise and normalization ops that consume a conv/matmul result run "
        "in its epilogue: no memory round trip, no dispatch of their own",
    )
    op_overhead_s: float = Field(
        0.0, ge=0, le=1, description="fixed time per dispatched op (per fused group)"
    )
    mac_efficiency: float = Field(
        1.0, gt=0, le=1, description="sustained fraction of peak MAC/s on a fully mapped product"
    )
    depthwise_efficiency: float | None = Field(
        None,
        gt=0,
        le=1,
        description="fraction of peak MAC/s a depthwise conv reaches (absent: mapped as any "
        "conv, K = kernel area, N = 1)",
    )
    activation_matmul_efficiency: float | None = Field(
        None,
        gt=0,
        le=1,
        description="fraction of peak MAC/s a product of two activations reaches (attention's "
        "QK^T and AV: no weights to hold stationary; absent: mapped as any product)",
    )
    weight_compression: float = Field(
        1.0, gt=0, le=1, description="stored bytes per weight byte (4-bit packing, compression)"
    )
    sources: dict[str, Annotated[str, Field(max_length=4000)]] = Field(
        default_factory=dict,
        description="field name -> citation, derivation, or 'assumption: <why>'; a figure "
        f"given without one is recorded as '{UNSTATED}' and flagged by `hw show`",
    )

    @model_validator(mode="before")
    @classmethod
    def _unstated_sources(cls, data: Any) -> Any:
        """A figure written without a source is kept, marked as an unstated assumption:
        a hand-written spec needs no citation to run, and every report shows which
        figures have none."""
        if not isinstance(data, dict):
            return data
        sources = data.get("sources")
        if sources is None:
            sources = {}
        if not isinstance(sources, dict):
            return data
        fields = cls.model_fields
        sourceable = [n for n in fields if n not in ("name", "description", "sources")]
        given = [n for n in sourceable if n not in OPTIONAL_FIGURES
                 or (n in data and data[n] != fields[n].default)]  # fmt: skip
        numeric = [n for n in given if fields[n].annotation is not bool]
        filled = {n: UNSTATED for n in numeric if not str(sources.get(n) or "").strip()}
        return {**data, "sources": {**{k: v for k, v in sources.items() if v is not None},
                                    **filled}}  # fmt: skip

    @field_validator("sources")
    @classmethod
    def _every_figure_sourced(cls, sources: dict[str, str]) -> dict[str, str]:
        """Every source names a field (missing ones were marked unstated above)."""
        fields = cls.model_fields
        sourceable = [n for n in fields if n not in ("name", "description", "sources")]
        problems = []
        unknown = [k for k in sources if k not in sourceable]
        if unknown:
            problems.append(
                f"{', '.join(map(repr, unknown))} not a field (allowed: {', '.join(sourceable)})"
            )
        numeric = [
            n for n in sourceable if fields[n].annotation is not bool and n not in OPTIONAL_FIGURES
        ]
        missing = [n for n in numeric if not str(sources.get(n, "")).strip()]
        if missing:
            problems.append(
                f"no source for {', '.join(missing)} "
                "(give a citation, a derivation, or 'assumption: <why>')"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return sources

    @model_validator(mode="after")
    def _consistent(self) -> HardwareSpec:
        fields = type(self).model_fields
        problems = [
            f"no source for {name} (set, so it needs a citation, a derivation, or "
            "'assumption: <why>')"
            for name in OPTIONAL_FIGURES
            if getattr(self, name) != fields[name].default
            and not self.sources.get(name, "").strip()
        ]
        problems += [
            f"energy_pj_per_mac.{p}: missing (every precision in macs_per_cycle needs an energy)"
            for p in self.macs_per_cycle
            if p not in self.energy_pj_per_mac
        ]
        if self.dram_bytes > 0:
            problems += [
                f"{name}: must be > 0 when dram_bytes > 0 (got 0; set dram_bytes=0 for no DRAM)"
                for name in ("dram_bandwidth_bytes_per_s", "dram_energy_pj_per_byte")
                if getattr(self, name) == 0
            ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def peak_vector_ops_per_s(self) -> float:
        return self.vector_ops_per_cycle * self.clock_hz

    def peak_macs_per_s(self, precision: Precision) -> float:
        """Peak MAC rate at `precision`; an unsupported precision is a user mistake."""
        if precision not in self.macs_per_cycle:
            raise EdgewiseError(
                f"'{self.name}' has no {precision} MACs "
                f"(it supports: {', '.join(self.macs_per_cycle)})"
            )
        return self.macs_per_cycle[precision] * self.clock_hz


def hardware_json_schema() -> dict[str, Any]:
    """The published schema of spec files (`edgewise hw schema`)."""
    return HardwareSpec.model_json_schema()


# --- loading ------------------------------------------------------------------------------


def load_spec(name_or_path: str, overrides: Sequence[str] = ()) -> HardwareSpec:
    """A preset name or a YAML/JSON file, with `PATH=VALUE` overrides applied before the
    one validation, so an override is checked exactly like a figure in the file."""
    raw, label = _read(name_or_path)
    for text in overrides:
        _apply_override(raw, text)
    return spec_from_dict(raw, label)


def spec_from_dict(raw: Mapping[str, Any], label: str = "<dict>") -> HardwareSpec:
    """Validate a parsed spec; every problem is listed, with its path, in one error line."""
    data, unit_problems = _convert_units(raw)
    problems = [f"{path}: {text}" for path, text in unit_problems]
    try:
        spec = HardwareSpec.model_validate(data)
    except ValidationError as e:
        reported = {path for path, _ in unit_problems}
        problems += [p for p in _describe(e) if p.split(":", 1)[0] not in reported]
        raise EdgewiseError(f"invalid hardware spec '{label}': " + "; ".join(problems)) from e
    if problems:
        raise EdgewiseError(f"invalid hardware spec '{label}': " + "; ".join(problems))
    return spec


@cache
def _preset_text(name: str) -> str:
    return resources.files("edgewise.hardware").joinpath("presets", f"{name}.yaml").read_text()


HOST = "host"  # the user spec `edgewise calibrate` writes for the machine it ran on
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def user_spec_dir() -> Path:
    """Where user specs live: $XDG_CONFIG_HOME/edgewise/hardware (~/.config when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "edgewise" / "hardware"


def user_specs() -> tuple[str, ...]:
    """Names of the user specs (`<name>.yaml` in `user_spec_dir()`), sorted."""
    folder = user_spec_dir()
    if not folder.is_dir():
        return ()
    return tuple(sorted(p.stem for p in folder.glob("*.yaml") if _USER_NAME.fullmatch(p.stem)))


def _unknown_name(name: str) -> EdgewiseError:
    users = user_specs()
    known = f"presets: {', '.join(PRESETS)}; user specs in {user_spec_dir()}: " + (
        ", ".join(users) if users else "none"
    )
    if name == HOST:
        return EdgewiseError(
            f"no calibration of this machine: run `edgewise calibrate` to measure it and "
            f"write {user_spec_dir() / (HOST + '.yaml')} ({known})"
        )
    close = difflib.get_close_matches(name, (*PRESETS, *users), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return EdgewiseError(
        f"unknown hardware preset '{name}' ({hint}{known}; "
        "or give a YAML/JSON spec file, see `edgewise hw schema`)"
    )


def _read(name_or_path: str) -> tuple[dict[str, Any], str]:
    """The raw mapping and the label errors name it by: a preset, a file, or a user spec
    (a plain name found as `<name>.yaml` in `user_spec_dir()`)."""
    if name_or_path in PRESETS:
        return _parse(_preset_text(name_or_path), name_or_path, json_syntax=False), name_or_path
    path = Path(name_or_path)
    if not path.is_file():
        looks_like_file = path.suffix.lower() in (".yaml", ".yml", ".json") or "/" in name_or_path
        if looks_like_file or path.exists():
            raise EdgewiseError(
                f"hardware spec file '{name_or_path}' not found or not a file "
                f"(give a YAML/JSON file, or a preset: {', '.join(PRESETS)})"
            )
        user = user_spec_dir() / f"{name_or_path}.yaml"
        if not (_USER_NAME.fullmatch(name_or_path) and user.is_file()):
            raise _unknown_name(name_or_path)
        path = user
    text = read_text(path, "hardware spec file", MAX_FILE_BYTES)
    return _parse(text, name_or_path, json_syntax=path.suffix.lower() == ".json"), name_or_path


def _parse(text: str, label: str, json_syntax: bool) -> dict[str, Any]:
    """Untrusted text: strict JSON, or YAML through `safe_load` only (no object
    construction), both bounded in nesting and number size."""
    data = parse_json(text, f"'{label}'") if json_syntax else parse_yaml(text, f"'{label}'")
    if not isinstance(data, dict):
        raise EdgewiseError(
            f"'{label}' must be a mapping of spec fields such as 'clock_hz: 1 GHz' "
            f"(got {type(data).__name__}; see `edgewise hw schema`)"
        )
    return data


def _apply_override(raw: dict[str, Any], text: str) -> None:
    """`a.b=value`: set (or, with `null`, remove) one entry; its source says it was set."""
    path_text, sep, value_text = text.partition("=")
    label = f"--set {shown(text)}"
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise EdgewiseError(f"{label}: control characters (a newline?) in PATH=VALUE")
    keys = path_text.strip().split(".")
    if not sep or not all(k.strip() for k in keys):
        raise EdgewiseError(
            f"{label}: expected PATH=VALUE, e.g. sram_bytes=2MiB, mac_array.rows=64 "
            "or macs_per_cycle.int4=4096"
        )
    keys = [k.strip() for k in keys]
    try:
        value = parse_yaml(value_text, label) if value_text.strip() else None
    except EdgewiseError as e:
        raise EdgewiseError(f"{e} (one YAML value: 2MiB, 64, or {{int8: 64}})") from None
    node = raw
    for depth, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            where = ".".join(keys[: depth + 1])
            raise EdgewiseError(f"{label}: '{where}' is one value, not a group of fields")
        node = child
    if value is None:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value
    sources = raw.get("sources")
    unsourced = ("name", "description", "sources")
    if (
        keys[0] in HardwareSpec.model_fields
        and keys[0] not in unsourced
        and isinstance(sources, dict)
    ):
        before = sources.get(keys[0])
        note = f"override: {'.'.join(keys)}={value_text.strip() or 'null'}"
        sources[keys[0]] = f"{note}; before: {before}" if before else note


# --- units ----------------------------------------------------------------------------------

_BYTE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}  # fmt: skip
_UNITS: dict[str, dict[str, float]] = {
    "_bytes_per_s": {f"{u}/s": f for u, f in _BYTE_UNITS.items()},
    "_bytes": dict(_BYTE_UNITS),
    "_hz": {"Hz": 1, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9},
    "_w": {"W": 1, "mW": 1e-3},
}
_QUANTITY = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z/]*)\s*")


@cache
def _flags() -> tuple[str, ...]:
    """The fields that take true/false; anywhere else a bool is a mistake, not 1 or 0."""
    return tuple(n for n, f in HardwareSpec.model_fields.items() if f.annotation is bool)


def _units_for(field: str) -> dict[str, float]:
    return next((units for suffix, units in _UNITS.items() if field.endswith(suffix)), {})


def _quantity(text: str, units: Mapping[str, float]) -> tuple[Any, str | None]:
    """'4 MiB' -> 4194304; '1e9' -> 1e9 (YAML 1.1 reads that as text); else unchanged."""
    match = _QUANTITY.fullmatch(text)
    if not match:
        return text, None
    number, unit = float(match[1]), match[2]
    if unit and unit not in units:
        allowed = ", ".join(units) if units else "none: a plain number"
        return text, f"unknown unit '{unit}' in {shown(text)} (allowed units: {allowed})"
    value = number * units.get(unit, 1)
    return (int(value) if value.is_integer() and abs(value) < 2**63 else value), None


def parse_field_value(field: str, value: object) -> float:
    """One spec field's value as written: a number, or text with a unit that fits the field
    ('256KiB' for sram_bytes, '8GB/s' for a bandwidth, '1.2GHz' for clock_hz)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise EdgewiseError(f"{field}: {shown(str(value))} is not a number or a quantity")
    number, problem = _quantity(str(value), _units_for(field.split(".")[-1]))
    if problem or not isinstance(number, int | float):
        raise EdgewiseError(f"{field}: {problem or shown(str(value)) + ' is not a number'}")
    return float(number)


def parse_bytes(text: str, lowest: int = 1, highest: int = 2**40) -> int:
    """'256KiB', '2 MB' or '262144' as whole bytes inside [lowest, highest]."""
    value, problem = _quantity(str(text), _BYTE_UNITS)
    if problem or not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(problem or f"{shown(text)} is not a size (e.g. 256KiB, 2MB, 262144)")
    if not (lowest <= value <= highest) or value != int(value):
        raise ValueError(f"{shown(text)} must be whole bytes from {_num(lowest, '_bytes')} to "
                         f"{_num(highest, '_bytes')}")  # fmt: skip
    return int(value)


def _convert_units(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Numbers written as text become numbers; a unit that does not fit the field is a
    problem reported with the rest. Walks only the spec's known two levels."""
    data = copy.copy(dict(raw))
    problems: list[tuple[str, str]] = []
    for field, value in data.items():
        if field in ("name", "description", "sources") or field not in HardwareSpec.model_fields:
            continue  # an unknown field is reported as one (not by its value's units)
        if isinstance(value, bool) and field not in _flags():
            problems.append((field, f"must be a number, not {str(value).lower()}"))
        elif isinstance(value, str):
            data[field], problem = _quantity(value, _units_for(field))
            if problem:
                problems.append((field, problem))
        elif isinstance(value, dict):
            converted = {}
            for key, item in value.items():
                converted[key] = item
                if isinstance(item, bool):
                    problems.append(
                        (f"{field}.{key}", f"must be a number, not {str(item).lower()}")
                    )
                elif isinstance(item, str):
                    converted[key], problem = _quantity(item, {})
                    if problem:
                        problems.append((f"{field}.{key}", problem))
            data[field] = converted
    return data, problems


# --- error messages -------------------------------------------------------------------------

_SHORT = reprlib.Repr()
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict = 40, 40, 1, 4, 4
_KINDS = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}


def _num(bound: object, field: str = "") -> str:
    """A bound for people: 2**40 on a `_bytes` field reads '1 TiB', 1e10 Hz '10 GHz'."""
    x = float(bound)  # type: ignore[arg-type]
    scales = (
        ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))
        if field.endswith("_bytes")
        else ((1e9, "GHz"), (1e6, "MHz"))
        if field.endswith("_hz")
        else ()
    )
    for factor, unit in scales:
        if abs(x) >= factor:
            return f"{x / factor:.4g} {unit}"
    if x.is_integer() and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.3g}"


def _constraint(loc: tuple[str, ...]) -> tuple[str, str]:
    """What a location takes, for people: ('a number', '> 0 and ≤ 1e+10')."""
    info = HardwareSpec.model_fields.get(loc[0]) if loc else None
    if info is None:
        return "", ""
    annotation, metadata = info.annotation, list(info.metadata)
    if loc[0] == "mac_array":
        sub = MacArray.model_fields.get(loc[1]) if len(loc) > 1 else None
        if sub is None:
            return "a mapping with rows and cols", ""
        annotation, metadata = sub.annotation, list(sub.metadata)
    elif get_origin(annotation) is dict:
        if len(loc) == 1:
            return "a mapping of precision to value", ""
        value_type = get_args(annotation)[1]
        args = get_args(value_type)
        annotation = args[0] if args else value_type
        metadata = [m for a in args[1:] if isinstance(a, FieldInfo) for m in a.metadata]
    field = loc[-1] if loc[0] == "mac_array" else loc[0]
    lower = next((f"> {_num(m.gt, field)}" for m in metadata if isinstance(m, Gt)), None)
    lower = lower or next((f"≥ {_num(m.ge, field)}" for m in metadata if isinstance(m, Ge)), None)
    upper = next((f"≤ {_num(m.le, field)}" for m in metadata if isinstance(m, Le)), None)
    upper = upper or next((f"< {_num(m.lt, field)}" for m in metadata if isinstance(m, Lt)), None)
    bounds = " and ".join(b for b in (lower, upper) if b)
    kind = _KINDS.get(annotation, "a value") if isinstance(annotation, type) else "a value"
    return kind, bounds


def _describe(error: ValidationError) -> list[str]:
    """Pydantic's errors as `path: problem (allowed: ...)`, one per problem."""
    out = []
    for e in error.errors():
        loc = tuple(str(p) for p in e["loc"])
        kind = e["type"]
        if loc and loc[-1] == "[key]":  # a dict key, i.e. a precision name
            out.append(
                f"{'.'.join(loc[:-1])}: unknown precision (allowed: {', '.join(PRECISIONS)})"
            )
            continue
        path = ".".join(loc)
        what, bounds = _constraint(loc)
        allowed = f"{what} {bounds}".strip()
        got = _SHORT.repr(e.get("input"))
        if kind == "value_error" and not loc:  # cross-field checks carry their own paths
            out.append(str(e.get("ctx", {}).get("error", e["msg"])))
        elif kind == "value_error":
            out.append(f"{path}: {e.get('ctx', {}).get('error', e['msg'])}")
        elif kind == "missing":
            out.append(f"{path}: missing (required: {allowed})")
        elif kind == "extra_forbidden":
            model = MacArray if loc[0] == "mac_array" and len(loc) > 1 else HardwareSpec
            close = difflib.get_close_matches(str(loc[-1]), model.model_fields, n=1)
            prefix = path.rpartition(".")[0]
            hint = f" (did you mean '{prefix + '.' if prefix else ''}{close[0]}'?)" if close else ""
            out.append(f"{path}: unknown field{hint} (allowed: {', '.join(model.model_fields)})")
        elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            out.append(f"{path}: must be {bounds} (got {got})")
        elif kind == "string_too_long":
            limit = e.get("ctx", {}).get("max_length")
            out.append(f"{path}: at most {limit} characters (got {len(str(e.get('input')))})")
        elif kind == "too_short":
            out.append(f"{path}: must not be empty (allowed: {allowed})")
        else:  # wrong type: parsing, int_from_float, bool_parsing, dict_type, ...
            out.append(f"{path}: must be {allowed} (got {got})")
    return out


# --- precision ------------------------------------------------------------------------------

_PLAIN: dict[str, tuple[Precision, Precision]] = {p: (p, p) for p in PRECISIONS}
_WXAY = re.compile(r"w(2|4|8|16)a(2|4|8|16|fp16|bf16|fp32)")
_BY_BITS: dict[str, Precision] = {
    "2": "int2", "4": "int4", "8": "int8", "16": "int16", "fp16": "fp16", "bf16": "bf16",
    "fp32": "fp32",
}  # fmt: skip
_SUGGESTED = (*PRECISIONS, "w8a8", "w8a16", "w4a8", "w4a16", "w2a8", "w8afp16", "w4afp16")
ACCEPTED_PRECISIONS = (
    "fp32, fp16, bf16, int16, int8 (= w8a8), int4, int2, or wXaY: intX weights and intY "
    "activations with X, Y in 2, 4, 8, 16, e.g. w8a8, w4a8, w8a16 (Qualcomm's: int16 "
    "activations); or wXafp16 / wXabf16 for float activations, e.g. w4afp16"
)


def compute_precision(weights: Precision, activations: Precision) -> Precision:
    """What the MAC array must run: the wider operand, since the narrower one is widened
    before it is multiplied (w4afp16 dequantizes int4 weights to fp16, w8a16 widens int8
    weights to int16). Equal widths (fp16 against bf16) compute in the activations' format."""
    return weights if BITS[weights] > BITS[activations] else activations


def _split(text: str) -> tuple[Precision, Precision] | None:
    key = text.strip().lower()
    if key in _PLAIN:
        return _PLAIN[key]
    match = _WXAY.fullmatch(key)
    return (_BY_BITS[match[1]], _BY_BITS[match[2]]) if match else None


def parse_precision(text: str, spec: HardwareSpec) -> tuple[Precision, Precision]:
    """(weights, activations) for a precision the user typed, refused unless `spec` has
    MACs for its compute precision."""
    split = _split(text)
    if split is None:
        raise EdgewiseError(f"unknown precision '{text}' (accepted: {ACCEPTED_PRECISIONS})")
    weights, activations = split
    compute = compute_precision(weights, activations)
    if compute not in spec.macs_per_cycle:
        why = (
            ""
            if weights == activations
            else f" (the wider of {weights} weights and {activations} activations)"
        )
        runnable = [
            form
            for form in _SUGGESTED
            if (pair := _split(form)) and compute_precision(*pair) in spec.macs_per_cycle
        ]
        raise EdgewiseError(
            f"precision '{text}' computes in {compute}{why}, but '{spec.name}' has no "
            f"{compute} MACs (it has: {', '.join(spec.macs_per_cycle)}); "
            f"precisions it runs: {', '.join(runnable)}"
        )
    return weights, activations


def default_precision(spec: HardwareSpec) -> str:
    """int8 where the spec has it (the edge default), else its narrowest float."""
    for choice in ("int8", "fp16", "bf16", "fp32"):
        if choice in spec.macs_per_cycle:
            return choice
    return next(iter(spec.macs_per_cycle))
