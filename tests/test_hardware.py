"""Hardware specs: presets against their published figures, validation, overrides, precision.

Published figures are quoted as vendors count them: TOPS = 2 ops per MAC x peak MAC/s.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from edgewise.cli.hw import hw_app
from edgewise.errors import EdgewiseError
from edgewise.hardware import (
    DEFAULT_PRESET,
    PRESETS,
    HardwareSpec,
    compute_precision,
    hardware_json_schema,
    load_spec,
    parse_precision,
)
from edgewise.hardware.spec import OPTIONAL_FIGURES

runner = CliRunner()
MiB = 2**20
NUMERIC = [
    name
    for name, field in HardwareSpec.model_fields.items()
    if field.annotation not in (str, bool) and name != "sources" and name not in OPTIONAL_FIGURES
]


def _tops(spec: HardwareSpec, precision: str) -> float:
    return 2 * spec.peak_macs_per_s(precision) / 1e12  # type: ignore[arg-type]


def _error(name: str, overrides: list[str]) -> str:
    with pytest.raises(EdgewiseError) as info:
        load_spec(name, overrides)
    message = str(info.value)
    assert "\n" not in message  # the CLI prints it as one line
    return message


def _preset_raw(name: str) -> dict[str, Any]:
    """The preset file as written (units as text), not the validated spec."""
    return yaml.safe_load(
        resources.files("edgewise.hardware").joinpath("presets", f"{name}.yaml").read_text()
    )


# --- presets ------------------------------------------------------------------------------


def test_presets_are_exactly_the_shipped_files_and_all_load() -> None:
    shipped = resources.files("edgewise.hardware").joinpath("presets")
    files = {Path(str(p)).stem for p in shipped.iterdir() if str(p).endswith(".yaml")}
    assert files == set(PRESETS)
    assert DEFAULT_PRESET == PRESETS[0] == "generic-npu"
    for name in PRESETS:
        spec = load_spec(name)
        assert spec.name == name and spec.description


@pytest.mark.parametrize("name", PRESETS)
def test_every_numeric_figure_has_a_source_in_the_file(name: str) -> None:
    raw = _preset_raw(name)
    for field in NUMERIC:
        assert field in raw, f"{name}: {field} absent"
        assert raw["sources"].get(field, "").strip(), f"{name}: no source for {field}"
    assert set(raw["sources"]) <= set(HardwareSpec.model_fields)


# (preset, precision, published TOPS, tolerance, where the figure comes from)
PUBLISHED_TOPS = [
    ("tesla-fsd-nna", "int8", 36.8, 0.005, "96x96 at 2 GHz, Talpes et al. 2020"),
    ("edge-tpu", "int8", 4.0, 1e-9, "coral.ai: 4 TOPS"),
    ("hailo-8", "int8", 26.0, 1e-9, "Hailo: 26 TOPS"),
    ("ethos-n77", "int8", 4.096, 1e-9, "WikiChip: 2048 MACs, 4.096 TOPS"),
    ("ethos-u65-512", "int8", 1.024, 1e-9, "512 MACs/cycle at Vela's 1 GHz"),
    # one significant digit published: 6.144 is Rockchip's "6 TOPS"
    ("rk3588-npu", "int8", 6.0, 0.025, "TRM 1024x3 MACs at 1 GHz; '6 TOPS'"),
    # NVIDIA's 40 TOPS is sparse (2x dense): 2 x 20.48 = 40.96, published rounded down
    ("jetson-orin-nano", "int8", 40.0 / 2, 0.025, "datasheet: 40 sparse = 20 dense"),
]


@pytest.mark.parametrize(("name", "precision", "tops", "rel", "why"), PUBLISHED_TOPS)
def test_peak_matches_published_tops(
    name: str, precision: str, tops: float, rel: float, why: str
) -> None:
    assert _tops(load_spec(name), precision) == pytest.approx(tops, rel=rel), why


def test_published_array_memory_and_bandwidth_figures() -> None:
    tesla = load_spec("tesla-fsd-nna")
    assert (tesla.mac_array.rows, tesla.mac_array.cols, tesla.clock_hz) == (96, 96, 2e9)
    assert tesla.macs_per_cycle["int8"] == 96 * 96
    assert tesla.sram_bytes == 32 * MiB
    assert tesla.dram_bandwidth_bytes_per_s == 68e9
    assert tesla.sram_bandwidth_bytes_per_s == (256 + 128) * 2e9  # bytes read per cycle

    u65 = load_spec("ethos-u65-512")  # Vela's Ethos_U65_High_End + Dedicated_Sram
    assert u65.macs_per_cycle == {"int8": 512}
    assert (u65.clock_hz, u65.sram_bytes) == (1e9, 393216)
    assert (u65.sram_bandwidth_bytes_per_s, u65.dram_bandwidth_bytes_per_s) == (16e9, 3.75e9)

    assert load_spec("ethos-n77").macs_per_cycle == {"int8": 2048}
    assert load_spec("ethos-n77").sram_bytes == 4 * MiB

    orin = load_spec("jetson-orin-nano")
    assert orin.dram_bandwidth_bytes_per_s == 68e9 and orin.clock_hz == 625e6
    assert orin.macs_per_cycle["int4"] == 2 * orin.macs_per_cycle["int8"]
    assert orin.macs_per_cycle["fp16"] == orin.macs_per_cycle["int8"] // 2

    rk = load_spec("rk3588-npu")  # TRM section 36.1
    assert rk.macs_per_cycle == {"fp16": 1536, "bf16": 1536, "int8": 3072, "int4": 6144}
    assert rk.sram_bytes == 3 * 384 * 1024

    hailo = load_spec("hailo-8")  # no DRAM: its "DRAM" is the host behind PCIe Gen3 x4
    assert hailo.dram_bandwidth_bytes_per_s == 3.545e9
    assert hailo.dram_bandwidth_bytes_per_s < 8e9 * 4 * 128 / 130 / 8  # the link's raw rate
    assert load_spec("edge-tpu").sram_bytes == 8 * MiB


HOROWITZ_MAC_PJ = {
    "fp32": 4.6,
    "fp16": 1.5,
    "bf16": 1.5,
    "int16": 0.9,
    "int8": 0.3,
    "int4": 0.1,
    "int2": 0.0425,
}  # int16: 0.2 x (16/8)^2 mult + 0.1 add


@pytest.mark.parametrize("name", PRESETS)
def test_energies_are_horowitz_45nm_scaled_by_one_node_factor(name: str) -> None:
    spec = load_spec(name)
    factor = spec.energy_pj_per_mac["int8"] / HOROWITZ_MAC_PJ["int8"]
    assert 0.1 <= factor <= 1.0
    for precision, pj in spec.energy_pj_per_mac.items():
        assert pj == pytest.approx(HOROWITZ_MAC_PJ[precision] * factor)
    assert spec.sram_energy_pj_per_byte == pytest.approx(20 / 8 * factor)  # 64-bit, 32 KiB
    assert spec.vector_energy_pj_per_op == pytest.approx((0.4 + 1.1) / 2 * factor)
    if spec.dram_bytes:  # figures.md: DRAM stays 100x to 1000x an SRAM byte
        assert 100 <= spec.dram_energy_pj_per_byte / spec.sram_energy_pj_per_byte <= 1000


# --- overrides ----------------------------------------------------------------------------


def test_overrides_set_values_with_units_and_record_their_source() -> None:
    spec = load_spec(
        "generic-npu",
        ["sram_bytes=2MiB", "mac_array.rows=64", "macs_per_cycle.int4=4096",
         "dram_bandwidth_bytes_per_s=68GB/s", "clock_hz=1.5GHz", "macs_per_cycle.fp16=null",
         "static_power_w=250mW"],
    )  # fmt: skip
    assert spec.sram_bytes == 2 * MiB
    assert (spec.mac_array.rows, spec.mac_array.cols) == (64, 32)
    assert spec.macs_per_cycle == {"int8": 1024, "int4": 4096}
    assert spec.dram_bandwidth_bytes_per_s == 68e9
    assert spec.clock_hz == 1.5e9 and spec.static_power_w == 0.25
    assert spec.sources["sram_bytes"].startswith("override: sram_bytes=2MiB; before: assumption")
    assert load_spec("generic-npu", ["sram_bytes=2097152"]).sram_bytes == 2097152
    assert load_spec("generic-npu", ["clock_hz=1e9"]).clock_hz == 1e9  # YAML 1.1 text


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["sram_bytes=-5"], "sram_bytes: must be > 0 and ≤ 1 TiB (got -5)"),
        (["clock_hz=null"], "clock_hz: missing (required: a number > 0 and ≤ 10 GHz)"),
        (["macs_per_cycle.int3=64"],
         "macs_per_cycle.int3: unknown precision (allowed: fp32, fp16, bf16, int16, int8, int4, "
         "int2)"),
        (["clock_hz=fast"], "clock_hz: must be a number > 0 and ≤ 10 GHz (got 'fast')"),
        (["sram_bytes=1.5"], "sram_bytes: must be a whole number > 0 and ≤ 1 TiB (got 1.5)"),
        (["mac_array.rows=0"], "mac_array.rows: must be ≥ 1 and ≤ 65536 (got 0)"),
        (["sram_bytes=2GHz"], "sram_bytes: unknown unit 'GHz' in '2GHz' (allowed units: B, KB"),
        (["overlap_compute_dma=maybe"], "overlap_compute_dma: must be true or false (got 'maybe')"),
        (["mac_array.depth=3"], "mac_array.depth: unknown field (allowed: rows, cols)"),
        (["macs_per_cycle.int2=64"], "energy_pj_per_mac.int2: missing (every precision in"),
        (["dram_bandwidth_bytes_per_s=0"], "dram_bandwidth_bytes_per_s: must be > 0 when dram"),
        (["sram_byte=8MiB"], "sram_byte: unknown field (did you mean 'sram_bytes'?) (allowed"),
        (["mac_array.row=64"], "mac_array.row: unknown field (did you mean 'mac_array.rows'?)"),
        (["sources.clock_rate=x"], "sources: 'clock_rate' not a field"),
    ],
)  # fmt: skip
def test_invalid_overrides_name_the_field_and_what_is_allowed(
    overrides: list[str], expected: str
) -> None:
    assert expected in _error("generic-npu", overrides)


def test_every_problem_is_reported_at_once_on_one_line() -> None:
    message = _error("tesla-fsd-nna", ["sram_bytes=-1", "clock_hz=abc", "macs_per_cycle.int3=1",
                                      "energy_pj_per_mac.int8=0", "speed=9"])  # fmt: skip
    assert message.startswith("invalid hardware spec 'tesla-fsd-nna': ")
    problems = message.split(": ", 1)[1].split("; ")
    fields = {p.split(":")[0] for p in problems}
    assert fields == {"sram_bytes", "clock_hz", "macs_per_cycle.int3", "energy_pj_per_mac.int8",
                      "speed"}  # fmt: skip


@pytest.mark.parametrize("override", ["sram_bytes", "=5", "clock_hz.x=1", "sram_bytes=[1,"])
def test_malformed_overrides_are_refused(override: str) -> None:
    assert "--set" in _error("generic-npu", [override])


# --- files ----------------------------------------------------------------------------------


def test_user_files_yaml_and_json_round_trip(tmp_path: Path) -> None:
    spec = load_spec("rk3588-npu")
    as_json = tmp_path / "rk.json"
    as_json.write_text(json.dumps(spec.model_dump(mode="json")))
    assert load_spec(str(as_json)) == spec
    raw = _preset_raw("hailo-8")
    del raw["clock_hz"]
    as_yaml = tmp_path / "h.yaml"
    as_yaml.write_text(yaml.safe_dump(raw))
    assert "clock_hz: missing (required: a number > 0" in _error(str(as_yaml), [])
    assert load_spec(str(as_yaml), ["clock_hz=800MHz"]).clock_hz == 800e6


def test_bad_names_and_files_are_clear(tmp_path: Path) -> None:
    message = _error("genric-npu", [])
    assert (
        "unknown hardware preset 'genric-npu'" in message
        and "did you mean 'generic-npu'" in message
    )
    assert all(p in message for p in PRESETS)
    assert "'missing.yaml' not found" in _error("missing.yaml", [])
    big = tmp_path / "big.yaml"
    big.write_text("#" * 1_000_001)
    assert "at most 1,000,000" in _error(str(big), [])
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    assert "is not valid YAML" in _error(str(hostile), [])  # safe_load builds no objects
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    assert "must be a mapping of spec fields" in _error(str(listing), [])
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert "is not valid JSON" in _error(str(broken), [])


def test_specs_are_frozen_and_closed() -> None:
    spec = load_spec("generic-npu")
    with pytest.raises(ValidationError):
        spec.sram_bytes = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        HardwareSpec.model_validate({**spec.model_dump(), "extra_field": 1})
    with pytest.raises(EdgewiseError, match="'edge-tpu' has no fp16 MACs"):
        load_spec("edge-tpu").peak_macs_per_s("fp16")


def test_json_schema_documents_every_field_with_bounds() -> None:
    schema = hardware_json_schema()
    assert set(schema["properties"]) == set(HardwareSpec.model_fields)
    assert schema["properties"]["sram_bytes"]["exclusiveMinimum"] == 0
    assert schema["properties"]["clock_hz"]["maximum"] == 10e9
    assert all("description" in p for p in schema["properties"].values())
    assert schema["additionalProperties"] is False


# --- precision ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "weights", "activations", "compute"),
    [
        ("fp32", "fp32", "fp32", "fp32"),
        ("fp16", "fp16", "fp16", "fp16"),
        ("bf16", "bf16", "bf16", "bf16"),
        ("int8", "int8", "int8", "int8"),
        ("w8a8", "int8", "int8", "int8"),
        ("W4A8 ", "int4", "int8", "int8"),
        ("w4afp16", "int4", "fp16", "fp16"),
        ("w8afp16", "int8", "fp16", "fp16"),
        ("w8abf16", "int8", "bf16", "bf16"),
        ("int4", "int4", "int4", "int4"),
    ],
)
def test_parse_precision_forms(text: str, weights: str, activations: str, compute: str) -> None:
    orin = load_spec("jetson-orin-nano")  # fp32, fp16, bf16, int8, int4 MACs
    assert parse_precision(text, orin) == (weights, activations)
    assert compute_precision(weights, activations) == compute  # type: ignore[arg-type]


def test_w8a16_is_qualcomms_int16_activations() -> None:
    """Qualcomm's w8a16 (AI Hub, AIMET): int8 weights, int16 activations, int16 MACs."""
    hexagon = load_spec("snapdragon-8gen3")
    assert parse_precision("w8a16", hexagon) == ("int8", "int16")
    assert compute_precision("int8", "int16") == "int16"
    with pytest.raises(EdgewiseError, match="'jetson-orin-nano' has no int16 MACs"):
        parse_precision("w8a16", load_spec("jetson-orin-nano"))


