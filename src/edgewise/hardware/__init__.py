"""Accelerator specs: the validated description edgewise simulates on.

    from edgewise.hardware import load_spec, parse_precision
    spec = load_spec("generic-npu", ["sram_bytes=2MiB"])

Presets ship as YAML in `presets/`, one file per chip, with a source for every figure
(see docs/hardware.md).
"""

from edgewise.hardware.spec import (
    DEFAULT_PRESET,
    PRECISIONS,
    PRESETS,
    HardwareSpec,
    MacArray,
    Precision,
    compute_precision,
    hardware_json_schema,
    load_spec,
    parse_precision,
    spec_from_dict,
)

__all__ = [
    "DEFAULT_PRESET",
    "PRECISIONS",
    "PRESETS",
    "HardwareSpec",
    "MacArray",
    "Precision",
    "compute_precision",
    "hardware_json_schema",
    "load_spec",
    "parse_precision",
    "spec_from_dict",
]