def test_compute_precision_is_the_wider_operand() -> None:
    assert compute_precision("int2", "int8") == "int8"
    assert compute_precision("fp16", "int8") == "fp16"
    assert compute_precision("fp32", "bf16") == "fp32"
    assert compute_precision("fp16", "bf16") == "bf16"  # equal width: the activations' format
    assert parse_precision("w2a8", load_spec("edge-tpu")) == ("int2", "int8")


def test_unknown_and_unsupported_precisions_say_what_works() -> None:
    edge = load_spec("edge-tpu")
    with pytest.raises(EdgewiseError, match=r"unknown precision 'w3a8' \(accepted: fp32.*w4afp16"):
        parse_precision("w3a8", edge)
    with pytest.raises(EdgewiseError) as info:
        parse_precision("w4afp16", edge)
    assert str(info.value) == (
        "precision 'w4afp16' computes in fp16 (the wider of int4 weights and fp16 activations), "
        "but 'edge-tpu' has no fp16 MACs (it has: int8); precisions it runs: int8, w8a8, w4a8, "
        "w2a8"
    )
    with pytest.raises(EdgewiseError, match="'generic-npu' has no fp32 MACs"):
        parse_precision("fp32", load_spec("generic-npu"))


# --- CLI ------------------------------------------------------------------------------------


def test_cli_list_shows_every_preset() -> None:
    result = runner.invoke(hw_app, ["list"])
    assert result.exit_code == 0, result.output
    assert all(name in result.output for name in PRESETS)
    assert "36.9" in result.output  # Tesla NNA int8 TOPS


def test_cli_show_json_equals_the_loaded_spec(tmp_path: Path) -> None:
    result = runner.invoke(hw_app, ["show", "generic-npu", "--json", "-"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert HardwareSpec.model_validate(data) == load_spec("generic-npu")
    out = tmp_path / "spec.json"
    result = runner.invoke(hw_app, ["show", "tesla-fsd-nna", "--set", "sram_bytes=16MiB",
                                    "--json", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["sram_bytes"] == 16 * MiB
    assert "override: sram_bytes=16MiB" in result.output  # the table shows sources


def test_cli_show_invalid_override_raises_edgewise_error() -> None:
    result = runner.invoke(hw_app, ["show", "generic-npu", "--set", "sram_bytes=-1"])
    assert result.exit_code != 0
    assert isinstance(result.exception, EdgewiseError)
    assert "sram_bytes: must be > 0" in str(result.exception)
    result = runner.invoke(hw_app, ["show", "x", "--set", "sram_bytes=-1"])
    assert isinstance(result.exception, EdgewiseError)
    assert "unknown hardware preset 'x'" in str(result.exception)


def test_cli_schema_prints_the_json_schema() -> None:
    result = runner.invoke(hw_app, ["schema"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == hardware_json_schema()


def test_sources_are_optional_and_unstated_ones_are_flagged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`hw new` writes a template that validates as written; a figure without a source is
    kept as an unstated assumption, which `hw show` flags."""
    from edgewise.hardware.spec import UNSTATED
    from tests.test_hostile import cli

    path = tmp_path / "mychip.yaml"
    code, out, _ = cli("hw", "new", "mychip", "-o", str(path))
    assert code == 0 and path.is_file()
    spec = load_spec(str(path))
    assert spec.name == "mychip" and spec.sources["sram_bytes"] == UNSTATED
    assert spec.sources["clock_hz"].startswith("assumption: the figures above")
    code, out, _ = cli("hw", "show", str(path))
    assert code == 0 and "no source given for 12 figures" in " ".join(out.split())
    assert cli("hw", "new", "mychip", "-o", str(path))[0] == 2  # never overwrites
    unsourced = load_spec("generic-npu", ["sources.clock_hz=null"])
    assert unsourced.sources["clock_hz"] == UNSTATED
